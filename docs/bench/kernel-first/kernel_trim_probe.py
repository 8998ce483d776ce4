"""Issue 35 probe (training data only): are the too-long kernels the estimator reads from
noisy photos a faint tail on a right core, and would the shortest trim that still explains
the photo do better? On photos of ../shared/data/train/sun80 blurred by our handheld model
(blur seed [88, i], as handheld_decision_probe), for each photo whose estimate the guard
accepts: the estimate trimmed at LEVELS of its maximum (the piece holding the maximum, and
pieces above the level that are at least MIN_PIECE of the mass), each trim's extent, its
guard residual on the estimation window and the TV deconvolution's gain (aligned, the
product's step for an estimated kernel), against the true kernel's.

    python docs/bench/kernel-first/kernel_trim_probe.py N OUT.jsonl [offset]
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import estimator_loop as L  # noqa: E402
from deblurkit.data.blur import apply_blur, blur_model  # noqa: E402
from deblurkit.deconv import kernel_similarity  # noqa: E402
from deblurkit.deconv.blind import _odd, centre_kernel, residual_ratio  # noqa: E402
from deblurkit.deconv.photo import _gray_window, deconvolve_photo, estimate_photo_kernel, kernel_extent, resize_kernel  # noqa: E402
from deblurkit.io import IMAGE_EXTENSIONS, read_image  # noqa: E402

torch.set_num_threads(2)
SHARP = Path("../shared/data/train/sun80")
LEVELS = (0.1, 0.2, 0.3, 0.45)
MIN_PIECE = 0.1


def trimmed(k: np.ndarray, level: float) -> np.ndarray:
    k = np.where(k >= level * k.max(), k, 0.0)
    n, labels = cv2.connectedComponents((k > 0).astype(np.uint8), connectivity=8)
    weights = np.bincount(labels.ravel(), weights=k.ravel(), minlength=n) / k.sum()
    weights[0] = 0
    keep = (weights >= MIN_PIECE) | (np.arange(n) == labels[np.unravel_index(np.argmax(k), k.shape)])
    keep[0] = False
    k = np.where(keep[labels], k, 0.0)
    return centre_kernel(k / k.sum())


def main():
    n, out = int(sys.argv[1]), sys.argv[2]
    offset = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    files = sorted(p for p in SHARP.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)[offset:offset + n]
    cfg = blur_model("handheld")
    with open(out, "w") as fh:
        for i, f in enumerate(files, offset):
            x = read_image(f).rgb.astype(np.float32)
            b = apply_blur(x, np.random.default_rng([88, i]), cfg)
            y = np.clip(b.blurry, 0, 1).astype(np.float32)
            if not b.kernels:
                continue
            k_true = b.kernels[0].astype(np.float64)
            est = estimate_photo_kernel(y)
            if not est.accepted or est.streaks:
                continue
            base = L.score(y, x)
            window = _gray_window(y.astype(np.float64), est.region, est.scale)
            s = est.scale
            k_small = est.kernel if s == 1 else resize_kernel(est.kernel, _odd(est.kernel.shape[0] * s))
            row = dict(i=i, file=f.name, kind=",".join(b.kinds) + (" varying" if b.spatially_varying else ""),
                       noise=float(b.noise_sigma) if hasattr(b, "noise_sigma") else None,
                       true_extent=kernel_extent(k_true),
                       g_true=L.score(deconvolve_photo(y, k_true, estimated=True), x) - base, trims=[])
            for level in (None, *LEVELS):
                ks = k_small if level is None else trimmed(k_small, level)
                k = ks if s == 1 else resize_kernel(ks, _odd(ks.shape[0] / s))
                row["trims"].append(dict(level=level, extent=kernel_extent(k), residual=residual_ratio(window, ks),
                                         similarity=kernel_similarity(k, k_true),
                                         gain=L.score(deconvolve_photo(y, k, estimated=True), x) - base))
            fh.write(json.dumps(row) + "\n")
            fh.flush()
            t = row["trims"]
            print(f"{i:3d} {row['kind'][:16]:16s} true {row['true_extent']:3d} ({row['g_true']:+.2f}) | " + "  ".join(
                f"{r['extent']:3d} r{r['residual']:.2f} s{r['similarity']:.2f} {r['gain']:+.2f}" for r in t), flush=True)


if __name__ == "__main__":
    main()
