"""Validation PSNR and NIQE against training hours, from one or more run logs.

    python docs/training/plot_curve.py OUT.png RUN/log.jsonl [MORE/log.jsonl ...]

Logs given in order are treated as consecutive stages of one campaign (hours add up).
"""

import json
import sys
from pathlib import Path

from deblurkit.bench.plot import curve_plot, training_hours


def main(out: str, *logs: str) -> None:
    psnr: dict[str, list] = {}
    niqe: dict[str, list] = {}
    offset = 0.0
    for log in logs:
        records = [json.loads(line) for line in Path(log).read_text().splitlines() if line.strip()]
        records = [r for r in records if "time" in r]
        hours = training_hours(records)
        for r, h in zip(records, hours):
            for key, value in r.get("val", {}).items():
                metric, run = key.split("_", 1)
                (psnr if metric == "psnr" else niqe).setdefault(run, []).append((offset + h, value))
        offset += hours[-1] if hours else 0.0
    curve_plot([("validation PSNR (dB), higher is better", psnr), ("validation NIQE, lower is more natural", niqe)],
               Path(out), "training hours (2-core CPU)", "training curve: 24 held-out photos, synthetic blur")


if __name__ == "__main__":
    main(*sys.argv[1:])
