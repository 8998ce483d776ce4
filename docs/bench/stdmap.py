"""Do the --std maps follow image structure? (model card, "Uncertainty maps")

    python docs/bench/stdmap.py [--weights FILE] [-o docs/bench/MODEL/stdmap.json]

The first 12 photos of ../shared/data/val (192 px centre crops, the synthetic blur of
`deblur bench synthetic --blur-seed 1234`), 4 samples of the `balanced` preset (seed 0):
the Spearman rank correlation between the per-pixel std (mean over RGB) and the sharp
image's gradient magnitude, and the ratio of the mean std on the top 20% of gradient
pixels to that on the flattest half.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import cv2
import numpy as np

from deblurkit import Deblurrer
from deblurkit.bench.runner import _centre
from deblurkit.data import apply_blur
from deblurkit.io import IMAGE_EXTENSIONS, read_image

VAL = Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "val"


def ranks(a: np.ndarray) -> np.ndarray:
    r = np.empty(a.size)
    r[np.argsort(a, kind="stable")] = np.arange(a.size)
    return r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--weights")
    ap.add_argument("--images", type=int, default=12)
    ap.add_argument("-o", "--output")
    args = ap.parse_args()
    d = Deblurrer(weights=args.weights, precision="fp32")
    every = sorted(p for p in VAL.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    stds, grads = [], []
    for i, f in list(enumerate(every))[: args.images]:
        sharp = _centre(read_image(f).rgb, 192)
        blurry = apply_blur(sharp, np.random.default_rng([1234, i])).blurry
        r = d.restore(blurry, preset="balanced", samples=4, seed=0, key=f.name, return_std=True)
        grey = cv2.cvtColor(sharp, cv2.COLOR_RGB2GRAY)
        grads.append(np.hypot(cv2.Sobel(grey, cv2.CV_32F, 1, 0), cv2.Sobel(grey, cv2.CV_32F, 0, 1)).ravel())
        stds.append(np.asarray(r.std, dtype=np.float64).ravel())
    std, grad = np.concatenate(stds), np.concatenate(grads)
    spearman = float(np.corrcoef(ranks(std), ranks(grad))[0, 1])
    edges, flat = grad >= np.quantile(grad, 0.8), grad <= np.quantile(grad, 0.5)
    rec = {"images": args.images, "steps": 3, "sampler": "ddpm", "samples": 4,
           "spearman_std_vs_gradient": round(spearman, 3),
           "std_ratio_edges_vs_flat": round(float(std[edges].mean() / std[flat].mean()), 2)}
    print(json.dumps(rec))
    if args.output:
        Path(args.output).write_text(json.dumps(rec) + "\n")


if __name__ == "__main__":
    main()
