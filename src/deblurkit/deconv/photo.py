"""The kernel path's photo-level steps: one kernel for a whole photo, and that photo
deconvolved with it in bounded memory.

A photo is estimated at a scale where its long side is at most ESTIMATE_LONG_SIDE (the
blind estimator's cost grows with the area and the kernel's size; shake that spans 200 px
of a 12 MP photo spans 60 px of its 1280 px version), on a window of ESTIMATE_SIDE
pixels there (the centre, or a region the caller names), and the kernel is enlarged back
to full resolution. The guard (blind.residual_ratio) decides whether the kernel explains
the photo; the restorer takes the kernel path only where it does.

The largest kernel looked for is chosen from the photo: a first estimate looks for
kernels up to the estimator's kernel_size (75 px at the estimation scale); where the guard
refuses it, or its kernel nearly fills that window (the blur may be longer than the
window), a second estimate looks for kernels up to LONG_KERNEL_SIZE and is taken where the
guard accepts it; where it does not, neither is trusted (a first kernel that filled its
window was wrong more often than right on the tuning loop). A fixed longer window costs
short kernels 1.2-1.4 dB (more unknowns for the same edges); the second estimate runs only
where the first failed (docs/bench/kernel-first/estimator_loop.txt, session of 2026-12-06).
A first kernel that is accepted and long (over HALF_LOOK_EXTENT px) without filling its
window may be part of a longer blur: the photo is estimated again at half the scale (the
same window reaches twice as far), and that kernel, enlarged, is taken where its guard
residual is at most HALF_LOOK_RESIDUAL and it is at least as long (chosen on training
photos: docs/bench/kernel-first/kernel_extent_probe.py), or where the guard accepts it and
the window deconvolved with it is sharper than with the first kernel (the gradients'
L1/L2 ratio, sharper_deconvolution: the guard's residual prefers the shorter kernel even
where it is the wrong one; chosen on training photos:
docs/bench/kernel-first/two_looks_probe.py). A noisy window (grey noise at least
nonblind.NOISY_SIGMA) is denoised before the estimator reads it (denoised_for_estimation);
the guard judges the kernel on the window as it is.

Before any of that, a photo whose isolated point lights draw agreeing streaks (night
photos: deconv.streaks) takes the kernel the streaks draw; the restorer deconvolves it as a
given kernel (the highlight solver where lights are clipped), since it was measured, not
estimated.

The non-blind step solves a photo of up to DECONV_TILE pixels a side whole, one channel at
a time in float32 (nonblind.tv_deconvolve: a 12 MP photo with a 235 px kernel peaked at
0.9-1.0 GB, docs/bench/kernel-first/tv_whole_memory.txt), because tiles leave seams: the solver's early steps, under little regularisation,
reach far beyond one kernel size. On the speed bench's made-up 12 MP shake photo (a 125 px
kernel in a 235 px estimate) the whole solve scores 30.37 dB where tiles of 1024 px with a
kernel-size margin scored 26.83, and takes less time (5.8 against 7.8 s;
docs/bench/kernel-first/tv_tiles_probe.txt). Larger photos are cut into tiles of
DECONV_TILE with a margin of one kernel size on each side (the periodic pad's wrap-around
stays in the margin), so memory follows the tile and the kernel, not the photo.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import cv2
import numpy as np

from .blind import BlindConfig, GUARD_RESIDUAL, _odd, estimate_kernel, noise_sigma, residual_ratio, to_gray
from .highlights import clipped_share, richardson_lucy_clipped, tv_term
from .nonblind import NOISY_SIGMA, tv_deconvolve, tv_weight, unit
from .streaks import streak_kernel

ESTIMATE_LONG_SIDE = 1280
# The window's side at the estimation scale: more of the photo gives the kernel's least
# squares more salient edges under noise. 384 -> 512 on whole training photos (1024 px):
# +0.4 dB on 13-27 px kernels, +0.3 to +1.0 on 31-75 px (two sets each), at 1.3x the
# estimate's time; 640 added little more at 1.6x again
# (docs/bench/kernel-first/estimate_window_probe.txt).
ESTIMATE_SIDE = 512
MIN_SIDE = 32
DECONV_TILE = 4096  # photos up to this a side are deconvolved whole (tiles leave seams; docs/bench/kernel-first/tv_tiles_probe.py)
MARGIN_KERNELS = 1  # each tile is deconvolved with a margin of one kernel size (its inside kept; 2: the same within 0.016 on a 75 px kernel, at twice the margin)
LONG_KERNEL_SIZE = 141  # the second estimate's window, at the estimation scale
FILL_MARGIN = 5  # a kernel spanning more than its window less this many pixels "fills" it
HALF_LOOK_EXTENT = 40  # a first kernel longer than this (at the estimation scale) is looked for again at half the scale
# ... and replaced where that look's kernel explains its window at least this well and is as long
# (or where the guard accepts it and it deconvolves the window sharper: sharper_deconvolution)
HALF_LOOK_RESIDUAL = 1.0
# A noisy window is denoised before the estimator reads the kernel from it (OpenCV's
# non-local means at ESTIMATE_DENOISE times the window's estimated noise, in 8-bit levels),
# where that noise, measured on the window at the estimation's scale, is at least
# nonblind.NOISY_SIGMA (the TV weight's threshold too): noise drowns the faint edges the
# kernel is read from. The guard still judges the kernel on the window as it is. Chosen on training photos
# (docs/bench/kernel-first/noise_robust_probe.md): as shipped, the estimator loop with 2% /
# 3% Gaussian noise +1.23 -> +2.16 / +0.19 -> +2.30 dB, our handheld model's photos -0.02 ->
# +0.55; denoising every window changed nothing beyond the loop's scatter at 1% noise (grey
# noise 0.007: +2.61 -> +2.80 on 48 photos, -0.02 dB in the product) and lost on held-out
# sets, so quieter windows are left alone; twice the strength lost 0.3-0.5 dB on the loop.
ESTIMATE_DENOISE = 1.0
MAX_KERNEL_FILE_SIDE = 1025  # a kernel file larger than this is not a blur kernel
# A given kernel's photo with clipped pixels is deconvolved by highlights.richardson_lucy_clipped
# instead of the TV step (clipped highlights were brighter than they show; the TV step rings
# around them): wholly from HIGHLIGHT_SHARE[1] of clipped pixels on, not below
# HIGHLIGHT_SHARE[0], and in between the two results blended by the share (so the frames of a
# video whose highlights come and go do not jump between two solvers). A few street lamps
# are a small share of a night photo (0.01-0.6% on made-up night scenes) and cost the TV step
# the most. Measured with true kernels on training photos
# (docs/bench/kernel-first/highlight_solver_product_probe.txt, light_streak_probe.txt):
# highlights lifted x3 +1.92 -> +4.36 dB, not lifted +5.85 -> +6.01, night scenes -0.86 ->
# +2.20 (with the shares at 1-3%: -0.86); blurred as the benchmarks blur (the stored values,
# no highlight brighter than it shows) +5.66 -> +5.56 at 1% noise and +4.67 -> +4.49 at 2%
# (1-3%: +5.56 / +4.59). Not for estimated kernels (no gain measured: +0.18 -> +0.19).
HIGHLIGHT_SHARE = (0.0002, 0.001)


@dataclass(frozen=True)
class KernelEstimate:
    kernel: np.ndarray  # (k, k) float64, sum 1, at the photo's full resolution
    accepted: bool  # the guard found that the kernel explains the photo
    residual: float  # the guard's measure (about 1 where the kernel explains the photo; GUARD_RESIDUAL: the limit)
    scale: float  # the photo was estimated at this scale (1: full resolution)
    region: tuple[int, int, int, int]  # x, y, w, h of the window estimated on, in full-resolution pixels
    streaks: int = 0  # read from the photo's light streaks (streaks.streak_kernel): how many others agreed (0: estimated)

    @property
    def size(self) -> int:
        return int(self.kernel.shape[0])


def estimation_scale(height: int, width: int) -> float:
    return min(1.0, ESTIMATE_LONG_SIDE / max(height, width))


def centre_region(height: int, width: int, scale: float) -> tuple[int, int, int, int]:
    """The centre window of ESTIMATE_SIDE (at the estimation scale), in full-resolution pixels."""
    side = int(round(ESTIMATE_SIDE / scale))
    w, h = min(width, side), min(height, side)
    return (width - w) // 2, (height - h) // 2, w, h


def check_region(region: tuple[int, int, int, int], height: int, width: int) -> tuple[int, int, int, int]:
    x, y, w, h = (int(v) for v in region)
    if w < MIN_SIDE or h < MIN_SIDE:
        raise ValueError(f"region {x},{y},{w},{h}: needs at least {MIN_SIDE}x{MIN_SIDE} pixels")
    if x < 0 or y < 0 or x + w > width or y + h > height:
        raise ValueError(f"region {x},{y},{w},{h}: outside the {width}x{height} photo")
    return x, y, w, h


def resize_kernel(k: np.ndarray, size: int) -> np.ndarray:
    """A kernel resampled to size x size (odd), non-negative, sum 1."""
    if k.shape == (size, size):
        return k / k.sum()
    out = np.maximum(cv2.resize(k.astype(np.float64), (size, size), interpolation=cv2.INTER_LINEAR), 0)
    if out.sum() <= 0:
        out[size // 2, size // 2] = 1.0
    return out / out.sum()


def kernel_extent(k: np.ndarray, level: float = 0.05) -> int:
    """The longest side, in pixels, of the box holding the kernel's pixels above level x its maximum."""
    ys, xs = np.nonzero(k > level * k.max())
    return int(max(np.ptp(ys), np.ptp(xs)) + 1)


def gradient_sparsity(gray: np.ndarray) -> float:
    """||grad||_1 / ||grad||_2 of an image's gradient magnitudes, over the square root of
    their count: lower is sharper. Scale-invariant, after Krishnan, Tay & Fergus 2011 (who
    take the x and y gradients apart): a blurred image scores higher than its sharp
    original, where the L1 norm alone prefers the blurred one."""
    gx, gy = np.diff(gray, axis=1)[:-1], np.diff(gray, axis=0)[:, :-1]
    m = np.hypot(gx, gy)
    norm = float(np.sqrt((m * m).sum()))
    return float(m.sum()) / max(norm, 1e-12) / np.sqrt(m.size)


def sharper_deconvolution(gray: np.ndarray, k_a: np.ndarray, k_b: np.ndarray) -> bool:
    """Whether the grey window deconvolved with k_a is sharper (gradient_sparsity) than with
    k_b: of two kernels that both explain the window, the one that is too short leaves blur
    the other removes, where the guard's residual cannot tell them apart (it prefers the
    shorter kernel, as MAP estimates do)."""
    weight = tv_weight(gray, estimated_kernel=True)

    def sparsity(k):
        return gradient_sparsity(tv_deconvolve(gray[..., None], k, weight)[..., 0].astype(np.float64))

    return sparsity(k_a) < sparsity(k_b)


def _gray_window(rgb: np.ndarray, region: tuple[int, int, int, int], scale: float) -> np.ndarray:
    """The region in grey at `scale`, its centre ESTIMATE_SIDE square where larger."""
    x, y, w, h = region
    window = to_gray(unit(rgb[y:y + h, x:x + w]))
    if scale < 1:
        window = cv2.resize(window, (max(int(round(w * scale)), MIN_SIDE), max(int(round(h * scale)), MIN_SIDE)),
                            interpolation=cv2.INTER_AREA)
    side = ESTIMATE_SIDE
    if min(window.shape) > side:  # a named region larger than the window: its centre
        t, l = (window.shape[0] - side) // 2, (window.shape[1] - side) // 2
        window = window[t:t + side, l:l + side]
    return window


def denoised_for_estimation(gray: np.ndarray, strength: float = ESTIMATE_DENOISE) -> np.ndarray:
    """The grey window the estimator reads the kernel from: denoised by non-local means at
    `strength` times its estimated noise where that noise is at least NOISY_SIGMA
    (the window itself otherwise, or where `strength` is 0)."""
    sigma = noise_sigma(gray)
    h = strength * sigma * 255.0
    if h <= 0 or sigma < NOISY_SIGMA:
        return gray
    u8 = np.round(np.clip(gray, 0, 1) * 255.0).astype(np.uint8)
    return cv2.fastNlMeansDenoising(u8, None, h=float(h), templateWindowSize=5, searchWindowSize=15).astype(np.float64) / 255.0


def estimate_photo_kernel(rgb: np.ndarray, size: int | None = None, region: tuple[int, int, int, int] | None = None,
                          cfg: BlindConfig = BlindConfig(), denoise: float | None = None) -> KernelEstimate:
    """(H, W, 3) photo (uint8, uint16 or float in [0, 1]) -> its kernel.

    size: the largest kernel looked for, in full-resolution pixels (default: chosen from
    the photo, see the module's docstring). region: x, y, w, h of the window to
    estimate on (default: the centre). denoise: the estimator's window is denoised at this
    many times its noise first (default ESTIMATE_DENOISE; 0: as it is). Without a region, a
    photo whose isolated light streaks agree (streaks.streak_kernel, on the whole photo at
    the estimation scale) gets the kernel they draw instead (`streaks` > 0, accepted)."""
    denoise = ESTIMATE_DENOISE if denoise is None else denoise
    H, W = rgb.shape[:2]
    if min(H, W) < MIN_SIDE:
        raise ValueError(f"{W}x{H}: too small to estimate a kernel (at least {MIN_SIDE} px a side)")
    scale = estimation_scale(H, W)
    x, y, w, h = check_region(region, H, W) if region is not None else centre_region(H, W, scale)
    window = _gray_window(rgb, (x, y, w, h), scale)
    small_size = cfg.kernel_size if size is None else _odd(size * scale)
    if region is None:  # a photo with isolated lights: the kernel they draw (the guard is not made for clipped lights)
        found = streak_kernel(rgb, small_size, scale)
        if found is not None:
            kernel = found.kernel if scale == 1 else resize_kernel(found.kernel, _odd(found.kernel.shape[0] / scale))
            return KernelEstimate(kernel, True, float(residual_ratio(window, found.kernel)), scale, (0, 0, W, H), found.agreeing)
    seen = denoised_for_estimation(window, denoise)
    k_small = estimate_kernel(seen, replace(cfg, kernel_size=small_size))
    residual = residual_ratio(window, k_small)
    accepted = residual <= GUARD_RESIDUAL
    extent = kernel_extent(k_small)
    fills = extent > small_size - FILL_MARGIN
    if size is None and (not accepted or fills) and small_size < LONG_KERNEL_SIZE and min(window.shape) >= 2 * LONG_KERNEL_SIZE:
        # the first estimate failed or may be cut off: look for a longer kernel; where that
        # fails too, neither is trusted (a kernel filling its window was wrong more often than right)
        k_small = estimate_kernel(seen, replace(cfg, kernel_size=LONG_KERNEL_SIZE))
        residual = residual_ratio(window, k_small)
        accepted = residual <= GUARD_RESIDUAL
    elif size is None and accepted and not fills and extent > HALF_LOOK_EXTENT:
        # a long kernel that fits its window: the blur may be longer still and the estimator
        # settled on part of it; the same window at half the scale reaches twice as far
        half = centre_region(H, W, scale / 2) if region is None else (x, y, w, h)
        gray = _gray_window(rgb, half, scale / 2)
        k_half = estimate_kernel(denoised_for_estimation(gray, denoise), replace(cfg, kernel_size=small_size))
        r_half = residual_ratio(gray, k_half)
        k_long = resize_kernel(k_half, 2 * k_half.shape[0] + 1)
        if (r_half <= HALF_LOOK_RESIDUAL and 2 * kernel_extent(k_half) >= extent) or (
                r_half <= GUARD_RESIDUAL and sharper_deconvolution(window, k_long, k_small)):
            k_small, residual, (x, y, w, h) = k_long, r_half, half
    kernel = k_small if scale == 1 else resize_kernel(k_small, _odd(k_small.shape[0] / scale))
    return KernelEstimate(kernel, accepted, float(residual), scale, (x, y, w, h))


def highlight_weight(rgb: np.ndarray) -> float:
    """How much of a given kernel's deconvolution comes from the highlight solver: 0 up to
    HIGHLIGHT_SHARE[0] of clipped pixels, 1 from HIGHLIGHT_SHARE[1] on, linear between."""
    lo, hi = HIGHLIGHT_SHARE
    return float(np.clip((clipped_share(rgb) - lo) / (hi - lo), 0.0, 1.0))


def deconvolve_photo(rgb: np.ndarray, kernel: np.ndarray, weight: float | None = None,
                     channels_first: bool = False, estimated: bool = False) -> np.ndarray:
    """(H, W, 3) photo (as estimate_photo_kernel takes it) and its kernel -> the TV deconvolution, float32 in [0, 1]:
    whole where the photo's sides are at most DECONV_TILE, else tile by tile (each with a margin
    of MARGIN_KERNELS kernel sizes, only its inside kept). The TV weight comes from the noise of
    the photo's centre (one weight for the whole photo), more for an `estimated` kernel on a
    noisy photo (nonblind.tv_weight). A given kernel (not `estimated`, no `weight`) on a photo
    with clipped pixels is deconvolved by highlights.richardson_lucy_clipped instead, or by
    both blended (highlight_weight; its TV term from the same noise).
    channels_first: returned as (3, H, W), the networks' layout (no second copy of the photo)."""
    H, W = rgb.shape[:2]
    k = np.asarray(kernel, np.float64)
    k = k / k.sum()
    x, y, w, h = centre_region(H, W, 1.0)
    share = highlight_weight(rgb) if weight is None and not estimated else 0.0
    tv = None
    if weight is None:
        centre = to_gray(unit(rgb[y:y + h, x:x + w]))
        weight = tv_weight(centre, estimated_kernel=estimated)
        if share > 0:
            tv = tv_term(noise_sigma(centre))

    def solve(piece, out=None):
        if share >= 1:
            return richardson_lucy_clipped(piece, k, tv=tv, out=out)
        result = tv_deconvolve(piece, k, weight, out=out)
        if share > 0:  # between the two shares: blended, in place (no full-size temporaries)
            highlights = richardson_lucy_clipped(piece, k, tv=tv)
            highlights *= share
            result *= 1 - share
            result += highlights
        return result
    margin = MARGIN_KERNELS * max(k.shape) + 16
    out = np.empty((3, H, W) if channels_first else (H, W, 3), np.float32)
    view = out.transpose(1, 2, 0) if channels_first else out
    if H <= DECONV_TILE and W <= DECONV_TILE:  # solved in place, no tiles and no seams
        solve(rgb, out=view)
        return out
    for top in range(0, H, DECONV_TILE):
        for left in range(0, W, DECONV_TILE):
            bottom, right = min(top + DECONV_TILE, H), min(left + DECONV_TILE, W)
            t0, l0 = max(top - margin, 0), max(left - margin, 0)
            b0, r0 = min(bottom + margin, H), min(right + margin, W)
            piece = solve(rgb[t0:b0, l0:r0])
            view[top:bottom, left:right] = piece[top - t0:bottom - t0, left - l0:right - l0]
    return out


def read_kernel(path) -> np.ndarray:
    """A kernel image (PNG, any bit depth; grey or colour, averaged) -> (k, k) float64, sum 1,
    odd sides (padded with zeros where even). ValueError with the reason where it is not one."""
    from pathlib import Path

    p = Path(path)
    if not p.is_file():
        raise ValueError("no such file" if not p.exists() else "not a file")
    a = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
    if a is None:
        raise ValueError("not an image OpenCV can read")
    a = a.astype(np.float64)
    if a.ndim == 3:
        a = a[..., :3].mean(axis=2)
    if max(a.shape) > MAX_KERNEL_FILE_SIDE:
        raise ValueError(f"{a.shape[1]}x{a.shape[0]}: too large for a blur kernel (at most {MAX_KERNEL_FILE_SIDE} px a side)")
    if not np.isfinite(a).all() or a.min() < 0 or a.sum() <= 0:
        raise ValueError("the kernel is empty (no positive pixels)")
    return as_kernel(a)


def as_kernel(a: np.ndarray) -> np.ndarray:
    """A 2-D non-negative array -> the kernel the deconvolution takes: odd and square
    (zeros around it, centred), float64, sum 1."""
    side = _odd(max(a.shape))
    out = np.zeros((side, side))
    t, l = (side - a.shape[0]) // 2, (side - a.shape[1]) // 2
    out[t:t + a.shape[0], l:l + a.shape[1]] = a
    return out / out.sum()


def kernel_image(kernel: np.ndarray) -> np.ndarray:
    """The kernel as an (k, k, 3) picture in [0, 1], its maximum white (--save-kernel)."""
    k = np.asarray(kernel, np.float64)
    return np.repeat((k / max(k.max(), 1e-12))[..., None], 3, axis=2).astype(np.float32)


__all__ = ["DECONV_TILE", "as_kernel", "ESTIMATE_LONG_SIDE", "KernelEstimate", "check_region", "deconvolve_photo", "estimate_photo_kernel",
           "kernel_extent", "kernel_image", "LONG_KERNEL_SIZE", "noise_sigma", "read_kernel", "resize_kernel"]
