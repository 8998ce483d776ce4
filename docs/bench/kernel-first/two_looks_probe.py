"""Issue 35 probe, part 1 (training photos only): where the half-scale look runs (a first
kernel accepted, over HALF_LOOK_EXTENT px, not filling its window), both kernels: the
first (k1) and the half-scale one enlarged (kh); their guard residuals (each on its own
window and on the other's), their similarity to each other and to the true kernel, the
predictor check on k1, and the gains (aligned, as the bench scores) of the photo
deconvolved with each and of the blind predictor. The kernels go to OUT_DIR for part 2
(two_looks_scores.py), which scores the two deconvolutions.

    python docs/bench/kernel-first/two_looks_probe.py OUT_DIR > OUT_DIR/rows.jsonl

Photos: those of kernel_extent_probe.py (our kernels on BSDS, ImageNet and Sun80 training
photos; the 18 GoPro training frames). Never the Köhler kernels, ../shared/data/val or the
real photos. Findings: two_looks_probe.md.
"""
import json, sys, time
from pathlib import Path
sys.path.insert(0, "docs/bench/kernel-first")
from dataclasses import replace
import cv2, numpy as np, torch
import estimator_loop as L
from predictor_on_deconv_probe import first_set_jobs, training_pair
from kernel_extent_probe import second_set_jobs
from deblurkit.api import Deblurrer
from deblurkit.deconv import BlindConfig, estimate_kernel, kernel_similarity
from deblurkit.deconv.blind import _odd, residual_ratio, GUARD_RESIDUAL
from deblurkit.deconv.photo import (deconvolve_photo, kernel_extent, resize_kernel, _gray_window, estimation_scale,
                                    centre_region, KernelEstimate, HALF_LOOK_EXTENT, FILL_MARGIN)
from deblurkit.kernel_path import predictor_check, RECOGNISED_RATIO, DEBLURRED_RATIO

torch.set_num_threads(2)
model = Deblurrer()
P = lambda a: model.restore(np.clip(a, 0, 1).astype(np.float32), "fast", kernel="none").astype(np.float64)
to_t = lambda a: torch.from_numpy(np.ascontiguousarray(a, np.float32)).permute(2, 0, 1)[None]
pred = lambda t: torch.from_numpy(P(t[0].permute(1, 2, 0).numpy()).astype(np.float32)).permute(2, 0, 1)[None]
cfg = BlindConfig()
OUT = Path(sys.argv[1])
OUT.mkdir(parents=True, exist_ok=True)
rows = []
for kind, i, path in first_set_jobs() + second_set_jobs():
    t0 = time.time()
    y, x = training_pair(kind, i, path)
    H, W = y.shape[:2]
    s = estimation_scale(H, W)
    region = centre_region(H, W, s)
    win = _gray_window(y, region, s)
    k1 = estimate_kernel(win, cfg)
    r1 = residual_ratio(win, k1)
    e1 = kernel_extent(k1)
    if not (r1 <= GUARD_RESIDUAL and e1 <= cfg.kernel_size - FILL_MARGIN and e1 > HALF_LOOK_EXTENT):
        continue
    half = centre_region(H, W, s / 2)
    hwin = _gray_window(y, half, s / 2)
    kh = estimate_kernel(hwin, cfg)
    rh = residual_ratio(hwin, kh)
    kh_up = resize_kernel(kh, 2 * kh.shape[0] + 1)
    k1_down = resize_kernel(k1, _odd(k1.shape[0] / 2))
    full = lambda k: k if s == 1 else resize_kernel(k, _odd(k.shape[0] / s))
    est1 = KernelEstimate(full(k1), True, r1, s, region)
    chk = predictor_check(to_t(y), est1, pred)
    base = L.score(y, x)
    row = dict(kind=kind, i=i, true_extent=kernel_extent(L.our_kernel(i, ["small", "large", "huge"])) if kind == "shake" else None,
               e1=e1, eh=2 * kernel_extent(kh), r1=r1, rh=rh, r1_on_half=residual_ratio(hwin, k1_down), rh_on_full=residual_ratio(win, kh_up),
               sim=kernel_similarity(kh_up, k1), ratio=chk.ratio, deblurred=chk.deblurred,
               kernel_path=bool(chk.ratio < RECOGNISED_RATIO and chk.deblurred > DEBLURRED_RATIO),
               g1=L.score(deconvolve_photo(y, full(k1)).astype(np.float64), x) - base,
               gh=L.score(deconvolve_photo(y, full(kh_up)).astype(np.float64), x) - base, gP=L.score(P(y), x) - base)
    if kind == "shake":
        kt = L.our_kernel(i, ["small", "large", "huge"])
        kt_s = kt if s == 1 else resize_kernel(kt, _odd(kt.shape[0] * s))
        row.update(sim1_true=kernel_similarity(k1, kt_s), simh_true=kernel_similarity(kh_up, kt_s), rt=residual_ratio(win, kt_s) if kt_s.shape[0] < min(win.shape) // 2 else None)
    np.savez(OUT / f"k_{kind}_{i}.npz", k1=full(k1), kh=full(kh_up))
    row["s"] = round(time.time() - t0, 1)
    rows.append(row)
    print(json.dumps(row), flush=True)
