"""Measure (not tune) the classical blind estimator on the real-kernel bench's pairs.

    python docs/experiments/probes/blind_kohler.py [SHARD/SHARDS] [key=value ...]   # e.g. 0/2, BlindConfig fields, wiener=W, rule=noise

The pairs of `deblur bench kernels --kernels ../shared/data/kernels/kohler12_estimated
--sharp ../shared/data/val --crop 256 --noise 0.01` (photo i by kernel i mod 12, blur seed
1234); the estimator sees only the 256 px blurry crop, like the predictor. Prints one line
per pair (kernel, gain of estimated-kernel Wiener, of true-kernel Wiener); combine shards
with the summary at the end of blind_kohler_summary.py. Settings come from tuning on
training data (docs/experiments/probes/blind_probe.py); running this is a measurement only.
"""
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from deblurkit.bench.kernels import blur_with_kernel, load_kernels
from deblurkit.bench.runner import _centre
from deblurkit.deconv.blind import GUARD_RESIDUAL, WIENER_WEIGHT, BlindConfig, estimate_kernel, residual_ratio, to_gray, wiener, wiener_weight
from deblurkit.io import IMAGE_EXTENSIONS, read_image

shard, shards = (int(v) for v in (sys.argv[1] if len(sys.argv) > 1 and "/" in sys.argv[1] else "0/1").split("/"))
kw = dict(a.split("=") for a in sys.argv[1:] if "=" in a)
ww = float(kw.pop("wiener", WIENER_WEIGHT))
rule = kw.pop("rule", "fixed")  # "noise": the weight follows the crop's estimated noise; "guarded": and falls back (gain 0)
cfg = replace(BlindConfig(), **{k: type(getattr(BlindConfig, k))(v) for k, v in kw.items()})
kernels = load_kernels(Path("../shared/data/kernels/kohler12_estimated"))
sharp = Path("../shared/data/val")
files = sorted(p for p in sharp.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)


def psnr(a, b):
    return float(10 * np.log10(1.0 / np.mean((np.clip(a, 0, 1) - b) ** 2)))


for i, f in enumerate(files):
    if i % shards != shard:
        continue
    ki = i % len(kernels)
    u8 = np.round(read_image(f).rgb * 255).astype(np.uint8)
    y = _centre(blur_with_kernel(u8, kernels[ki].array, 0.01, np.random.default_rng([1234, i])), 256).astype(np.float64)
    x = _centre(u8.astype(np.float64) / 255.0, 256)
    base = psnr(y, x)
    ke = estimate_kernel(to_gray(y), cfg)
    w = ww if rule == "fixed" else wiener_weight(rule, to_gray(y))
    fell_back = rule == "guarded" and residual_ratio(to_gray(y), ke) > GUARD_RESIDUAL
    g_est = 0.0 if fell_back else psnr(wiener(y, ke, w), x) - base
    g_true = psnr(wiener(y, kernels[ki].array.astype(np.float64), w), x) - base
    print(f"{i:3d} {ki + 1:02d} {g_est:+.3f} {g_true:+.3f}", flush=True)
