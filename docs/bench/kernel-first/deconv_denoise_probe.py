"""Issue 35 probe (training data only): the noise a deconvolution keeps. With a model that
has no refiner (the bundled dvsr-medium-v6), `fast --kernel auto` returns the TV
deconvolution d itself, and on a noisy photo d keeps (and sharpens) the photo's noise,
where the blind predictor, trained on noisy photos, removes it. Would denoising d after
the deconvolution (OpenCV's non-local means, h = C x the photo's grey noise in 8-bit
levels, the estimator's own denoiser) pay, or a stronger TV weight?

    python docs/bench/kernel-first/deconv_denoise_probe.py handheld N OUT.jsonl [offset]
        Sun80 photos blurred by our handheld model (blur seed [88, i], as
        handheld_decision_probe), photos whose estimate the guard accepts
    python docs/bench/kernel-first/deconv_denoise_probe.py loop N OUT.jsonl NOISE
        the estimator loop's photos and kernels (bsds500_test, our kernels, Gaussian NOISE)

Per photo: the grey noise, d's gain (aligned) and each variant's: NLM at C in CS, and the
TV weight x F in FS (over the product's weight for an estimated kernel).
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
from deblurkit.bench.kernels import blur_with_kernel  # noqa: E402
from deblurkit.data.blur import apply_blur, blur_model  # noqa: E402
from deblurkit.deconv.blind import noise_sigma, to_gray  # noqa: E402
from deblurkit.deconv.nonblind import tv_weight, unit  # noqa: E402
from deblurkit.deconv.photo import centre_region, deconvolve_photo, estimate_photo_kernel  # noqa: E402
from deblurkit.io import IMAGE_EXTENSIONS, read_image  # noqa: E402

torch.set_num_threads(2)
CS = (0.5, 1.0, 1.5, 2.0)
FS = (1.5, 2.0)


def nlm(d: np.ndarray, h: float) -> np.ndarray:
    u8 = np.round(np.clip(d, 0, 1) * 255).astype(np.uint8)
    return cv2.fastNlMeansDenoisingColored(u8, None, h, h, 7, 21).astype(np.float64) / 255


def row_for(y: np.ndarray, x: np.ndarray, k_est: np.ndarray) -> dict:
    base = L.score(y, x)
    H, W = y.shape[:2]
    cx, cy, cw, ch = centre_region(H, W, 1.0)
    centre = to_gray(unit(y[cy:cy + ch, cx:cx + cw]))
    sigma = noise_sigma(centre)
    d = deconvolve_photo(y, k_est, estimated=True).astype(np.float64)
    row = dict(noise=sigma, d=L.score(d, x) - base)
    for c in CS:
        row[f"nlm{c}"] = L.score(nlm(d, c * sigma * 255), x) - base
    w = tv_weight(centre, estimated_kernel=True)
    for f in FS:
        row[f"tv{f}"] = L.score(deconvolve_photo(y, k_est, weight=w * f).astype(np.float64), x) - base
    return row


def main():
    mode, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    rows = []
    with open(out, "w") as fh:
        if mode == "handheld":
            offset = int(sys.argv[4]) if len(sys.argv) > 4 else 0
            files = sorted(p for p in Path("../shared/data/train/sun80").rglob("*")
                           if p.suffix.lower() in IMAGE_EXTENSIONS)[offset:offset + n]
            cfg = blur_model("handheld")
            jobs = []
            for i, f in enumerate(files, offset):
                x = read_image(f).rgb.astype(np.float32)
                y = np.clip(apply_blur(x, np.random.default_rng([88, i]), cfg).blurry, 0, 1).astype(np.float32)
                jobs.append((i, x.astype(np.float64), y.astype(np.float64)))
        else:
            noise = float(sys.argv[4])
            files = sorted(p for p in L.SHARP.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)[:n]
            jobs = []
            for i, f in enumerate(files):
                k = L.our_kernel(i)
                u8 = np.round(read_image(f).rgb * 255).astype(np.uint8)
                y = blur_with_kernel(u8, k.astype(np.float32), noise, np.random.default_rng([1234, i])).astype(np.float64)
                jobs.append((i, u8 / 255.0, y))
        for i, x, y in jobs:
            est = estimate_photo_kernel(y)
            if not est.accepted or est.streaks:
                continue
            row = dict(i=i, **row_for(y, x, est.kernel))
            rows.append(row)
            fh.write(json.dumps(row) + "\n")
            fh.flush()
            print(" ".join(f"{k} {v:+.2f}" if isinstance(v, float) else f"{k} {v}" for k, v in row.items()), flush=True)
    keys = [k for k in rows[0] if k not in ("i", "noise")]
    noisy = [r for r in rows if r["noise"] >= 0.01]
    print(f"{mode}: {len(rows)} accepted, mean " + "  ".join(f"{k} {np.mean([r[k] for r in rows]):+.2f}" for k in keys))
    if noisy:
        print(f"  grey noise >= 0.01 ({len(noisy)}): " + "  ".join(f"{k} {np.mean([r[k] for r in noisy]):+.2f}" for k in keys))


if __name__ == "__main__":
    main()
