"""Issue 35 probe (training photos only): a second, smaller look for short kernels. The
estimator loop's photos and kernels (`estimator_loop.py`, classes short,small,large: our
kernels of 4-12, 13-27 and 31-75 px on bsds500_test, 1% noise, 8 bits) through the
product's estimate; where it is accepted and at most 25 px long, the photo is estimated
again looking for kernels of at most SMALL px (fewer unknowns for the same edges: the loop
with kernel_size=31 gains +0.9 dB on 4-12 px kernels and loses the long ones), and that
kernel is taken where the guard accepts it. Prints per class the gain of the product's d
with the first kernel, and with the rule for extents up to 15, 20 and 25 px, and the
seconds the second look took.

    python docs/bench/kernel-first/short_look_probe.py N [SMALL] [OFFSET] [WINDOW]   (from the repository root;
    OFFSET: start at that photo, its kernels drawn for its own index, for a second set;
    WINDOW: the second look reads the centre WINDOW x WINDOW pixels only, for speed)
"""
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from multiprocessing import Pool  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

import estimator_loop as L  # noqa: E402
from deblurkit.deconv.photo import deconvolve_photo, estimate_photo_kernel, kernel_extent  # noqa: E402
from deblurkit.io import IMAGE_EXTENSIONS  # noqa: E402

ACTIVE = os.environ.get("CLASSES", "short,small,large").split(",")  # CLASSES=short,small,large,huge: the loop's classes in turn
LIMITS = (15, 20, 25)


def one(job):
    i, path, small, window = job
    torch.set_num_threads(1)
    k, y, x, base = L.loop_photo(i, path, ACTIVE)
    est = estimate_photo_kernel(y)
    g1 = L.score(deconvolve_photo(y, est.kernel, estimated=True), x) - base if est.accepted else 0.0
    e1 = kernel_extent(est.kernel)
    g2, e2, seconds = g1, e1, 0.0
    if est.accepted and e1 <= max(LIMITS):
        start = time.perf_counter()
        region = None
        if window:
            h, w = y.shape[:2]
            side_h, side_w = min(h, window), min(w, window)
            region = ((w - side_w) // 2, (h - side_h) // 2, side_w, side_h)
        second = estimate_photo_kernel(y, size=small, region=region)
        seconds = time.perf_counter() - start
        if second.accepted:
            g2, e2 = L.score(deconvolve_photo(y, second.kernel, estimated=True), x) - base, kernel_extent(second.kernel)
    ys, xs = np.nonzero(k > 0.05 * k.max())
    return i, int(max(np.ptp(ys), np.ptp(xs)) + 1), e1, g1, e2, g2, seconds


if __name__ == "__main__":
    n = int(sys.argv[1])
    small = int(sys.argv[2]) if len(sys.argv) > 2 else 31
    offset = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    window = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    files = sorted(p for p in L.SHARP.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)[offset:offset + n]
    with Pool(2) as pool:
        rows = pool.map(one, [(i, f, small, window) for i, f in enumerate(files, offset)], chunksize=1)
    for i, ext, e1, g1, e2, g2, s in rows:
        print(f"{i:3d} {ext:3d}px first {e1:3d}px {g1:+.2f}  second {e2:3d}px {g2:+.2f}  {s:.2f} s")
    for label, lo, hi in (("4-12", 0, 13), ("13-27", 13, 29), ("31-79", 29, 80), ("80+", 80, 999)):
        sel = [r for r in rows if lo <= r[1] < hi]
        if sel:
            rules = "  ".join(f"<= {m}: {np.mean([r[5] if r[2] <= m else r[3] for r in sel]):+.2f}" for m in LIMITS)
            print(f"{label} px: n={len(sel)} first {np.mean([r[3] for r in sel]):+.2f}  second look for first kernels {rules}")
    looked = [r[6] for r in rows if r[6] > 0]
    rules = "  ".join(f"<= {m}: {np.mean([r[5] if r[2] <= m else r[3] for r in rows]):+.3f} ({sum(1 for r in rows if r[6] > 0 and r[2] <= m)} looked)" for m in LIMITS)
    print(f"all: first {np.mean([r[3] for r in rows]):+.3f}  {rules}  | second look {np.mean(looked) if looked else 0:.2f} s, SMALL {small}, photos {offset}-{offset + n - 1}, window {window or 'the first look s'}")
