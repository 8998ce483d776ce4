"""On TRAINING photos (../shared/data/train/sun80, every third, 24) blurred by our own handheld
kernels (the bench protocol otherwise: 8-bit-value convolution, noise 0.01, 256 px centre):
the classical deconvolution alone, the coarse-to-fine predictor (step 3,762) and the
kernel-aware one (step 2,500). Output: docs/experiments/probes/kernel_aware_probe.txt.

    python docs/experiments/probes/kernel_aware_probe.py
"""
import numpy as np, torch
from pathlib import Path
from deblurkit.bench.kernels import blur_with_kernel
from deblurkit.bench.runner import _centre
from deblurkit.data.shake import ShakeConfig, handheld_kernel
from deblurkit.deconv import blind_deconvolve
from deblurkit.io import IMAGE_EXTENSIONS, read_image
from deblurkit.weights import load_checkpoint
from deblurkit.restorer import Restorer, SamplingOptions
torch.set_num_threads(2)
nets = {n: Restorer(load_checkpoint(p).model.eval(), "cpu") for n, p in [("c2f", "docs/experiments/candidates/dvsr-medium-v7-c2f/training/ema_step3762.safetensors"), ("ka", "docs/experiments/candidates/dvsr-medium-v7-ka/training/ema_step2500.safetensors")]}
files = sorted(p for p in Path("../shared/data/train/sun80").rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)[::3][:24]
psnr = lambda a, b: float(10 * np.log10(1 / np.mean((np.clip(a, 0, 1) - b) ** 2)))
rows = []
for i, f in enumerate(files):
    rng = np.random.default_rng([77, i]); k = handheld_kernel(rng, ShakeConfig())
    u8 = np.round(read_image(f).rgb * 255).astype(np.uint8)
    y = _centre(blur_with_kernel(u8, k, 0.01, rng), 256); x = _centre(u8 / 255.0, 256)
    b = psnr(y, x); r = [max(k.shape), psnr(blind_deconvolve(y), x) - b]
    t = torch.from_numpy(np.ascontiguousarray(y)).permute(2, 0, 1)[None].float()
    for n in nets: r.append(psnr(nets[n].restore(t, SamplingOptions(steps=0))[0].permute(1, 2, 0).numpy(), x) - b)
    rows.append(r)
r = np.array(rows); s = r[:, 0] <= 41
print("training photos, handheld kernels: deconv alone / c2f / kernel-aware")
print(f"kernels <= 41 px ({s.sum()}): {r[s,1].mean():+.2f} {r[s,2].mean():+.2f} {r[s,3].mean():+.2f}")
print(f"larger ({(~s).sum()}): {r[~s,1].mean():+.2f} {r[~s,2].mean():+.2f} {r[~s,3].mean():+.2f}")
print(f"all: {r[:,1].mean():+.2f} {r[:,2].mean():+.2f} {r[:,3].mean():+.2f}")
