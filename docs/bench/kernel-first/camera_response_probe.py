"""Issue 35 probe (training photos only): what a camera's response and its clipped
highlights cost the kernel path, with the estimated and with the true kernel.

The benchmarks (Köhler bench, the issue's held-out sets, the estimator loop) blur the
stored 8-bit values. A camera blurs light: the shake smears the scene's light on the
sensor, then the camera's tone curve (about a 2.2 power for sRGB JPEGs) makes the values,
and a highlight the sensor clipped was brighter than it shows. This probe blurs each photo
as the loop does (bsds500_test, our own kernels `estimator_loop.our_kernel`, 1% Gaussian
noise on the values, 8 bits; through `handheld-plain` with a fixed response), but in
light = values^gamma with clipped pixels (any channel at 255) lifted x gain, on the first N
photos with more than 2% clipped pixels. domain=G: the photo is turned into values^G before
the product's estimate and TV deconvolution and back after (G = gamma: processing in light).

    python docs/bench/kernel-first/camera_response_probe.py N GAMMA GAIN [domain=G] [BlindConfig key=value ...]

Prints per class: the product's d (estimate, guard, TV; a refused photo scores 0), the
kernel's similarity to the truth, the TV deconvolution with the true kernel, refusals.
Two worker processes of one thread each.
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
from deblurkit.data.blur import CLIPPED, apply_blur, blur_model  # noqa: E402
from deblurkit.deconv import BlindConfig, kernel_similarity  # noqa: E402
from deblurkit.deconv.photo import deconvolve_photo, estimate_photo_kernel  # noqa: E402
from deblurkit.io import IMAGE_EXTENSIONS, read_image  # noqa: E402


def camera_photo(i: int, path, gamma: float, gain: float):
    """Photo i blurred in light (values^gamma, clipped pixels x gain) by the loop's kernel i,
    1% noise on the values, 8 bits: (kernel, blurry, sharp, the blurry's score)."""
    k = L.our_kernel(i)
    x = read_image(path).rgb.astype(np.float32)
    blur = replace(blur_model("handheld-plain"), response_gamma=(gamma, gamma), highlight_gain=(gain, gain),
                   srgb_noise=(0.01, 0.01))
    y = apply_blur(x, np.random.default_rng([1234, i]), blur, kernel=k.astype(np.float32)).blurry.astype(np.float64)
    x = x.astype(np.float64)
    return k, y, x, L.score(y, x)


def clipped_photos(n: int) -> list:
    """The first n loop photos with more than 2% clipped pixels."""
    files = sorted(p for p in L.SHARP.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
    return [f for f in files if (read_image(f).rgb.max(axis=2) >= CLIPPED).mean() > 0.02][:n]


def one(job):
    i, path, gamma, gain, cfg, domain = job
    torch.set_num_threads(1)
    k, y, x, base = camera_photo(i, path, gamma, gain)
    seen = y ** domain
    est = estimate_photo_kernel(seen, cfg=cfg)
    d = np.clip(deconvolve_photo(seen, est.kernel, estimated=True), 0, 1) ** (1 / domain) if est.accepted else y
    d_true = np.clip(deconvolve_photo(seen, k), 0, 1) ** (1 / domain)
    ys, xs = np.nonzero(k > 0.05 * k.max())
    extent = int(max(np.ptp(ys), np.ptp(xs)) + 1)
    return i, extent, L.score(d, x) - base, L.score(d_true, x) - base, kernel_similarity(est.kernel, k), est.accepted


if __name__ == "__main__":
    n, gamma, gain = int(sys.argv[1]), float(sys.argv[2]), float(sys.argv[3])
    kw = dict(a.split("=", 1) for a in sys.argv[4:])
    domain = float(kw.pop("domain", 1.0))
    cfg = replace(BlindConfig(), **{k: L.parse(getattr(BlindConfig, k), v) for k, v in kw.items()})
    files = clipped_photos(n)
    with Pool(2) as pool:
        rows = pool.map(one, [(i, f, gamma, gain, cfg, domain) for i, f in enumerate(files)], chunksize=1)
    for label, lo, hi in (("13-27", 0, 29), ("31-79", 29, 80)):
        sel = [r for r in rows if lo <= r[1] < hi]
        print(f"{label} px: n={len(sel)} d {np.mean([r[2] for r in sel]):+.2f} sim {np.mean([r[4] for r in sel]):.3f} "
              f"true {np.mean([r[3] for r in sel]):+.2f} refused {sum(not r[5] for r in sel)}")
    print(f"all: d {np.mean([r[2] for r in rows]):+.3f} sim {np.mean([r[4] for r in rows]):.3f} "
          f"true {np.mean([r[3] for r in rows]):+.2f} | gamma {gamma} gain {gain} domain {domain} {kw or ''}")
