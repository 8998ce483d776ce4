"""Issue 35 probe (training photos only): night photos, where camera shake is commonest
(long exposures), and where the estimator fails on clipped highlights. An isolated point
light, blurred by the shake, draws the kernel itself (Hu, Cho, Wang & Yang 2014,
"Deblurring low-light images with light streaks"). Does reading the kernel from the
photo's light streaks beat the product's estimate there?

The photos: the loop's bsds500_test photos made night scenes in light (values^2.2 x DARK),
with N_LIGHTS point lights (discs of 0-2 px radius, 2-40 times white, warm colours) at
random places, blurred in light by our own kernels (`estimator_loop.our_kernel`: 13-27 and
31-75 px), back to values (1/2.2), 1% noise, 8 bits. The sharp reference is the same scene
unblurred (clipped as a camera clips it).

The streak readout: deblurkit.deconv.streaks (isolated, thin streaks around the brightest
local maxima; the one most others agree with, and those that agree with it averaged), here
without its gate (a kernel wherever one other streak is alike) and with its width check set
by STREAK_WIDTH_MAX (0: none). The "estimate" columns are the product's kernel path without
the networks (deconv.photo.estimate_photo_kernel: the streaks where they agree, else the
estimator and its guard; a streak kernel deconvolved as a given one, an estimate by the TV step).
NIGHT_WINDOWS=N adds N lit windows or lamp shades (3-20 px, 1-3x white) to each scene;
NIGHT_NOISE the noise's standard deviation on the values (default 0.01); NIGHT_JPEG=Q a JPEG
round trip at quality Q last.
STREAKS_ONLY=1 leaves the estimator's columns out (nan); "where 2+ others agree" scores the
streak kernel only where the readout's gate (streaks.MIN_AGREEING) would take it.

    python docs/bench/kernel-first/light_streak_probe.py N [DOMAIN]     (from the repository root; DOMAIN 2.2: the
        streak and true kernels' deconvolutions made in light, values^2.2 and back)

Prints per class: the product's estimate (similarity; d = guard + TV, a refused photo
scores 0), the streak kernel (similarity; deconvolved as a given kernel is, i.e. with the
highlight solver where the photo has clipped pixels), the true kernel the same way.
"""
import os
import sys

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from multiprocessing import Pool  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import estimator_loop as L  # noqa: E402
from deblurkit.data.blur import convolve  # noqa: E402
from deblurkit.deconv import kernel_similarity  # noqa: E402
from deblurkit.deconv import streaks  # noqa: E402
from deblurkit.deconv.photo import deconvolve_photo, estimate_photo_kernel  # noqa: E402
from deblurkit.io import IMAGE_EXTENSIONS, read_image  # noqa: E402

GAMMA = 2.2
DARK = 0.12
N_LIGHTS = 25
N_WINDOWS = int(os.environ.get("NIGHT_WINDOWS", "0"))  # extended lights added to each scene (0: point lights only)
NOISE = float(os.environ.get("NIGHT_NOISE", "0.01"))  # Gaussian noise on the values (a high-ISO night photo: more)
JPEG = int(os.environ.get("NIGHT_JPEG", "0"))  # a JPEG round trip at this quality last (0: none)
SIZE = 75  # the largest kernel looked for (the product's first look)
# A streak whose area over its longest side (its mean width, roughly) is above this is left
# out (0: none; the product's is streaks.WIDTH_MAX).
WIDTH_MAX = float(os.environ.get("STREAK_WIDTH_MAX", "0"))
STREAKS_ONLY = os.environ.get("STREAKS_ONLY", "") == "1"  # skip the estimator's columns  # average the agreeing streaks (else: the chosen one alone)


def night_photo(i: int, path):
    rng = np.random.default_rng([77, i])
    k = L.our_kernel(i).astype(np.float32)
    x = read_image(path).rgb.astype(np.float32)
    light = (x ** GAMMA) * DARK
    h, w = light.shape[:2]
    for _ in range(N_LIGHTS):
        cy, cx, r = rng.integers(0, h), rng.integers(0, w), int(rng.integers(0, 3))
        level = float(np.exp(rng.uniform(np.log(2), np.log(40))))
        colour = np.array([1.0, rng.uniform(0.75, 1.0), rng.uniform(0.45, 1.0)], np.float32)
        mask = np.zeros((h, w), np.uint8)
        cv2.circle(mask, (int(cx), int(cy)), r, 1, -1)
        light[mask > 0] = level * colour
    for _ in range(N_WINDOWS):  # lit windows and lamp shades: extended lights, which are not the kernel
        cy, cx = int(rng.integers(0, h)), int(rng.integers(0, w))
        wh, ww = int(rng.integers(3, 21)), int(rng.integers(3, 15))
        level = float(rng.uniform(1.0, 3.0))
        light[cy:cy + wh, cx:cx + ww] = level * np.array([1.0, rng.uniform(0.7, 0.95), rng.uniform(0.35, 0.7)], np.float32)
    blurred = convolve(light, k)
    y = np.clip(blurred, 0, 1) ** (1 / GAMMA) + NOISE * rng.standard_normal(blurred.shape).astype(np.float32)
    y = np.round(np.clip(y, 0, 1) * 255) / 255
    if JPEG:  # as a phone stores it
        ok, buf = cv2.imencode(".jpg", np.round(y[..., ::-1] * 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, JPEG])
        y = cv2.imdecode(buf, cv2.IMREAD_COLOR)[..., ::-1].astype(np.float32) / 255
    sharp = np.clip(light, 0, 1) ** (1 / GAMMA)
    return k.astype(np.float64), y.astype(np.float64), sharp.astype(np.float64)


def streak_kernel(y: np.ndarray, size: int = SIZE):
    """(kernel or None, how many other streaks agreed): the readout of deconv.streaks
    without its gate (a kernel wherever one other streak is alike), the width check at
    STREAK_WIDTH_MAX (0: none)."""
    light, clipped = streaks.light_and_clipped(y)
    found = streaks.isolated_streaks(light, clipped, size, WIDTH_MAX or np.inf)
    result = streaks.agreed_kernel(found, min_agreeing=0)
    return (None, 0) if result is None else (result.kernel, result.agreeing)


def one(job):
    i, path, domain = job
    torch.set_num_threads(1)
    k, y, sharp = night_photo(i, path)
    base = L.score(y, sharp)
    if STREAKS_ONLY:  # the estimator's columns left out (they do not depend on the readout)
        est, d, d_given, from_streaks = None, np.nan, np.nan, np.nan
    else:
        est = estimate_photo_kernel(y)
        d = L.score(deconvolve_photo(y, est.kernel, estimated=not est.streaks).astype(np.float64), sharp) - base if est.accepted else 0.0
        from_streaks = float(est.streaks > 0)
        # the same kernel deconvolved as a given one is (the highlight solver on photos with clipped pixels)
        d_given = L.score(deconvolve_photo(y, est.kernel).astype(np.float64), sharp) - base if est.accepted else 0.0
    ks, agreed = streak_kernel(y)
    if ks is not None:
        s_sim = kernel_similarity(ks, k)
        s_gain = L.score(np.clip(deconvolve_photo(y ** domain, ks).astype(np.float64), 0, 1) ** (1 / domain), sharp) - base
    else:
        s_sim, s_gain = np.nan, 0.0
    true = L.score(np.clip(deconvolve_photo(y ** domain, k).astype(np.float64), 0, 1) ** (1 / domain), sharp) - base
    ys_, xs_ = np.nonzero(k > 0.05 * k.max())
    extent = int(max(np.ptp(ys_), np.ptp(xs_)) + 1)
    return (extent, np.nan if est is None else kernel_similarity(est.kernel, k), d, np.nan if est is None else est.accepted,
            s_sim, s_gain, agreed, true, d_given, from_streaks)


if __name__ == "__main__":
    n = int(sys.argv[1])
    domain = float(sys.argv[2]) if len(sys.argv) > 2 else 1.0  # the given kernels' deconvolution in values^domain (2.2: in light)
    files = sorted(p for p in L.SHARP.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)[:n]
    with Pool(2) as pool:
        rows = np.array(pool.map(one, [(i, f, domain) for i, f in enumerate(files)], chunksize=1), dtype=float)
    for label, lo, hi in (("13-27", 0, 29), ("31-79", 29, 80), ("all", 0, 999)):
        sel = rows[(rows[:, 0] >= lo) & (rows[:, 0] < hi)]
        found = ~np.isnan(sel[:, 4])
        print(f"{label} px: n={len(sel)} estimate sim {sel[:, 1].mean():.3f} d {sel[:, 2].mean():+.2f} (as given {sel[:, 8].mean():+.2f}; "
              f"refused {int((sel[:, 3] == 0).sum())}, from streaks {int(np.nansum(sel[:, 9]))}) | "
              f"streaks: found {int(found.sum())}, sim {np.nanmean(sel[:, 4]):.3f} gain {sel[:, 5].mean():+.2f} "
              f"(where {streaks.MIN_AGREEING}+ others agree: {int((sel[:, 6] >= streaks.MIN_AGREEING).sum())}, "
              f"gain {np.where(sel[:, 6] >= streaks.MIN_AGREEING, sel[:, 5], 0).mean():+.2f}) | true kernel {sel[:, 7].mean():+.2f}"
              f"{' (given kernels deconvolved in values^' + str(domain) + ')' if label == 'all' else ''}")
