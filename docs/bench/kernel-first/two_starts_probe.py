"""Issue 35 probe (training data only): the estimator is chaotic (two estimates that differ
by a rounding error differ by 0.9 dB per photo on average on the loop), so can a second
estimate from another start, with a choice between the two, gain? Per photo of the
estimator loop (docs/bench/kernel-first/estimator_loop.py: our own kernels on training photos,
the product's steps), the kernel path's estimate from the usual start (two pixels side by
side) and from two pixels one above the other, and the gains of each, of the one whose
deconvolved grey window is sharper (photo.sharper_deconvolution, where both are accepted), of
the one with the lower guard residual, and of the better one (an oracle).

    python docs/bench/kernel-first/two_starts_probe.py N OUT.jsonl [offset=0]
"""
import os, sys, json
os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dataclasses import replace
from multiprocessing import Pool
import numpy as np, torch
import estimator_loop as L
from deblurkit.deconv import BlindConfig, kernel_similarity
from deblurkit.deconv.photo import _gray_window, kernel_extent, deconvolve_photo, estimate_photo_kernel, sharper_deconvolution, resize_kernel
from deblurkit.deconv.blind import _odd, clean_kernel
from deblurkit.io import IMAGE_EXTENSIONS

ACTIVE = ["small", "large", "huge"]


def register(b, a):
    """b shifted (whole pixels, cyclically within its window) onto a's best overlap."""
    corr = np.fft.irfft2(np.fft.rfft2(a) * np.conj(np.fft.rfft2(b)), s=a.shape)
    dy, dx = np.unravel_index(int(np.argmax(corr)), corr.shape)
    return np.roll(b, (dy, dx), axis=(0, 1))


def one(job):
    i, path = job
    torch.set_num_threads(1)
    k, y, x, base = L.loop_photo(i, path, ACTIVE)
    row = dict(i=i, extent=kernel_extent(k))
    ests = {}
    for name in ("horizontal", "vertical"):
        est = estimate_photo_kernel(y, cfg=replace(BlindConfig(), start=name))
        gain = L.score(deconvolve_photo(y, est.kernel, estimated=True), x) - base if est.accepted else 0.0
        ests[name] = est
        row[name] = dict(accepted=est.accepted, residual=est.residual, gain=gain, sim=kernel_similarity(est.kernel, k),
                         size=est.size)
    a, b = ests["horizontal"], ests["vertical"]
    if a.accepted and b.accepted:
        # judged where the estimates were made, at the estimation scale (the loop's photos: 1)
        window = _gray_window(y, a.region, a.scale)
        ka = a.kernel if a.scale == 1 else resize_kernel(a.kernel, _odd(a.kernel.shape[0] * a.scale))
        kb = b.kernel if b.scale == 1 else resize_kernel(b.kernel, _odd(b.kernel.shape[0] * b.scale))
        row["sharper"] = "vertical" if sharper_deconvolution(window, kb, ka) else "horizontal"
    else:
        row["sharper"] = "vertical" if b.accepted and not a.accepted else "horizontal"
    if a.accepted and b.accepted and a.size == b.size:
        # the two kernels registered (the shift of their best cross-correlation) and averaged
        fused = clean_kernel(0.5 * (a.kernel + register(b.kernel, a.kernel)), BlindConfig())
        row["fused"] = dict(gain=L.score(deconvolve_photo(y, fused, estimated=True), x) - base,
                            sim=kernel_similarity(fused, k))
    else:
        row["fused"] = row[row["sharper"]]
    row["lower_residual"] = "vertical" if (b.accepted and (not a.accepted or b.residual < a.residual)) else "horizontal"
    return row


if __name__ == "__main__":
    n, out = int(sys.argv[1]), sys.argv[2]
    offset = int(sys.argv[3].split("=")[1]) if len(sys.argv) > 3 else 0
    files = sorted(p for p in L.SHARP.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)[offset:offset + n]
    with Pool(2) as pool:
        rows = pool.map(one, [(offset + i, f) for i, f in enumerate(files)], chunksize=1)
    with open(out, "w") as f:
        for r in rows:
            f.write(json.dumps(r) + "\n")
    for label, lo, hi in (("13-27", 0, 29), ("31-79", 29, 80), ("80+", 80, 999), ("all", 0, 999)):
        sel = [r for r in rows if lo <= r["extent"] < hi]
        g = lambda key: np.mean([r[key]["gain"] if key in ("horizontal", "vertical") else r[r[key]]["gain"] for r in sel])
        oracle = np.mean([max(r["horizontal"]["gain"], r["vertical"]["gain"]) for r in sel])
        print(f"{label:6s} n={len(sel):3d} horizontal {g('horizontal'):+.2f} vertical {g('vertical'):+.2f} "
              f"fused {np.mean([r['fused']['gain'] for r in sel]):+.2f} "
              f"sharper {g('sharper'):+.2f} lower residual {g('lower_residual'):+.2f} oracle {oracle:+.2f}")
