"""Issue 35 probe (training data only): can the guard tell camera shake from scene motion?

Camera shake blurs the whole window with one kernel; GoPro-style scene motion (people
walking, a panning camera with parallax) does not. The guard today checks one number, the
residual of the kernel on the whole estimation window. This probe records, per photo, that
residual and the residuals of the same kernel on the window's four quadrants (one kernel
must explain each part, not only their sum), with the TV deconvolution's gain:

- shake: the tuning loop's training photos blurred by our own hand-shake kernels (as
  docs/bench/kernel-first/estimator_loop.py makes them), where the kernel path should be taken;
- motion: the 18 GoPro *training* frames (GOPR0372_07_00 47-98), 384 px centres as the
  held-out bench crops them, where the blind predictor gains about +1.2 dB and the kernel
  path should be taken only where it does better.

    python docs/bench/kernel-first/scene_motion_guard_probe.py 48 OUT.json [--halves]
"""
import os, sys, json
os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from multiprocessing import Pool
from pathlib import Path
import numpy as np, torch
import estimator_loop as L
from deblurkit.bench.kernels import blur_with_kernel
from deblurkit.deconv import residual_ratio, to_gray
from deblurkit.deconv.photo import deconvolve_photo, estimate_photo_kernel, kernel_extent
from deblurkit.io import IMAGE_EXTENSIONS, read_image

GOPRO = Path("../shared/data/gopro/GOPR0372_07_00")  # run from the project root, as estimator_loop
TRAIN_FRAMES = range(47, 99)  # the held-out frames are 101-128
CROP = 384
HALVES = "--halves" in sys.argv  # also estimate on the window's two halves (three estimates a photo)


def centre(a, side=CROP):
    h, w = a.shape[:2]
    t, l = (h - min(h, side)) // 2, (w - min(w, side)) // 2
    return a[t:t + side, l:l + side]


def quadrant_residuals(gray, k):
    h, w = gray.shape
    return [residual_ratio(gray[t:t + h // 2, l:l + w // 2], k) for t in (0, h // 2) for l in (0, w // 2)]


def half_kernels(gray, size):
    """Kernels estimated on the window's left and right halves, at the size the photo's
    estimate chose: one camera shake gives the same kernel on both."""
    from dataclasses import replace
    from deblurkit.deconv import BlindConfig, estimate_kernel
    cfg = replace(BlindConfig(), kernel_size=size)
    w = gray.shape[1]
    return estimate_kernel(gray[:, : w // 2], cfg), estimate_kernel(gray[:, w // 2:], cfg)


def one(job):
    kind, i, path = job
    torch.set_num_threads(1)
    if kind == "shake":
        k = L.our_kernel(i, ["small", "large", "huge"])
        u8 = np.round(read_image(path).rgb * 255).astype(np.uint8)
        y = blur_with_kernel(u8, k.astype(np.float32), 0.01, np.random.default_rng([1234, i])).astype(np.float64)
        x = u8 / 255.0
        row = dict(kind=kind, i=i, true_ext=kernel_extent(k))
    else:
        y = centre(read_image(GOPRO / "blur" / path).rgb.astype(np.float64))
        x = centre(read_image(GOPRO / "sharp" / path).rgb.astype(np.float64))
        row = dict(kind=kind, i=i, frame=path)
    est = estimate_photo_kernel(y)
    gray = to_gray(centre(y))
    d = deconvolve_photo(y, est.kernel)
    row.update(accepted=est.accepted, res=est.residual, ext=kernel_extent(est.kernel),
               quad=quadrant_residuals(gray, est.kernel), gain=L.score(d, x) - L.score(y, x))
    if HALVES:
        from deblurkit.deconv import kernel_similarity
        kl, kr = half_kernels(gray, est.size)
        row.update(sim_lr=kernel_similarity(kl, kr), sim_l=kernel_similarity(kl, est.kernel), sim_r=kernel_similarity(kr, est.kernel),
                   res_lr=[residual_ratio(gray[:, : gray.shape[1] // 2], kl), residual_ratio(gray[:, gray.shape[1] // 2:], kr)])
    return row


if __name__ == "__main__":
    n, out = int(sys.argv[1]), sys.argv[2]
    files = sorted(p for p in L.SHARP.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)[:n]
    jobs = [("shake", i, f) for i, f in enumerate(files)]
    jobs += [("motion", j, f"{f:06d}.png") for j, f in enumerate(TRAIN_FRAMES) if (GOPRO / "blur" / f"{f:06d}.png").exists()]
    with Pool(2) as pool:
        rows = pool.map(one, jobs, chunksize=1)
    json.dump(rows, open(out, "w"), indent=1)
