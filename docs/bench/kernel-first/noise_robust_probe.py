"""Issue 35, ninth session (training photos only): one estimator setting measured on both
training distributions the kernel path must serve.

- loop: the estimator loop's photos (estimator_loop.py: BSDS test photos, our own hand-shake
  kernels of 13-27 and 31-75 px, 1% Gaussian noise, 8 bits);
- handheld: the next photos of the same folder blurred by the uniform-kernel part of our
  handheld model (linear response, no rotation) with its noise (shot, read, sRGB, JPEG),
  the case where the kernel path lost (handheld_model_probe.md).

Per photo the product's own steps (deconv.photo: estimate, guard, tiled TV deconvolution;
a refused photo scores 0), the estimated kernel's similarity to the true one, and the gain
with the true kernel (the ceiling). Settings are deconv.photo / deconv.nonblind module
constants given as NAME=value; loop_noise=S sets the loop's Gaussian noise (default 0.01).

    python docs/bench/kernel-first/noise_robust_probe.py N_LOOP N_HANDHELD [NAME=value ...]
"""
import os
import sys

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from dataclasses import replace  # noqa: E402
from multiprocessing import Pool  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

import estimator_loop as L  # noqa: E402
from deblurkit.bench.kernels import blur_with_kernel  # noqa: E402
from deblurkit.data.blur import apply_blur, blur_model  # noqa: E402
from deblurkit.deconv import kernel_similarity, nonblind, photo  # noqa: E402
from deblurkit.io import IMAGE_EXTENSIONS, read_image  # noqa: E402

HH = blur_model("handheld")
UNIFORM = replace(HH, response_gamma=(1.0, 1.0), handheld=replace(HH.handheld, p_rotation=0.0))


def setting(settings):
    for name, value in settings.items():
        module = photo if hasattr(photo, name) else nonblind
        setattr(module, name, float(value))


def probe_photo(kind, i, path, loop_noise=0.01, classes=None):
    """(sharp, blurry, true kernel) of probe photo i, float64: "loop" blurs it as the
    estimator loop does (our kernel i of `classes`, Gaussian noise, 8 bits), "handheld" by
    UNIFORM with its noise; None where the handheld draw is not motion alone."""
    if kind == "loop":
        k = L.our_kernel(i, classes)
        u8 = np.round(read_image(path).rgb * 255).astype(np.uint8)
        y = blur_with_kernel(u8, k.astype(np.float32), loop_noise, np.random.default_rng([1234, i])).astype(np.float64)
        return u8 / 255.0, y, k
    x = read_image(path).rgb.astype(np.float32)
    res = apply_blur(x, np.random.default_rng([77, i]), UNIFORM, noise=True)
    if res.kinds != ["motion"]:
        return None
    return x.astype(np.float64), np.clip(res.blurry, 0, 1).astype(np.float64), photo.as_kernel(res.kernels[0])


def one(job):
    kind, i, path, settings = job
    torch.set_num_threads(1)
    settings = dict(settings)
    loop_noise = float(settings.pop("loop_noise", 0.01))
    setting(settings)
    made = probe_photo(kind, i, path, loop_noise)
    if made is None:
        return None
    x, y, k = made
    base = L.score(y, x)
    sigma = photo.noise_sigma(photo._gray_window(y, photo.centre_region(*y.shape[:2], photo.estimation_scale(*y.shape[:2])), 1.0))
    est = photo.estimate_photo_kernel(y)
    gain = L.score(photo.deconvolve_photo(y, est.kernel, estimated=True).astype(np.float64), x) - base if est.accepted else 0.0
    true = L.score(photo.deconvolve_photo(y, k).astype(np.float64), x) - base
    return kind, i, photo.kernel_extent(k), bool(est.accepted), kernel_similarity(est.kernel, k), gain, true, sigma


if __name__ == "__main__":
    n_loop, n_hh = int(sys.argv[1]), int(sys.argv[2])
    settings = dict(a.split("=", 1) for a in sys.argv[3:])
    files = sorted(p for p in L.SHARP.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
    jobs = [("loop", i, f, settings) for i, f in enumerate(files[:n_loop])]
    jobs += [("handheld", i, f, settings) for i, f in enumerate(files[48:48 + n_hh])]
    with Pool(2) as pool:
        rows = [r for r in pool.map(one, jobs, chunksize=1) if r is not None]
    for r in rows:
        print(f"{r[0]:8s} {r[1]:3d} {r[2]:3d}px {'acc' if r[3] else 'ref'} sim {r[4]:.2f} est {r[5]:+.2f} true {r[6]:+.2f} noise {r[7]:.4f}")
    for kind in ("loop", "handheld"):
        sel = [r for r in rows if r[0] == kind]
        if sel:
            print(f"{kind}: n={len(sel)} accepted {sum(r[3] for r in sel)} sim {np.mean([r[4] for r in sel]):.3f} "
                  f"est {np.mean([r[5] for r in sel]):+.3f} true {np.mean([r[6] for r in sel]):+.3f} | {settings}")
