"""The kernel path's deconvolution on photos blurred by the handheld model (the probe
handheld_model_probe.py's photos and seeds): the TV weight the product chooses (w0) times
1, 3, 10 and 30, and the blind predictor run on the deconvolution (P(d)), against the blind
predictor on the photo (gP). Training photos only.

    python docs/bench/kernel-first/handheld_tv_weight_probe.py N
"""
import sys, json
sys.path.insert(0, "docs/bench/kernel-first")
import numpy as np, torch
import estimator_loop as L
from deblurkit.api import Deblurrer
from deblurkit.data.blur import apply_blur, blur_model
from deblurkit.deconv.photo import estimate_photo_kernel, deconvolve_photo, centre_region, unit
from deblurkit.deconv.nonblind import tv_weight
from deblurkit.deconv.blind import to_gray
from deblurkit.io import IMAGE_EXTENSIONS, read_image
torch.set_num_threads(2)
model = Deblurrer()
P = lambda a: model.restore(np.clip(a, 0, 1).astype(np.float32), "fast", kernel="none").astype(np.float64)
cfg = blur_model("handheld")
files = sorted(p for p in L.SHARP.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)[48:48 + int(sys.argv[1])]
acc = {}
for i, f in enumerate(files):
    x = read_image(f).rgb.astype(np.float32)
    y = np.clip(apply_blur(x, np.random.default_rng([77, i]), cfg).blurry, 0, 1).astype(np.float32)
    est = estimate_photo_kernel(y)
    if not est.accepted:
        continue
    base = L.score(y.astype(np.float64), x.astype(np.float64))
    H, W = y.shape[:2]; cx, cy, cw, ch = centre_region(H, W, 1.0)
    w0 = tv_weight(to_gray(unit(y[cy:cy + ch, cx:cx + cw])))
    row = dict(i=i, w0=w0, gP=L.score(P(y), x) - base)
    for m in (1, 3, 10, 30):
        d = deconvolve_photo(y, est.kernel, weight=w0 * m).astype(np.float64)
        row[f"d{m}"] = L.score(d, x) - base
        if m in (1, 3):
            row[f"Pd{m}"] = L.score(P(d), x) - base
    print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in row.items()}), flush=True)
    for k, v in row.items():
        if k not in ("i", "w0"):
            acc.setdefault(k, []).append(v)
print({k: round(float(np.mean(v)), 2) for k, v in acc.items()}, len(acc["gP"]))
