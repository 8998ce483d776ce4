"""Issue 35 probe (training photos only): on photos blurred by the uniform-kernel part of the
handheld model (linear response, no rotation) with its noise, the kernel estimated on the
photo denoised first (OpenCV's non-local means, h = H_FACTOR x the noise estimate x 255):
its similarity to the true kernel, the gains of the original photo and of the denoised
one deconvolved with it, and of the denoised photo alone.

    python docs/bench/kernel-first/handheld_denoise_first_probe.py N H_FACTOR
"""
import sys, json
sys.path.insert(0, "docs/bench/kernel-first")
from dataclasses import replace
import numpy as np, torch, cv2
import estimator_loop as L
from deblurkit.data.blur import apply_blur, blur_model
from deblurkit.deconv import kernel_similarity
from deblurkit.deconv.blind import noise_sigma, to_gray
from deblurkit.deconv.photo import estimate_photo_kernel, deconvolve_photo, as_kernel
from deblurkit.io import IMAGE_EXTENSIONS, read_image
torch.set_num_threads(2)
hh = blur_model("handheld")
cfg = replace(hh, response_gamma=(1.0, 1.0), handheld=replace(hh.handheld, p_rotation=0.0))
files = sorted(p for p in L.SHARP.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)[48:48 + int(sys.argv[1])]
hm = float(sys.argv[2])
acc = {}
for i, f in enumerate(files):
    x = read_image(f).rgb.astype(np.float32)
    res = apply_blur(x, np.random.default_rng([77, i]), cfg, noise=True)
    if res.kinds != ["motion"]:
        continue
    y = np.clip(res.blurry, 0, 1).astype(np.float64)
    k = as_kernel(res.kernels[0])
    s = noise_sigma(to_gray(y))
    u8 = np.round(y * 255).astype(np.uint8)
    h = max(1.0, hm * s * 255)
    dn = cv2.fastNlMeansDenoisingColored(u8, None, h, h, 5, 15).astype(np.float64) / 255
    est = estimate_photo_kernel(dn)
    base = L.score(y, x.astype(np.float64))
    row = dict(i=i, sigma=s, sim=kernel_similarity(est.kernel, k), acc=bool(est.accepted),
               d_y=L.score(deconvolve_photo(y, est.kernel).astype(np.float64), x) - base,
               d_dn=L.score(deconvolve_photo(dn, est.kernel).astype(np.float64), x) - base,
               dn=L.score(dn, x.astype(np.float64)) - base)
    print(json.dumps({a: (round(b, 3) if isinstance(b, float) else b) for a, b in row.items()}), flush=True)
    for a in ("sim", "d_y", "d_dn", "dn"):
        acc.setdefault(a, []).append(row[a])
print("h x", hm, {a: round(float(np.mean(v)), 3) for a, v in acc.items()}, len(acc["sim"]))
