"""Issue 35 probe (training data only): on the handheld-model photos where the kernel path
was taken (handheld_decision_probe_rows.jsonl), is the estimate too long where the blur is
short, and does a look at half the scale (the same window reaching twice as far, as the
half-scale look of deconv.photo does for long kernels) see a shorter blur there? Per photo:
the true kernel's extent, the estimate's, the half-scale estimate's (enlarged back), their
guard residuals, and the path's gains from the decision probe.

    python docs/bench/kernel-first/short_blur_probe.py docs/bench/kernel-first/handheld_decision_probe_rows.jsonl
"""
import os, sys, json
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dataclasses import replace
from pathlib import Path
import numpy as np, torch
from deblurkit.data.blur import apply_blur, blur_model
from deblurkit.deconv.blind import BlindConfig, estimate_kernel, residual_ratio
from deblurkit.deconv.photo import (_gray_window, centre_region, denoised_for_estimation, estimate_photo_kernel,
                                    kernel_extent)
from deblurkit.io import read_image

torch.set_num_threads(2)
SHARP = Path("../shared/data/train/sun80")
rows = [json.loads(l) for l in open(sys.argv[1])]
cfg = blur_model("handheld")
for r in rows:
    if r["path"] != "kernel":
        continue
    x = read_image(SHARP / r["file"]).rgb.astype(np.float32)
    y = np.clip(apply_blur(x, np.random.default_rng([88, r["i"]]), cfg).blurry, 0, 1).astype(np.float64)
    est = estimate_photo_kernel(y)
    H, W = y.shape[:2]
    half = centre_region(H, W, est.scale / 2)
    gray = _gray_window(y, half, est.scale / 2)
    k_half = estimate_kernel(denoised_for_estimation(gray), BlindConfig())
    print(f"{r['i']:3d} {r['kind'][:16]:16s} true {r['true_extent']:3d} est {kernel_extent(est.kernel):3d} "
          f"(res {est.residual:.2f})  half-scale est x2 {2 * kernel_extent(k_half):3d} (res {residual_ratio(gray, k_half):.2f})  "
          f"kernel path {r['g_auto']:+.2f} blind {r['g_none']:+.2f}", flush=True)
