"""Under the handheld model's noise, is the kernel worse, or the deconvolution? Training photos:
linear response, no rotation (the uniform-kernel part of the model), with and without its
noise: the estimated kernel's similarity to the true one, and the deconvolution's gain with
the estimated kernel and with the true one (the product's TV weight)."""
import sys, json
sys.path.insert(0, "docs/bench/kernel-first")
from dataclasses import replace
import numpy as np, torch
import estimator_loop as L
from deblurkit.data.blur import apply_blur, blur_model
from deblurkit.deconv import kernel_similarity
from deblurkit.deconv.photo import estimate_photo_kernel, deconvolve_photo, as_kernel
from deblurkit.io import IMAGE_EXTENSIONS, read_image
torch.set_num_threads(2)
hh = blur_model("handheld")
cfg = replace(hh, response_gamma=(1.0, 1.0), handheld=replace(hh.handheld, p_rotation=0.0))
files = sorted(p for p in L.SHARP.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)[48:48 + int(sys.argv[1])]
acc = {}
for i, f in enumerate(files):
    x = read_image(f).rgb.astype(np.float32)
    for noise in (False, True):
        res = apply_blur(x, np.random.default_rng([77, i]), cfg, noise=noise)
        if res.kinds != ["motion"]:
            break
        y = np.clip(res.blurry, 0, 1).astype(np.float64)
        k = as_kernel(res.kernels[0])
        est = estimate_photo_kernel(y)
        base = L.score(y, x.astype(np.float64))
        row = dict(i=i, noise=noise, accepted=bool(est.accepted), sim=kernel_similarity(est.kernel, k),
                   d_est=L.score(deconvolve_photo(y, est.kernel).astype(np.float64), x) - base,
                   d_true=L.score(deconvolve_photo(y, k).astype(np.float64), x) - base)
        print(json.dumps({a: (round(b, 3) if isinstance(b, float) else b) for a, b in row.items()}), flush=True)
        for a in ("sim", "d_est", "d_true"):
            acc.setdefault((noise, a), []).append(row[a])
for (noise, a), v in sorted(acc.items()):
    print("noise" if noise else "no noise", a, round(float(np.mean(v)), 3), len(v))
