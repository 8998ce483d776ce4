"""Which part of the handheld blur model (`deblur blur`, the training model) breaks the
kernel path? Training photos (the loop's BSDS photos 48-63, after the 48 the other probes
use), each blurred by the model or a variant of it (seed [77, i]), the product's `fast`
with --kernel auto against none, aligned gains over the blurry photo.

    python docs/bench/kernel-first/handheld_model_probe.py "CONFIG" N [nonoise]

CONFIG: handheld | "linear response, no rotation" | "no rotation" | "linear response";
a third argument: the model's noise off (apply_blur(noise=False)). Findings: handheld_model_probe.md.
"""
import sys, json
sys.path.insert(0, "docs/bench/kernel-first")
from dataclasses import replace
import numpy as np, torch
import estimator_loop as L
from deblurkit.api import Deblurrer
from deblurkit.data.blur import apply_blur, blur_model
from deblurkit.io import IMAGE_EXTENSIONS, read_image

torch.set_num_threads(2)
model = Deblurrer()
reports = []
def run(y, kernel):
    return model.restore(y, "fast", kernel=kernel).astype(np.float64)
hh = blur_model("handheld")
configs = {
    "handheld": hh,
    "linear response, no rotation": replace(hh, response_gamma=(1.0, 1.0), handheld=replace(hh.handheld, p_rotation=0.0)),
    "no rotation": replace(hh, handheld=replace(hh.handheld, p_rotation=0.0)),
    "linear response": replace(hh, response_gamma=(1.0, 1.0)),
}
name = sys.argv[1]
cfg = configs[name]
files = sorted(p for p in L.SHARP.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)[48:48 + int(sys.argv[2])]
rows = []
for i, f in enumerate(files):
    x = read_image(f).rgb.astype(np.float32)
    res = apply_blur(x, np.random.default_rng([77, i]), cfg, noise=len(sys.argv) < 4)
    y = np.clip(res.blurry, 0, 1).astype(np.float32)
    base = L.score(y.astype(np.float64), x.astype(np.float64))
    gb = L.score(run(y, "none"), x) - base
    ga = L.score(run(y, "auto"), x) - base
    rows.append(dict(i=i, kinds=res.kinds, varying=res.spatially_varying, gb=gb, ga=ga, same=abs(ga - gb) < 1e-6))
    print(json.dumps(rows[-1]), flush=True)
kp = [r for r in rows if not r["same"]]
print(f"{name}: {len(rows)} photos, blind {np.mean([r['gb'] for r in rows]):+.2f}, auto {np.mean([r['ga'] for r in rows]):+.2f}; "
      f"kernel path on {len(kp)}: there blind {np.mean([r['gb'] for r in kp]) if kp else 0:+.2f}, kernel {np.mean([r['ga'] for r in kp]) if kp else 0:+.2f}")
