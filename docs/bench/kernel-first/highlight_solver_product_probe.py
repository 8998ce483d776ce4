"""Issue 35 probe (training photos only): the product's highlight solver
(deconv.highlights.richardson_lucy_clipped, in torch, the periodic pad read as unknown)
against the TV step, with the TRUE kernel.

    python docs/bench/kernel-first/highlight_solver_product_probe.py camera N GAMMA GAIN
        camera_response_probe's photos (clipped pixels lifted x GAIN, blur in light^GAMMA):
        nonblind.tv_deconvolve against photo.deconvolve_photo (which takes the highlight
        solver where a photo has photo.HIGHLIGHT_SHARE or more clipped pixels)
    python docs/bench/kernel-first/highlight_solver_product_probe.py loop N NOISE TV
        the loop's photos blurred as the kernel bench blurs (short, small and large kernels,
        Gaussian NOISE): the TV step against the highlight solver with TV term TV, on all
        photos and on those with over 0.1% clipped pixels; and the product's given-kernel
        step (photo.deconvolve_photo, its own TV term)

Two worker processes of one thread each; run from the repository root.
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
from camera_response_probe import camera_photo, clipped_photos  # noqa: E402
from deblurkit.bench.kernels import blur_with_kernel  # noqa: E402
from deblurkit.deconv.highlights import clipped_share, richardson_lucy_clipped  # noqa: E402
from deblurkit.deconv.nonblind import tv_deconvolve  # noqa: E402
from deblurkit.deconv.photo import deconvolve_photo  # noqa: E402
from deblurkit.io import IMAGE_EXTENSIONS, read_image  # noqa: E402


def camera(job):
    i, path, gamma, gain = job
    torch.set_num_threads(1)
    k, y, x, base = camera_photo(i, path, gamma, gain)
    start = time.perf_counter()
    product = L.score(deconvolve_photo(y, k).astype(np.float64), x) - base
    seconds = time.perf_counter() - start
    return L.score(tv_deconvolve(y, k).astype(np.float64), x) - base, product, seconds


def loop(job):
    i, path, noise, tv = job
    torch.set_num_threads(1)
    k = L.our_kernel(i, ["short", "small", "large"])
    u8 = np.round(read_image(path).rgb * 255).astype(np.uint8)
    y = blur_with_kernel(u8, k.astype(np.float32), noise, np.random.default_rng([1234, i])).astype(np.float64)
    x = u8 / 255.0
    base = L.score(y, x)
    return (L.score(tv_deconvolve(y, k).astype(np.float64), x) - base,
            L.score(richardson_lucy_clipped(y, k, tv=tv).astype(np.float64), x) - base, clipped_share(y),
            L.score(deconvolve_photo(y, k).astype(np.float64), x) - base)


if __name__ == "__main__":
    mode, n, a, b = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
    with Pool(2) as pool:
        if mode == "camera":
            rows = np.array(pool.map(camera, [(i, f, a, b) for i, f in enumerate(clipped_photos(n))], chunksize=1))
            print(f"{n} photos, gamma {a} gain {b}, true kernel: TV step {rows[:, 0].mean():+.2f}  product "
                  f"(deconvolve_photo) {rows[:, 1].mean():+.2f} ({rows[:, 2].mean():.2f} s a photo, one thread)")
        else:
            files = sorted(p for p in L.SHARP.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)[:n]
            rows = np.array(pool.map(loop, [(i, f, a, b) for i, f in enumerate(files)], chunksize=1))
            c = rows[:, 2] > 0.001
            print(f"{n} loop photos, noise {a}, TV term {b}, true kernel: TV step {rows[:, 0].mean():+.2f}  highlight solver "
                  f"{rows[:, 1].mean():+.2f} | over 0.1% clipped (n={c.sum()}): {rows[c, 0].mean():+.2f} / {rows[c, 1].mean():+.2f} | "
                  f"product (deconvolve_photo) {rows[:, 3].mean():+.2f}")
