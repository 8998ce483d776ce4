"""Tuning probe for the classical blind estimator (deblurkit.deconv.blind), on TRAINING data
only: photos of ../shared/data/train blurred by the project's own hand-shake kernels
(`handheld_kernel`, extents drawn log-uniformly over 3-120 px), the bench's protocol
otherwise (8-bit-value convolution of the whole photo, noise 0.01, 256 px centre crop
handed to the method). The Köhler kernels and ../shared/data/val are never used here.

    python docs/experiments/probes/blind_probe.py [N] [key=value ...]   # BlindConfig fields, wiener=W, extent=PX, crop=PX

Prints per photo: extent, gain of Wiener with the estimated kernel, with the true kernel
(oracle), and the kernels' normalised correlation (after the best shift).
"""
import sys
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np

from deblurkit.bench.kernels import blur_with_kernel
from deblurkit.bench.runner import _centre
from deblurkit.data.shake import ShakeConfig, handheld_kernel
from deblurkit.deconv.blind import WIENER_WEIGHT, BlindConfig, estimate_kernel, to_gray, wiener
from deblurkit.io import IMAGE_EXTENSIONS, read_image

n = int(sys.argv[1]) if len(sys.argv) > 1 and "=" not in sys.argv[1] else 12
kw = dict(a.split("=") for a in sys.argv[1:] if "=" in a)
ww = float(kw.pop("wiener", WIENER_WEIGHT))
extent = kw.pop("extent", None)
crop = int(kw.pop("crop", 256))
cfg = replace(BlindConfig(), **{k: type(getattr(BlindConfig, k))(v) for k, v in kw.items()})
files = sorted(p for p in Path("../shared/data/train/sun80").rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
files = files[:: max(len(files) // n, 1)][:n]


def psnr(a, b):
    return float(10 * np.log10(1.0 / np.mean((np.clip(a, 0, 1) - b) ** 2)))


def kernel_similarity(a, b):
    s = max(a.shape + b.shape) * 2 + 1
    A, B = (np.pad(k, [((s - k.shape[0]) // 2,) * 2, ((s - k.shape[1]) // 2,) * 2]) for k in (a, b))
    c = cv2.matchTemplate(A.astype(np.float32), B[s // 4: -(s // 4), s // 4: -(s // 4)].astype(np.float32), cv2.TM_CCORR_NORMED)
    return float(c.max())


rows = []
for i, f in enumerate(files):
    rng = np.random.default_rng([77, i])
    k = handheld_kernel(rng, ShakeConfig(), None if extent is None else float(extent))
    u8 = np.round(read_image(f).rgb * 255).astype(np.uint8)
    y = _centre(blur_with_kernel(u8, k, 0.01, rng), crop).astype(np.float64)
    x = _centre(u8.astype(np.float64) / 255, crop)
    t = time.time()
    ke = estimate_kernel(to_gray(y), cfg)
    dt = time.time() - t
    base = psnr(y, x)
    g_est, g_true = psnr(wiener(y, ke, ww), x) - base, psnr(wiener(y, k.astype(np.float64), ww), x) - base
    rows.append((max(k.shape), g_est, g_true, kernel_similarity(ke, k), dt))
    print(f"{f.name:28s} size {max(k.shape):4d}  est {g_est:+6.2f}  true {g_true:+6.2f}  sim {rows[-1][3]:.2f}  {dt:4.1f}s", flush=True)
r = np.array(rows)
small = r[:, 0] <= 41
print(f"kernels <= 41 px: est {r[small, 1].mean():+.2f} true {r[small, 2].mean():+.2f}; larger: est {r[~small, 1].mean():+.2f} true {r[~small, 2].mean():+.2f}")
print(f"mean  est {r[:, 1].mean():+.2f}  true {r[:, 2].mean():+.2f}  sim {r[:, 3].mean():.2f}  time {r[:, 4].mean():.1f}s  {cfg} wiener={ww} crop={crop}")
