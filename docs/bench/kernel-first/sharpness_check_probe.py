"""Issue 35 probe (training photos only): on the photos the kernel path takes, is the blind
predictor's result or the deconvolution the sharper one (gradient sparsity, at the check's
window and scale), and does that tell which path gains more? Rows (one JSON per line) to
stdout; the photos of kernel_extent_probe.py. Findings: sharpness_check_probe.md.

    python docs/bench/kernel-first/sharpness_check_probe.py > OUT.jsonl
"""
import json, sys, time
sys.path.insert(0, "docs/bench/kernel-first")
import cv2, numpy as np, torch
import estimator_loop as L
from predictor_on_deconv_probe import first_set_jobs, training_pair
from kernel_extent_probe import second_set_jobs
from deblurkit.api import Deblurrer
from deblurkit.deconv.blind import _odd, to_gray
from deblurkit.deconv.photo import deconvolve_photo, estimate_photo_kernel, kernel_extent, resize_kernel, unit, gradient_sparsity
from deblurkit import kernel_path as kp

torch.set_num_threads(2)
model = Deblurrer()
P = lambda a: model.restore(np.clip(a, 0, 1).astype(np.float32), "fast", kernel="none").astype(np.float64)
to_t = lambda a: torch.from_numpy(np.ascontiguousarray(a, np.float32)).permute(2, 0, 1)[None]
pred = lambda t: torch.from_numpy(P(t[0].permute(1, 2, 0).numpy()).astype(np.float32)).permute(2, 0, 1)[None]

def check_window(image, est):
    """predictor_check's window and images (y, d, p) at the estimation scale, inside crop."""
    H, W = image.shape[-2:]
    s = est.scale
    kernel = est.kernel if s == 1 else resize_kernel(est.kernel, _odd(est.kernel.shape[0] * s))
    m = int(kernel.shape[0])
    side = int(round((kp.CHECK_SIDE + 2 * m) / s))
    side_h, side_w = min(H, side), min(W, side)
    x, y0, w, h = est.region
    t = min(max(y0 + h // 2 - side_h // 2, 0), H - side_h)
    l = min(max(x + w // 2 - side_w // 2, 0), W - side_w)
    y = unit(kp._pixels_hwc(image)[t:t + side_h, l:l + side_w]).astype(np.float32)
    if s < 1:
        y = cv2.resize(y, (max(int(round(side_w * s)), 1), max(int(round(side_h * s)), 1)), interpolation=cv2.INTER_AREA)
    d = deconvolve_photo(y, kernel)
    p = pred(torch.from_numpy(np.ascontiguousarray(y)).permute(2, 0, 1)[None].contiguous())[0].permute(1, 2, 0).cpu().numpy()
    hh, ww = y.shape[:2]
    mh, mw = min(m, (hh - 1) // 4), min(m, (ww - 1) // 4)
    ins = (slice(mh, hh - mh), slice(mw, ww - mw))
    g = lambda a: gradient_sparsity(to_gray(np.asarray(a[ins], np.float64)))
    return g(y), g(d), g(p)

for kind, i, path in first_set_jobs() + second_set_jobs():
    t0 = time.time()
    y, x = training_pair(kind, i, path)
    img = to_t(y)
    est = estimate_photo_kernel(y)
    row = dict(kind=kind, i=i, accepted=bool(est.accepted))
    if est.accepted and kernel_extent(est.kernel) * est.scale > kp.NEAR_DOT_EXTENT:
        chk = kp.predictor_check(img, est, pred)
        row.update(ratio=chk.ratio, deblurred=chk.deblurred,
                   kernel_path=bool(chk.ratio < kp.RECOGNISED_RATIO and chk.deblurred > kp.DEBLURRED_RATIO))
        ns_y, ns_d, ns_p = check_window(img, est)
        base = L.score(y, x)
        row.update(ns_y=ns_y, ns_d=ns_d, ns_p=ns_p, gd=L.score(deconvolve_photo(y, est.kernel).astype(np.float64), x) - base,
                   gP=L.score(P(y), x) - base, extent=kernel_extent(est.kernel))
    row["s"] = round(time.time() - t0, 1)
    print(json.dumps(row), flush=True)
