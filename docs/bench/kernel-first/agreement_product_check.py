"""Issue 35 check (training data only): the product's `fast --kernel auto` with the
second-start agreement gate (agreement_gate.patch, applied with `git apply`; measured and
not kept: agreement_probe.txt) on the photos of the handheld decision
probe's rows that took the kernel path before it (the others took the blind path, which the
agreement does not reach: their output is the same). Prints each photo's path and gain
now, and each set's mean over all its photos with the unchanged rows as they were.

    python docs/bench/kernel-first/agreement_product_check.py ROWS.jsonl [ROWS.jsonl ...]
"""
import os, sys, json
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pathlib import Path
import numpy as np, torch
import estimator_loop as L
from deblurkit.api import Deblurrer
from deblurkit.data.blur import apply_blur, blur_model
from deblurkit.io import IMAGE_EXTENSIONS, read_image

torch.set_num_threads(2)
model = Deblurrer()
files = sorted(p for p in Path("../shared/data/train/sun80").rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
cfg = blur_model("handheld")
for rows_file in sys.argv[1:]:
    rows = [json.loads(line) for line in open(rows_file)]
    now = []
    for r in rows:
        if r["path"] != "kernel":
            now.append(r["g_auto"])
            continue
        i = r["i"]
        x = read_image(files[i]).rgb.astype(np.float32)
        b = apply_blur(x, np.random.default_rng([88, i]), cfg)
        y = np.clip(b.blurry, 0, 1).astype(np.float32)
        base = L.score(y, x)
        ra = model.restore(y, "fast", kernel="auto", return_samples=True)
        g = L.score(ra.image.astype(np.float64), x) - base
        now.append(g)
        print(f"{i:3d} before kernel {r['g_auto']:+.2f} (blind {r['g_none']:+.2f}) now {ra.kernel.path} {g:+.2f}: {ra.kernel.reason}", flush=True)
    print(f"{rows_file}: n={len(rows)} auto before {np.mean([r['g_auto'] for r in rows]):+.3f} now {np.mean(now):+.3f} "
          f"blind {np.mean([r['g_none'] for r in rows]):+.3f} oracle {np.mean([max(r['g_auto'], r['g_none']) for r in rows]):+.3f}", flush=True)
