"""Issue 35 probe (training photos only): can the photo tell which domain its blur acts in? Loop
protocol on bsds500_test (our kernels, 1% noise on the values, 8 bits), the blur made on
values^gamma (gamma 1: the benchmarks' blur; 2.2: a camera's, blur in light, then its tone
curve). One estimate on the values; the guard's residual of that kernel on the window as
values and as light (window^2.2); the gains of the TV deconvolution in each domain.

    python docs/bench/kernel-first/response_domain_probe.py N   (run from the repository root)
"""
import os, sys
os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from multiprocessing import Pool
import numpy as np, torch
import estimator_loop as L
from camera_response_probe import camera_photo
from deblurkit.deconv.photo import estimate_photo_kernel, deconvolve_photo, _gray_window
from deblurkit.deconv.blind import residual_ratio
from deblurkit.io import IMAGE_EXTENSIONS
G = 2.2

def one(job):
    i, path, gamma = job
    torch.set_num_threads(1)
    k, y, x, base = camera_photo(i, path, gamma, 1.0)  # handheld-plain's highlights: not lifted
    est = estimate_photo_kernel(y)
    win = _gray_window(y, est.region, est.scale)
    # the window in light: the grey of the light, not the light of the grey
    winl = _gray_window(y ** G, est.region, est.scale)
    rv, rl = residual_ratio(win, est.kernel), residual_ratio(winl, est.kernel)  # bsds photos: estimated at full scale
    gv = L.score(deconvolve_photo(y, est.kernel, estimated=True), x) - base
    gl = L.score(np.clip(deconvolve_photo(y ** G, est.kernel, estimated=True), 0, 1) ** (1 / G), x) - base
    return i, gamma, rv, rl, gv, gl, bool(est.accepted)

if __name__ == "__main__":
    n = int(sys.argv[1])
    files = [p for p in sorted(L.SHARP.rglob("*")) if p.suffix.lower() in IMAGE_EXTENSIONS][:n]
    jobs = [(i, f, g) for g in (1.0, 2.2) for i, f in enumerate(files)]
    with Pool(2) as pool:
        rows = pool.map(one, jobs, chunksize=1)
    for r in rows:
        print(f"{r[0]:3d} gamma {r[1]} res values {r[2]:.2f} light {r[3]:.2f} ratio {r[3]/r[2]:.2f} | d values {r[4]:+.2f} light {r[5]:+.2f} acc {int(r[6])}")
    for g in (1.0, 2.2):
        sel = [r for r in rows if r[1] == g and r[6]]
        rat = np.array([r[3] / r[2] for r in sel])
        print(f"gamma {g}: n={len(sel)} ratio light/values median {np.median(rat):.2f} range {rat.min():.2f}-{rat.max():.2f} | d values {np.mean([r[4] for r in sel]):+.2f} light {np.mean([r[5] for r in sel]):+.2f} | rule(light if ratio<1) {np.mean([r[5] if r[3] < r[2] else r[4] for r in sel]):+.2f}")
