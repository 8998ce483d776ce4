"""Issue 35 probe (training photos only): can a non-blind solver that knows which pixels
are clipped recover what lifted highlights cost, given the TRUE kernel? The photos and blur
of camera_response_probe.py (the first N bsds500_test photos with over 2% clipped pixels,
our kernels, blur in light = values^gamma with clipped pixels x gain, 1% noise, 8 bits),
deconvolved with the true kernel, and with the product's estimate where its guard accepts
it (a refused photo scores 0), by: the product's TV step; Richardson-Lucy with a TV
term (Dey et al. 2006) for ITERS iterations; and the same reading a clipped pixel (any
channel >= 0.98) as a lower bound (Whyte et al. 2014: where the blurred estimate is already
at least that bright the pixel exerts no pull). A probe, not the product's solver.

    python docs/bench/kernel-first/highlight_solver_probe.py N GAMMA GAIN [ITERS] [TV]   (from the repository root)
"""
import os
import sys

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from multiprocessing import Pool  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

import estimator_loop as L  # noqa: E402
from camera_response_probe import camera_photo, clipped_photos  # noqa: E402
from deblurkit.deconv.photo import deconvolve_photo, estimate_photo_kernel  # noqa: E402

LEVEL = 0.98


def richardson_lucy(y, k, iters, tv, saturated):
    """Per channel; convolutions with reflected borders (cv2.filter2D correlates: the
    flipped kernel convolves, the kernel itself is the adjoint)."""
    conv = lambda a: cv2.filter2D(a, -1, np.ascontiguousarray(k[::-1, ::-1]), borderType=cv2.BORDER_REFLECT)  # noqa: E731
    corr = lambda a: cv2.filter2D(a, -1, k, borderType=cv2.BORDER_REFLECT)  # noqa: E731
    out = np.empty_like(y)
    for c in range(y.shape[2]):
        yc = np.maximum(y[..., c], 1e-4)
        clipped = yc >= LEVEL
        x = yc.copy()
        for _ in range(iters):
            kx = np.maximum(conv(x), 1e-4)
            ratio = yc / kx
            if saturated:  # a clipped pixel pulls only where the estimate, blurred, is darker than it
                ratio = np.where(clipped & (kx >= yc), 1.0, ratio)
            step = corr(ratio)
            if tv:
                gy, gx = np.gradient(x)
                norm = np.sqrt(gx * gx + gy * gy + 1e-6)
                div = np.gradient(gx / norm, axis=1) + np.gradient(gy / norm, axis=0)
                step = step / np.maximum(1 - tv * div, 0.1)
            x = np.maximum(x * step, 1e-4)
        out[..., c] = x
    return np.clip(out, 0, 1)


def one(job):
    i, path, gamma, gain, iters, tv = job
    k, y, x, base = camera_photo(i, path, gamma, gain)
    g_tv = L.score(deconvolve_photo(y, k).astype(np.float64), x) - base
    g_rl = L.score(richardson_lucy(y, k, iters, tv, False), x) - base
    g_sat = L.score(richardson_lucy(y, k, iters, tv, True), x) - base
    est = estimate_photo_kernel(y)  # the product's estimate and guard (a refused photo scores 0)
    e_tv = e_rl = e_sat = 0.0
    if est.accepted:
        e_tv = L.score(deconvolve_photo(y, est.kernel, estimated=True).astype(np.float64), x) - base
        e_rl = L.score(richardson_lucy(y, est.kernel, iters, tv, False), x) - base
        e_sat = L.score(richardson_lucy(y, est.kernel, iters, tv, True), x) - base
    return g_tv, g_rl, g_sat, e_tv, e_rl, e_sat


if __name__ == "__main__":
    n, gamma, gain = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
    iters = int(sys.argv[4]) if len(sys.argv) > 4 else 50
    tv = float(sys.argv[5]) if len(sys.argv) > 5 else 0.002
    files = clipped_photos(n)
    with Pool(2) as pool:
        rows = np.array(pool.map(one, [(i, f, gamma, gain, iters, tv) for i, f in enumerate(files)], chunksize=1))
    print(f"true kernel, {len(rows)} photos: TV (product) {rows[:, 0].mean():+.2f}  Richardson-Lucy {rows[:, 1].mean():+.2f}  "
          f"clipped as bounds {rows[:, 2].mean():+.2f}")
    print(f"estimated kernel:              TV (product) {rows[:, 3].mean():+.2f}  Richardson-Lucy {rows[:, 4].mean():+.2f}  "
          f"clipped as bounds {rows[:, 5].mean():+.2f} | gamma {gamma} gain {gain} iterations {iters} tv {tv}")
