"""Issue 22's curve: the predictor's gain over the blurry input on the three measures
(real kernels, synthetic legacy blur, held-out GoPro frames) against training hours.

    python docs/training/plot_real_shake_curve.py OUT.png LOG.jsonl EVAL_DIR [EVAL_DIR ...]

Each EVAL_DIR holds the records of `docs/training/real_shake_eval.sh` for one checkpoint
and is named .../step_NNNNN (step 0: the starting model); a measure missing from a folder
is left out of that point. Hours come from the run's log
(pauses longer than 10 minutes are not counted). Also prints the table.
"""

import json
import re
import sys
from pathlib import Path

from deblurkit.bench.plot import curve_plot, training_hours

MEASURES = {"kernels_kohler12_val100": "real kernels (Köhler, 100 val photos)",
            "synthetic_val_all100": "synthetic, legacy blur (100 val photos)",
            "gopro_heldout": "GoPro, 10 held-out frames"}


def gain(path: Path) -> tuple[float, dict]:
    m = {x["name"]: x for x in json.loads(path.read_text())["methods"]}
    per = {}
    if "by_group" in m["fast"]:
        per = {k.rsplit("/", 1)[-1]: round(m["fast"]["by_group"][k]["psnr"] - m["blurry"]["by_group"][k]["psnr"], 3)
               for k in m["fast"]["by_group"]}
    return round(m["fast"]["psnr"] - m["blurry"]["psnr"], 3), per


def main(out: str, log: str, *dirs: str) -> None:
    records = [json.loads(x) for x in Path(log).read_text().splitlines() if x.strip()]
    records = [r for r in records if "time" in r and "step" in r]
    hours = dict(zip((r["step"] for r in records), training_hours(records)))
    steps = sorted(hours)

    def hours_at(step: int) -> float:
        if step <= 0:
            return 0.0
        return hours[min(steps, key=lambda s: abs(s - step))]

    series: dict[str, list] = {}
    rows = []
    for d in sorted(dirs, key=lambda d: int(re.search(r"step_(\d+)", d).group(1))):
        step = int(re.search(r"step_(\d+)", d).group(1))
        row = {"step": step, "hours": round(hours_at(step), 3)}
        for f, label in MEASURES.items():
            if not (Path(d) / f"{f}.json").exists():
                continue  # a checkpoint measured on the real kernels only
            g, per = gain(Path(d) / f"{f}.json")
            series.setdefault(label, []).append((row["hours"], g))
            row[f] = g
            if per:
                row["per_kernel"] = per
        rows.append(row)
        print(json.dumps(row))
    curve_plot([("predictor gain over the blurry input (dB)", series)], Path(out), "training hours (2-core CPU)",
               "issue 22: real-kernel, synthetic and GoPro gains")


if __name__ == "__main__":
    main(*sys.argv[1:])
