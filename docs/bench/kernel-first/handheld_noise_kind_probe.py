"""Issue 35 probe (training photos only; `python docs/bench/kernel-first/handheld_noise_kind_probe.py N`).
Does the noise's kind tell the two training distributions apart? Per photo: the noise
estimate at full resolution and at half (2x2 means: white noise halves), their ratio, and
the kernel path's deconvolution gain at the product's TV weight x1, x3, x10."""
import sys, json
sys.path.insert(0, "docs/bench/kernel-first")
import cv2, numpy as np, torch
import estimator_loop as L
from predictor_on_deconv_probe import training_pair
from deblurkit.data.blur import apply_blur, blur_model
from deblurkit.deconv.photo import estimate_photo_kernel, deconvolve_photo, centre_region, unit
from deblurkit.deconv.nonblind import tv_weight
from deblurkit.deconv.blind import to_gray, noise_sigma
from deblurkit.io import IMAGE_EXTENSIONS, read_image
torch.set_num_threads(2)
cfg = blur_model("handheld")
files = sorted(p for p in L.SHARP.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
n = int(sys.argv[1])
jobs = [("handheld", i, f) for i, f in enumerate(files[48:48 + n])] + [("loop", i, f) for i, f in enumerate(files[:n])]
for kind, i, f in jobs:
    if kind == "handheld":
        x = read_image(f).rgb.astype(np.float32)
        y = np.clip(apply_blur(x, np.random.default_rng([77, i]), cfg).blurry, 0, 1).astype(np.float64)
        x = x.astype(np.float64)
    else:
        y, x = training_pair("shake", i, f)
    H, W = y.shape[:2]; cx, cy, cw, ch = centre_region(H, W, 1.0)
    g = to_gray(unit(y[cy:cy + ch, cx:cx + cw]))
    sf = noise_sigma(g)
    sc = noise_sigma(cv2.resize(g, (g.shape[1] // 2, g.shape[0] // 2), interpolation=cv2.INTER_AREA))
    row = dict(kind=kind, i=i, sigma=sf, ratio=2 * sc / max(sf, 1e-9))
    est = estimate_photo_kernel(y)
    if est.accepted:
        base = L.score(y, x); w0 = tv_weight(g)
        for m in (1, 3, 10):
            row[f"d{m}"] = L.score(deconvolve_photo(y, est.kernel, weight=w0 * m).astype(np.float64), x) - base
    print(json.dumps({k: (round(v, 4) if isinstance(v, float) else v) for k, v in row.items()}), flush=True)
