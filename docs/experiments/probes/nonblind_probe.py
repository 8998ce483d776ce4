"""Reference, not a method of the tool: how much of the real-kernel bench's blur a plain
non-blind filter recovers when it is *given the true kernel* (an oracle no blind deblurrer has).

    python docs/experiments/probes/nonblind_probe.py [LIMIT]

The bench's pairs (`deblur bench kernels --kernels ../shared/data/kernels/kohler12_estimated
--sharp ../shared/data/val --crop 256 --noise 0.01`: photo i by kernel i mod 12, blur seed
1234, the whole photo blurred, then the 256 px centre crop scored). Each whole blurry photo
is reflect-padded by the kernel's size and deconvolved on the stored values (as the bench
blurs them) by a Laplacian-regularised Wiener filter in the Fourier domain, for a few
regularisation weights; the crop is scored. Prints the gain over the blurry input per
kernel for each weight (the best weight per kernel is itself an oracle choice).
"""
import sys
from pathlib import Path

import numpy as np

from deblurkit.bench.runner import _centre  # the bench's own centre crop
from deblurkit.bench.kernels import blur_with_kernel, load_kernels
from deblurkit.deconv.blind import psf2otf as otf  # the kernel's transfer function, centred at the origin
from deblurkit.io import IMAGE_EXTENSIONS, read_image

limit = int(sys.argv[1]) if len(sys.argv) > 1 else 100
kernels = load_kernels(Path("../shared/data/kernels/kohler12_estimated"))
files = sorted(p for p in Path("../shared/data/val").rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)[:limit]
weights = (1e-3, 3e-3, 1e-2, 3e-2)


def psnr(a, b):
    return float(10 * np.log10(1.0 / np.mean((np.clip(a, 0, 1) - b) ** 2)))


lap = np.array([[0, -1, 0], [-1, 4, -1], [0, -1, 0]], float)
gains = {k: {w: [] for w in weights} for k in range(len(kernels))}
for i, f in enumerate(files):
    ki = i % len(kernels)
    k = kernels[ki].array.astype(np.float64)
    u8 = np.round(read_image(f).rgb * 255).astype(np.uint8)
    if min(u8.shape[:2]) < 256:
        continue
    y = blur_with_kernel(u8, kernels[ki].array, 0.01, np.random.default_rng([1234, i])).astype(np.float64)
    x = u8.astype(np.float64) / 255.0
    p = max(k.shape)
    yp = np.pad(y, ((p, p), (p, p), (0, 0)), mode="reflect")
    K, L = otf(k, yp.shape[:2]), otf(lap, yp.shape[:2])
    base = psnr(_centre(y, 256), _centre(x, 256))
    for w in weights:
        H = np.conj(K) / (np.abs(K) ** 2 + w * np.abs(L) ** 2)
        out = np.stack([np.fft.irfft2(H * np.fft.rfft2(yp[..., c]), s=yp.shape[:2]) for c in range(3)], axis=2)[p:-p, p:-p]
        gains[ki][w].append(psnr(_centre(out, 256), _centre(x, 256)) - base)

print("kernel  extent  " + "  ".join(f"w={w:g}".rjust(9) for w in weights))
for ki, k in enumerate(kernels):
    print(f"{ki + 1:02d}      {k.extent:5.0f}  " + "  ".join(f"{np.mean(gains[ki][w]):+9.2f}" for w in weights))
print("mean            " + "  ".join(f"{np.mean([np.mean(gains[ki][w]) for ki in gains]):+9.2f}" for w in weights))
