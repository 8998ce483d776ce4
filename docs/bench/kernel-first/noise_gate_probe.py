"""Issue 35, tenth session (training photos only): how well the noise estimate behind the
0.01 gate (nonblind.NOISY_SIGMA: the denoised estimate and the TV weight x2) reads the
noise of blurry photos, against noise estimates that textures fool less.

Photos: ../shared/data/train/bsds500_train and imagenet_samples_240 (natural textures:
grass, fur, foliage, gravel), each blurred by one of our own hand-shake kernels
(`handheld_kernel`, 5-27 px: short blur keeps the most texture), then Gaussian noise of a
known level per channel and 8 bits, as the benches blur. The estimate reads the grey
window the estimator sees (deconv.photo: the photo's centre at the estimation scale);
the true grey noise is the channel noise times |(0.299, 0.587, 0.114)|. Also the photos
of our handheld model (uniform part, noise_robust_probe.py's "handheld"), where the gate
must open (their denoised estimate gained 0.5-1.2 dB).

Estimators:
- immerkaer: the shipped one (blind.noise_sigma, Immerkaer 1996, every pixel);
- immerkaer_flat: the same on the pixels outside edges (Tai & Yang 2008: Sobel magnitude
  below its 90th percentile);
- pca: the smallest eigenvalues of the 7x7 patches' covariance (Chen, Zhu & Heng 2015).

    python docs/bench/kernel-first/noise_gate_probe.py N
"""
import os
import sys

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from multiprocessing import Pool  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from deblurkit.bench.kernels import blur_with_kernel  # noqa: E402
from deblurkit.data.blur import apply_blur  # noqa: E402
from deblurkit.data.shake import handheld_kernel  # noqa: E402
from deblurkit.deconv import photo  # noqa: E402
from deblurkit.deconv.blind import noise_sigma  # noqa: E402
from deblurkit.io import IMAGE_EXTENSIONS, read_image  # noqa: E402
from noise_robust_probe import UNIFORM  # noqa: E402

TRAIN = Path("../shared/data/train")
FOLDERS = ("bsds500_train", "imagenet_samples_240")
LEVELS = (0.005, 0.01, 0.02, 0.03)  # per channel
GREY = float(np.linalg.norm([0.299, 0.587, 0.114]))
GATE = 0.01


def immerkaer_flat(gray: np.ndarray, edge_quantile: float = 0.9) -> float:
    g = np.asarray(gray, np.float64)
    m = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], float)
    r = cv2.filter2D(g, -1, m, borderType=cv2.BORDER_REFLECT)[1:-1, 1:-1]
    sx = cv2.Sobel(g, cv2.CV_64F, 1, 0, ksize=3)[1:-1, 1:-1]
    sy = cv2.Sobel(g, cv2.CV_64F, 0, 1, ksize=3)[1:-1, 1:-1]
    mag = np.hypot(sx, sy)
    flat = mag <= np.quantile(mag, edge_quantile)
    return float(np.sqrt(np.pi / 2) * np.abs(r[flat]).mean() / 6)


def pca(gray: np.ndarray, size: int = 7, stride: int = 3) -> float:
    g = np.asarray(gray, np.float64)
    windows = np.lib.stride_tricks.sliding_window_view(g, (size, size))[::stride, ::stride]
    X = windows.reshape(-1, size * size)
    X = X - X.mean(axis=0)
    ev = np.sort(np.linalg.eigvalsh(X.T @ X / len(X)))
    for i in range(len(ev), 0, -1):  # the largest set of small eigenvalues whose mean is their median
        tau = ev[:i].mean()
        if np.sum(ev[:i] > tau) == np.sum(ev[:i] < tau):
            return float(np.sqrt(max(tau, 0.0)))
    return float(np.sqrt(max(ev[0], 0.0)))


ESTIMATORS = {"immerkaer": noise_sigma, "immerkaer_flat": immerkaer_flat, "pca": pca}


def window(y: np.ndarray) -> np.ndarray:
    H, W = y.shape[:2]
    scale = photo.estimation_scale(H, W)
    return photo._gray_window(y, photo.centre_region(H, W, scale), scale)


def one(job):
    i, path = job
    x = read_image(path).rgb.astype(np.float32)
    rng = np.random.default_rng([36, i])
    k = handheld_kernel(rng, extent=float(rng.uniform(5, 27))).astype(np.float32)
    u8 = np.round(x * 255).astype(np.uint8)
    rows = []
    for level in LEVELS:
        y = blur_with_kernel(u8, k, level, np.random.default_rng([37, i, int(level * 1000)]))
        w = window(y)
        rows.append((f"{level:.3f}", level * GREY, {n: f(w) for n, f in ESTIMATORS.items()}))
    res = apply_blur(x, np.random.default_rng([77, i]), UNIFORM, noise=True)
    if res.kinds == ["motion"]:
        w = window(np.clip(res.blurry, 0, 1))
        rows.append(("handheld", float("nan"), {n: f(w) for n, f in ESTIMATORS.items()}))
    return rows


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 40
    files = []
    for folder in FOLDERS:
        files += sorted(p for p in (TRAIN / folder).iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)[:n]
    with Pool(2) as pool:
        results = pool.map(one, list(enumerate(files)), chunksize=1)
    rows = [r for rs in results for r in rs]
    print(f"{len(files)} training photos; gate {GATE} (grey); per level: photos, true grey noise, and per estimator "
          "the median estimate / truth and the share of photos at or above the gate")
    for label in [f"{v:.3f}" for v in LEVELS] + ["handheld"]:
        sel = [r for r in rows if r[0] == label]
        truth = sel[0][1]
        parts = []
        for name in ESTIMATORS:
            est = np.array([r[2][name] for r in sel])
            ratio = f"{np.median(est / truth):.2f}" if np.isfinite(truth) else f"med {np.median(est):.4f}"
            parts.append(f"{name} {ratio} over {np.mean(est >= GATE):.2f}")
        print(f"{label:>8} n={len(sel):3d} truth {truth:.4f} | " + " | ".join(parts))
