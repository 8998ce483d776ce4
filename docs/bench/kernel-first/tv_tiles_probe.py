"""Issue 35, ninth session: does deconvolving a large photo in tiles (DECONV_TILE px, a margin
of one kernel size) leave it worse than deconvolving it whole? The bench's made-up shake
photo (bench.speed.shake_photo: flat shapes and lines, one of our hand-shake kernels of
SHAKE_FRACTION of the long side, 1% noise, 8 bits) at SIZE, deconvolved with its true
kernel, placed in an ARRAY px square as an estimate comes (a 75 px window enlarged); PSNR
against the sharp scene inside a 150 px border, time and each way's difference from the
whole solve.

    python docs/bench/kernel-first/tv_tiles_probe.py WIDTH HEIGHT ARRAY [TILE ...]
"""
import sys
import time

import numpy as np
import torch

from deblurkit.bench.speed import SHAKE_FRACTION, shake_photo, shake_scene
from deblurkit.deconv import photo

torch.set_num_threads(2)
width, height, array = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
tiles = [int(t) for t in sys.argv[4:]] or [1024]
y, kernel = shake_photo(height, width)
x = shake_scene(height, width, np.random.default_rng([0, height, width])).astype(np.float64) / 255.0
k = photo.as_kernel(kernel.astype(np.float64))
big = np.zeros((array, array))
c = (array - k.shape[0]) // 2
big[c:c + k.shape[0], c:c + k.shape[0]] = k
inner = (slice(150, -150), slice(150, -150))


def psnr(a):
    return -10 * np.log10(np.mean((a[inner] - x[inner]) ** 2))


print(f"{width}x{height}, kernel {k.shape[0]} px (SHAKE_FRACTION {SHAKE_FRACTION}) in a {array} px array; "
      f"blurry {psnr(y / 255.0):.2f} dB")
photo.DECONV_TILE = max(width, height)
t = time.perf_counter()
whole = photo.deconvolve_photo(y, big)
print(f"whole: {psnr(whole):.2f} dB, {time.perf_counter() - t:.2f} s")
for tile in tiles:
    photo.DECONV_TILE = tile
    t = time.perf_counter()
    a = photo.deconvolve_photo(y, big)
    d = np.abs(a - whole)
    print(f"tiles of {tile}: {psnr(a):.2f} dB, {time.perf_counter() - t:.2f} s; from the whole solve: max {d.max():.3f}, mean {d.mean():.4f}")
