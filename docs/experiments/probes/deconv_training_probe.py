"""Why the kernel-aware predictor ignores its deconvolution: how good is that input on the
data it trains on? On TRAINING data only, two protocols:

- train: the deconvolution pack's own draws (`draw_sample(sources, seed 0, i)`, the sharp
  photos of ../shared/data/train with the handheld blur model, as `deblur deconv-pack`
  makes them; the GoPro pairs left out);
- bench: blind_probe.py's protocol (sun80 training photos, our own handheld kernels, 8-bit
  values convolved, Gaussian noise 0.01: the real-kernel bench's protocol with our kernels).

For each crop the kernel is estimated once (deblurkit.deconv, as the pack does), then
Wiener-deconvolved with several weight rules: the shipped constant 0.03 and noise-adaptive
rules w = a + b * sigma^2, sigma from Immerkaer's (1996) noise estimate of the grey crop.
Prints the gain over the blurry crop (dB) per rule: mean, median, and the halves of lower
and higher estimated noise. The Köhler kernels and ../shared/data/val are never used.

    python docs/experiments/probes/deconv_training_probe.py N START train|bench
"""
import sys
from pathlib import Path

import numpy as np

from deblurkit.bench.kernels import blur_with_kernel
from deblurkit.bench.runner import _centre
from deblurkit.data.blur import blur_model
from deblurkit.data.datasets import SharpFolder, Source
from deblurkit.data.deconv_pack import draw_sample
from deblurkit.data.shake import ShakeConfig, handheld_kernel
from deblurkit.deconv.blind import BlindConfig, estimate_kernel, noise_sigma, to_gray, wiener
from deblurkit.io import IMAGE_EXTENSIONS, read_image

RULES = {
    "0.03 (shipped)": lambda s: 0.03,
    "0.3": lambda s: 0.3,
    "0.03+1000s^2": lambda s: 0.03 + 1000 * s * s,
    "0.03+3000s^2": lambda s: 0.03 + 3000 * s * s,
    "0.1+1000s^2": lambda s: 0.1 + 1000 * s * s,
}


def psnr(a, b):
    return float(10 * np.log10(1 / max(np.mean((np.clip(a, 0, 1) - b) ** 2), 1e-10)))


def draw_crop(i: int, mode: str) -> tuple[np.ndarray, np.ndarray]:
    """Crop i of a protocol as (sharp, blurry) float64: "train" (the pack's own draws) or
    "bench" (sun80, our own handheld kernel, 8-bit convolution, noise 0.01)."""
    if mode == "bench":
        files = sorted(p for p in Path("../shared/data/train/sun80").rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
        rng = np.random.default_rng([77, i])
        k = handheld_kernel(rng, ShakeConfig(), None)
        u8 = np.round(read_image(files[i % len(files)]).rgb * 255).astype(np.uint8)
        y, x = _centre(blur_with_kernel(u8, k, 0.01, rng), 256), _centre(u8.astype(np.float64) / 255, 256)
    else:
        x, y = draw_sample([Source(SharpFolder("../shared/data/train", 256, blur_model("handheld")), 1.0)], 0, i)
    return np.asarray(x, np.float64), np.asarray(y, np.float64)


def main(n: int, start: int, mode: str) -> None:
    rows = []
    for i in range(start, start + n):
        x, y = draw_crop(i, mode)
        ke = estimate_kernel(to_gray(y), BlindConfig())
        s, base = noise_sigma(to_gray(y)), psnr(y, x)
        rows.append([s] + [psnr(wiener(y, ke, rule(s)), x) - base for rule in RULES.values()])
        print(f"{i:4d} sigma {s:.4f} " + " ".join(f"{v:+6.2f}" for v in rows[-1][1:]), flush=True)
    r = np.array(rows)
    low = r[:, 0] < np.median(r[:, 0])
    print(f"{mode}, crops {start}-{start + n - 1}")
    print("rule        " + " ".join(f"{k:>15s}" for k in RULES))
    for name, sel in (("mean", slice(None)), ("low noise", low), ("high noise", ~low)):
        print(f"{name:11s} " + " ".join(f"{v:+15.2f}" for v in r[sel, 1:].mean(0)))
    print("median      " + " ".join(f"{v:+15.2f}" for v in np.median(r[:, 1:], 0)))
    print("share > 0   " + " ".join(f"{v:15.2f}" for v in (r[:, 1:] > 0).mean(0)))


if __name__ == "__main__":
    main(int(sys.argv[1]), int(sys.argv[2]), sys.argv[3])
