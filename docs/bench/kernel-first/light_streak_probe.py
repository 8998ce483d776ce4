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

The streak estimate (a probe, not the product): the brightest local maxima of the photo's
grey light, each window of the kernel's size around one, less the window's border median;
kept where the streak is one piece inside the window (most of its mass in one connected
component that does not touch the window's edge); of those, the least clipped, and the
one that agrees best with the others (kernel_similarity) is the kernel.

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
from deblurkit.deconv.blind import centre_kernel  # noqa: E402
from deblurkit.deconv.photo import deconvolve_photo, estimate_photo_kernel  # noqa: E402
from deblurkit.io import IMAGE_EXTENSIONS, read_image  # noqa: E402

GAMMA = 2.2
DARK = 0.12
N_LIGHTS = 25
N_WINDOWS = int(os.environ.get("NIGHT_WINDOWS", "0"))  # extended lights added to each scene (0: point lights only)
SIZE = 75  # the largest kernel looked for (the product's first look)
AVERAGE = os.environ.get("STREAK_AVERAGE", "0") == "1"  # average the agreeing streaks (else: the chosen one alone)


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
    y = np.clip(blurred, 0, 1) ** (1 / GAMMA) + 0.01 * rng.standard_normal(blurred.shape).astype(np.float32)
    y = np.round(np.clip(y, 0, 1) * 255) / 255
    sharp = np.clip(light, 0, 1) ** (1 / GAMMA)
    return k.astype(np.float64), y.astype(np.float64), sharp.astype(np.float64)


def streak_kernel(y: np.ndarray, size: int = SIZE, candidates: int = 40):
    """(kernel or None, how many streaks agreed) from the photo's light streaks."""
    light = (y.mean(axis=2)) ** GAMMA
    clipped = (y.max(axis=2) >= 0.98)
    r = size // 2
    padded = np.pad(light, r, mode="reflect")
    cpad = np.pad(clipped, r, mode="constant")
    smooth = cv2.GaussianBlur(light, (0, 0), 2.0)
    floor = 3 * cv2.medianBlur(np.clip(light * 255, 0, 255).astype(np.uint8), 2 * (size // 4) + 1) / 255.0 + 0.02
    peaks = (smooth == cv2.dilate(smooth, np.ones((size // 2 | 1, size // 2 | 1), np.uint8))) & (smooth > floor)
    ys, xs = np.nonzero(peaks)
    order = np.argsort(-smooth[ys, xs])[:candidates]
    found = []
    for j in order:
        cy, cx = ys[j] + r, xs[j] + r
        win = padded[cy - r:cy + r + 1, cx - r:cx + r + 1]
        border = np.concatenate([win[0], win[-1], win[:, 0], win[:, -1]])
        s = np.maximum(win - np.median(border), 0)
        if s.max() <= 0:
            continue
        on = (s > 0.1 * s.max()).astype(np.uint8)
        n, labels, stats, _ = cv2.connectedComponentsWithStats(on, connectivity=8)
        if n < 2:
            continue
        weights = np.bincount(labels.ravel(), weights=s.ravel(), minlength=n)
        weights[0] = 0
        main = int(np.argmax(weights))
        x0, y0, bw, bh = stats[main, :4]
        if x0 == 0 or y0 == 0 or x0 + bw >= size or y0 + bh >= size:
            continue  # the streak runs out of the window (longer than it, or a bright region)
        if weights[main] < 0.7 * s.sum():
            continue  # not isolated: other light in the window
        piece = np.where(labels == main, s, 0.0)
        share_clipped = float(cpad[cy - r:cy + r + 1, cx - r:cx + r + 1][labels == main].mean())
        found.append((centre_kernel(piece / piece.sum()), share_clipped))
    if len(found) < 2:
        return None, len(found)
    found.sort(key=lambda t: t[1])  # the least clipped first
    kernels = [f[0] for f in found[:12]]
    sim = np.array([[kernel_similarity(a, b) if a is not b else 1.0 for b in kernels] for a in kernels])
    agree = np.nanmedian(np.where(np.eye(len(kernels), dtype=bool), np.nan, sim), axis=1)
    # the least clipped streak that agrees with another one (clipping flattens a streak's weights)
    agreeing = [j for j in range(len(kernels)) if np.nanmax(np.where(np.eye(len(kernels), dtype=bool)[j], np.nan, sim[j])) > 0.6]
    best = agreeing[0] if agreeing else int(np.nanargmax(agree))
    if AVERAGE:  # the streaks that agree with it, shifted onto it and averaged (noise and clipping average out)
        ref = kernels[best]
        total = np.zeros_like(ref)
        for j in np.nonzero(sim[best] > 0.7)[0]:
            total += _aligned(kernels[j], ref) * (1 - found[j][1])
        total = np.where(total > 0.05 * total.max(), total, 0.0)
        if total.sum() > 0:
            return centre_kernel(total / total.sum()), int((sim[best] > 0.7).sum() - 1)
    return kernels[best], int((sim[best] > 0.7).sum() - 1)


def _aligned(a: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """a shifted (whole pixels, periodic within its window) to where it correlates best with ref."""
    corr = np.fft.irfft2(np.fft.rfft2(ref) * np.conj(np.fft.rfft2(a)), s=ref.shape)
    dy, dx = np.unravel_index(int(np.argmax(corr)), corr.shape)
    return np.roll(a, (dy, dx), axis=(0, 1))


def one(job):
    i, path, domain = job
    torch.set_num_threads(1)
    k, y, sharp = night_photo(i, path)
    base = L.score(y, sharp)
    est = estimate_photo_kernel(y)
    d = L.score(deconvolve_photo(y, est.kernel, estimated=True).astype(np.float64), sharp) - base if est.accepted else 0.0
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
    return extent, kernel_similarity(est.kernel, k), d, est.accepted, s_sim, s_gain, agreed, true, d_given


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
              f"refused {int((sel[:, 3] == 0).sum())}) | "
              f"streaks: found {int(found.sum())}, sim {np.nanmean(sel[:, 4]):.3f} gain {sel[:, 5].mean():+.2f} | true kernel {sel[:, 7].mean():+.2f}"
              f"{' (given kernels deconvolved in values^' + str(domain) + ')' if label == 'all' else ''}")
