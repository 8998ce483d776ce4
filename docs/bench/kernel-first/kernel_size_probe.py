"""Issue 35 probe (training photos only, the tuning loop's photos and our own kernels): the
largest kernel looked for, 75 px against 141 px (and 141 estimated at 75 px on a shrunk
image), each unguarded, TV, aligned; per-photo rows to JSON for selection rules.

    python docs/bench/kernel-first/kernel_size_probe.py 48 small,large,huge OUT.json [SEED [k75,k141]]

SEED shifts which of our kernels each photo gets (a second draw of the same classes).
"""
import os, sys, json
os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dataclasses import replace
from multiprocessing import Pool
import numpy as np, torch
import estimator_loop as L
from deblurkit.bench.kernels import blur_with_kernel
from deblurkit.deconv import BlindConfig, estimate_kernel, residual_ratio, to_gray, tv_deconvolve, kernel_similarity
from deblurkit.deconv.photo import kernel_extent
from deblurkit.io import IMAGE_EXTENSIONS, read_image

CANDS = {"k75": BlindConfig(), "k141": replace(BlindConfig(), kernel_size=141), "k141f": replace(BlindConfig(), kernel_size=141, finest_size=75)}
ONLY = sys.argv[5].split(",") if len(sys.argv) > 5 else list(CANDS)
ext = kernel_extent  # the span the estimator's own fill test uses
def one(job):
    i, path, active, seed = job
    torch.set_num_threads(1)
    k = L.our_kernel(i, active) if seed is None else L.our_kernel(i + seed, active)
    u8 = np.round(read_image(path).rgb * 255).astype(np.uint8)
    y = blur_with_kernel(u8, k.astype(np.float32), 0.01, np.random.default_rng([1234, i])).astype(np.float64)
    x = u8 / 255.0
    base = L.score(y, x)
    h, w = y.shape[:2]; ch, cw = min(h, 384), min(w, 384); t, l = (h-ch)//2, (w-cw)//2
    gray = to_gray(y[t:t+ch, l:l+cw])
    row = dict(i=i, ext=ext(k))
    for name, cfg in CANDS.items():
        if name not in ONLY: continue
        ke = estimate_kernel(gray, cfg)
        row[name] = dict(gain=L.score(tv_deconvolve(y, ke), x) - base, sim=kernel_similarity(ke, k), res=residual_ratio(gray, ke), ext=ext(ke))
    return row
if __name__ == "__main__":
    n = int(sys.argv[1]); active = sys.argv[2].split(","); out = sys.argv[3]
    seed = int(sys.argv[4]) if len(sys.argv) > 4 else None
    files = sorted(p for p in L.SHARP.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)[:n]
    with Pool(2) as pool:
        rows = pool.map(one, [(i, f, active, seed) for i, f in enumerate(files)], chunksize=1)
    json.dump(rows, open(out, "w"), indent=1)
