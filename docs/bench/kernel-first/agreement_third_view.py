"""Issue 35 probe (training data only; agreement_probe.txt): a third view of the photos whose
two starts disagreed (agree < 0.65) on the kernel path: the kernel estimated from the other
start, and from the usual one, each on the window denoised at 1.5x its noise, and its
similarity to the product's kernel.

    python docs/bench/kernel-first/agreement_third_view.py AGREEMENT_ROWS.jsonl [...]
"""
import os, sys, json
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dataclasses import replace
from pathlib import Path
import numpy as np, torch
torch.set_num_threads(2)
from deblurkit.data.blur import apply_blur, blur_model
from deblurkit.deconv import BlindConfig, kernel_similarity
from deblurkit.deconv.photo import estimate_photo_kernel
from deblurkit.io import IMAGE_EXTENSIONS, read_image
files = sorted(p for p in Path("../shared/data/train/sun80").rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
cfg = blur_model("handheld")
views = {"v_d15": (replace(BlindConfig(), start="vertical"), 1.5), "h_d15": (BlindConfig(), 1.5)}
for fn in sys.argv[1:]:
    for line in open(fn):
        r = json.loads(line)
        if r["path"] != "kernel" or r["agree"] >= 0.65:
            continue
        i = r["i"]
        x = read_image(files[i]).rgb.astype(np.float32)
        b = apply_blur(x, np.random.default_rng([88, i]), cfg)
        y = np.clip(b.blurry, 0, 1).astype(np.float32)
        k1 = estimate_photo_kernel(y).kernel
        out = {name: kernel_similarity(k1, estimate_photo_kernel(y, cfg=c, denoise=d).kernel) for name, (c, d) in views.items()}
        print(i, f"agree12 {r['agree']:.2f}", " ".join(f"{k} {v:.2f}" for k, v in out.items()), f"diff {r['g_auto']-r['g_none']:+.2f}", flush=True)
