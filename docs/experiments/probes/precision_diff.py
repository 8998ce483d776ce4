"""What bf16 autocast changes in the output, against fp32, in 8-bit levels.

    python docs/experiments/probes/precision_diff.py VAL_DIR OUT.json [--limit 24] [--crop 192] [--presets fast,balanced]

Each photo is centre-cropped, blurred by the project's blur model (seed [1234, i], as
`deblur bench synthetic`), restored with the bundled model in fp32 and in bf16 (same seed
and key, so the sampled presets draw the same noise), and both results are rounded to
8 bits as the CLI writes them. Reported per preset: mean and max absolute difference in
levels, and the share of pixels that differ at all. PSNR deltas come from `deblur bench
synthetic --precision bf16` against the fp32 record.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from deblurkit import Deblurrer
from deblurkit.data import apply_blur
from deblurkit.io import IMAGE_EXTENSIONS, read_image


def centre(a: np.ndarray, crop: int) -> np.ndarray:
    h, w = a.shape[:2]
    y, x = max(0, (h - crop) // 2), max(0, (w - crop) // 2)
    return a[y : y + crop, x : x + crop]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("val", type=Path)
    ap.add_argument("output", type=Path)
    ap.add_argument("--limit", type=int, default=24)
    ap.add_argument("--crop", type=int, default=192)
    ap.add_argument("--presets", default="fast,balanced")
    args = ap.parse_args()
    files = sorted(p for p in args.val.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)[: args.limit]
    models = {p: Deblurrer(device="cpu", precision=p) for p in ("fp32", "bf16")}
    record = {"images": len(files), "crop": args.crop, "model": models["fp32"].model_name, "presets": {}}
    for preset in args.presets.split(","):
        diffs, maxima, changed = [], [], []
        for i, f in enumerate(files):
            sharp = centre(read_image(f).rgb, args.crop)
            blurry = apply_blur(sharp, np.random.default_rng([1234, i])).blurry
            out = {p: np.round(np.clip(m.restore(blurry, preset, seed=0, key=f.name), 0, 1) * 255) for p, m in models.items()}
            d = np.abs(out["fp32"] - out["bf16"])
            diffs.append(d.mean())
            maxima.append(d.max())
            changed.append((d > 0).mean())
        record["presets"][preset] = {"mean_abs_levels": round(float(np.mean(diffs)), 3), "max_abs_levels": int(max(maxima)),
                                     "pixels_changed": round(float(np.mean(changed)), 4)}
        print(preset, record["presets"][preset], flush=True)
    args.output.write_text(json.dumps(record, indent=2) + "\n")


if __name__ == "__main__":
    main()
