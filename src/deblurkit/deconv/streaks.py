"""The kernel read from a photo's light streaks. At night, where shake is commonest (long
exposures), an isolated point light blurred by the shake draws the kernel itself (Hu, Cho,
Wang & Yang 2014, "Deblurring low-light images with light streaks"), while the blind
estimator (deconv.blind) fails on the clipped lights and the guard cannot judge it there.

The photo's light (values^GAMMA) and its clipped pixels are taken at full resolution and
then shrunk to the estimation scale (a clipped light stays clipped, and light averages as
light). Around the brightest local maxima well above their surroundings, a window of twice
the largest kernel (a streak brightest at one end reaches a whole kernel from its peak), cut
from the photo itself, less its border's median; the streak is the connected piece holding
the peak, kept where it fits the kernel's size without touching the window's (or the
photo's) edge, holds most of the bright light of the kernel window cut around its box, and
is thin
(stroke_width: a point light draws a thin streak, a lit window a wide one). A streak's pixels
are not looked at again, so one light with several bright points is one streak, and a piece
joined to other bright light through faint light (a light's streak broken where the shake
moved fast) is left out. The streak
that most others agree with (kernel_similarity above AGREE) is the reference, and those that
agree with it are shifted onto it and averaged, weighted by how little of each is clipped
(noise and clipped cores average out). Taken only where at least MIN_AGREEING others agree.

Chosen on training photos only (docs/bench/kernel-first/light_streak_probe.{py,txt}: made-up
night scenes from bsds500_test, 25 point lights of 2-40x white, our kernels, blur in light,
1% noise, and the same with 10 lit windows each). There the kernel path without the
networks went from -0.37 dB (the estimator alone) to +2.11 (21 of 24 scenes from streaks,
whose similarity to the true kernel is 0.90), and with lit windows from -0.25 to +1.54 (15
of 24). No streak kernel is
taken on the Köhler-blurred validation photos, the GoPro frames or 25 of the 26 real
photos; the 26th is a night shot of a licence plate (streak_firing_check.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from .blind import centre_kernel, centre_shift
from .nonblind import unit
from .similarity import kernel_similarity

GAMMA = 2.2  # sRGB values -> light, roughly: a streak is the kernel in light
CLIPPED = 0.98  # a pixel with a channel at this share of white or more is clipped
AGREE = 0.7  # two streaks "agree" above this kernel_similarity
REFERENCE_AGREE = 0.6  # with MIN_AGREEING 0 (the probe's readout): a reference needs another this alike
MIN_AGREEING = 2  # other streaks that must agree with the reference
CANDIDATES = 200  # the brightest local maxima looked at (until 2 x MAX_STREAKS streaks are found)
MAX_STREAKS = 12  # the least clipped streaks compared
ISOLATED = 0.7  # the streak's share of the bright light (over a tenth of its peak) in its kernel window
BRIGHTER = 3.0  # a candidate's light over its surroundings' median (plus FLOOR)
FLOOR = 0.02
LINK = 0.01  # a piece joined to other bright light through light above this x its peak is not a whole streak
# A streak whose stroke is wider than this (px at the estimation scale) is left out: a point
# light of up to 2 px radius draws one about 5 px wide, a lit window or lamp shade a wider
# one, and several lit windows agree with each other as well as point lights do. On made-up
# night scenes with 10 lit windows each, the readout (where two others agree, over 24
# scenes) gained +0.86 dB without it and +1.63 with it (similarity over the streak kernels
# found 0.76 -> 0.87); on scenes of point lights alone +2.17 -> +2.15 (light_streak_probe.txt).
WIDTH_MAX = 6.0


@dataclass(frozen=True)
class StreakKernel:
    kernel: np.ndarray  # (size, size) float64, sum 1
    agreeing: int  # other streaks that agree with the reference (averaged into the kernel)
    streaks: int  # isolated streaks found


def light_and_clipped(rgb: np.ndarray, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, 3) photo (uint8, uint16 or float in [0, 1]) -> its grey light (float32) and
    clipped pixels (bool), computed at full resolution and shrunk to `scale` (a pixel there
    is clipped where any pixel it covers is)."""
    H, W = rgb.shape[:2]
    values = np.clip(unit(rgb[..., :3], np.float32), 0, 1)
    light = values.mean(axis=2) ** np.float32(GAMMA)
    clipped = values.max(axis=2) >= CLIPPED
    del values
    if scale < 1:
        size = (max(int(round(W * scale)), 1), max(int(round(H * scale)), 1))
        light = cv2.resize(light, size, interpolation=cv2.INTER_AREA)
        clipped = cv2.resize(clipped.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0
    return light, clipped


def streak_kernel(rgb: np.ndarray, size: int, scale: float = 1.0) -> StreakKernel | None:
    """(H, W, 3) photo at full resolution, the largest kernel looked for (odd, px at `scale`)
    and the estimation's scale -> the kernel its light streaks draw at that scale, or None
    where MIN_AGREEING others do not agree with the reference."""
    light, clipped = light_and_clipped(rgb, scale)
    return agreed_kernel(isolated_streaks(light, clipped, size), MIN_AGREEING)


def isolated_streaks(light: np.ndarray, clipped: np.ndarray, size: int,
                     width_max: float = WIDTH_MAX) -> list[tuple[np.ndarray, float]]:
    """The isolated, thin light streaks of a photo's light and clipped pixels
    (light_and_clipped), the least clipped first: (kernel, size x size and sum 1; the share
    of its pixels that are clipped), at most MAX_STREAKS."""
    size = int(size) | 1
    light = np.asarray(light, np.float64)
    H, W = light.shape
    if min(H, W) < 2 * size:
        return []
    r = size // 2
    smooth = cv2.GaussianBlur(light, (0, 0), 2.0)
    surroundings = cv2.medianBlur(np.clip(light * 255, 0, 255).astype(np.uint8), 2 * (size // 4) + 1) / 255.0
    peak_side = size // 2 | 1
    peaks = (smooth == cv2.dilate(smooth, np.ones((peak_side, peak_side), np.uint8))) & (smooth > BRIGHTER * surroundings + FLOOR)
    ys, xs = np.nonzero(peaks)
    taken = np.zeros((H, W), bool)
    found = []
    for j in np.argsort(-smooth[ys, xs], kind="stable")[:CANDIDATES]:
        if len(found) >= 2 * MAX_STREAKS:
            break
        py, px = int(ys[j]), int(xs[j])
        if taken[py, px]:
            continue  # on a streak already taken: the same light
        t, l = max(py - size, 0), max(px - size, 0)
        b, rt = min(py + size + 1, H), min(px + size + 1, W)
        window = light[t:b, l:rt]  # the photo itself: a light at its border is not mirrored
        s = np.maximum(window - np.median(_border(window)), 0)
        # the piece at the brightest pixel near the peak (the smoothed peak of a hooked or
        # clipped streak can fall just beside its stroke), above a tenth of that pixel (not of
        # a brighter light elsewhere in the window, which would cut a dim streak short)
        ny, nx = max(py - t - 3, 0), max(px - l - 3, 0)
        near = s[ny:py - t + 4, nx:px - l + 4]
        dy, dx = np.unravel_index(int(np.argmax(near)), near.shape)
        level = float(near[dy, dx])
        if level <= 0:
            continue
        _, labels, stats, _ = cv2.connectedComponentsWithStats((s > 0.1 * level).astype(np.uint8), connectivity=8)
        main = int(labels[ny + dy, nx + dx])
        x0, y0, bw, bh = (int(v) for v in stats[main, :4])
        if x0 == 0 or y0 == 0 or x0 + bw >= s.shape[1] or y0 + bh >= s.shape[0] or max(bw, bh) > size - 2:
            continue  # longer than the kernel looked for, cut off by the photo's edge, or a lit region
        mask = labels == main
        if (taken[t:b, l:rt] & mask).any():
            continue  # part of a streak already taken
        # A light's streak broken where the shake moved fast (two bright dwells joined by a
        # faint stretch) is two pieces that look alike: two lamps could pass as four agreeing
        # streaks. A piece joined to other bright light through light above LINK x its peak
        # (and above the window border's light) is left out.
        _, low = cv2.connectedComponents((s > max(LINK * level, 3.0 * float(np.percentile(_border(s), 90)))).astype(np.uint8),
                                         connectivity=8)
        if ((low == low[ny + dy, nx + dx]) & (s > 0.1 * level) & ~mask).any():
            continue
        ky, kx = y0 + bh // 2 - r, x0 + bw // 2 - r  # the kernel window around the streak's box
        if ky < 0 or kx < 0 or ky + size > s.shape[0] or kx + size > s.shape[1]:
            continue  # too near the photo's edge for a whole kernel window
        cut = window[ky:ky + size, kx:kx + size]  # less its own border's median, as the kernel's background
        inside = np.maximum(cut - np.median(_border(cut)), 0)
        piece = np.where(mask[ky:ky + size, kx:kx + size], inside, 0.0)
        if piece.sum() <= 0:
            continue
        bright = inside > 0.1 * level  # a faint textured background is not other light
        if piece[bright].sum() < ISOLATED * inside[bright].sum():
            continue  # other light in the window
        if stroke_width(mask) > width_max:
            continue  # thick: a lit shape (a window, a lamp shade) drawn out by the shake, not a point light's streak
        # centring the kernel on its centre of mass must not push the streak out of its window
        # (a streak bright at one end): such a streak is left out, not cut
        yy, xx = np.nonzero(piece)
        sy, sx = centre_shift(piece / piece.sum())  # the shift centre_kernel will make
        if yy.min() + sy < 0 or yy.max() + sy >= size or xx.min() + sx < 0 or xx.max() + sx >= size:
            continue
        share_clipped = float(clipped[t:b, l:rt][mask].mean())
        taken[t:b, l:rt] |= cv2.dilate(mask.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
        found.append((centre_kernel(piece / piece.sum()), share_clipped))
    found.sort(key=lambda f: f[1])  # the least clipped first (clipping flattens a streak's weights)
    return found[:MAX_STREAKS]


def _border(a: np.ndarray) -> np.ndarray:
    """The pixels along a window's four edges."""
    return np.concatenate([a[0], a[-1], a[:, 0], a[:, -1]])


def stroke_width(mask: np.ndarray) -> float:
    """A shape's stroke width in pixels, about the same in every direction and along a
    curve: from its pixels' mean Euclidean distance to the background (a stroke w wide
    averages about w / 4 + 1/2)."""
    if not mask.any():
        return 0.0
    dist = cv2.distanceTransform(np.pad(mask, 1).astype(np.uint8), cv2.DIST_L2, cv2.DIST_MASK_PRECISE)[1:-1, 1:-1]
    return float(4 * (dist[mask].mean() - 0.5))


def agreed_kernel(found: list[tuple[np.ndarray, float]], min_agreeing: int = MIN_AGREEING) -> StreakKernel | None:
    """The streak most others agree with (above AGREE; among equals the least clipped), and
    every streak that agrees with it, shifted onto it and averaged; None where fewer than
    `min_agreeing` others agree (with min_agreeing 0: where none is REFERENCE_AGREE alike
    another)."""
    n = len(found)
    if n < 2:
        return None
    sim = np.eye(n)
    for a in range(n):
        for b in range(a + 1, n):
            sim[a, b] = sim[b, a] = kernel_similarity(found[a][0], found[b][0])
    others = sim - 2 * np.eye(n)  # a streak's agreement with itself left out
    votes = (others > AGREE).sum(axis=1)
    if votes.max() > 0:
        reference = int(np.argmax(votes))  # found is least clipped first: the first of equals
    else:
        reference = next((j for j in range(n) if others[j].max() > REFERENCE_AGREE), None)
        if reference is None:
            return None
    agreeing = [j for j in range(n) if j != reference and sim[reference, j] > AGREE]
    if len(agreeing) < min_agreeing:
        return None
    ref = found[reference][0]
    total = np.zeros_like(ref)
    for j in [reference, *agreeing]:
        total += _shifted_onto(found[j][0], ref) * (1 - 0.9 * found[j][1])  # a wholly clipped streak still counts a little
    total = np.where(total > 0.05 * total.max(), total, 0.0)
    if total.sum() <= 0:
        return None
    return StreakKernel(centre_kernel(total / total.sum()), len(agreeing), n)


def _shifted_onto(a: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """a shifted (whole pixels, zeros shifted in: nothing wraps round) to where it correlates
    best with ref."""
    h, w = ref.shape
    shape = (2 * h - 1, 2 * w - 1)
    corr = np.fft.irfft2(np.fft.rfft2(ref, shape) * np.conj(np.fft.rfft2(a, shape)), s=shape)
    dy, dx = np.unravel_index(int(np.argmax(corr)), shape)
    dy, dx = (dy if dy < h else dy - shape[0]), (dx if dx < w else dx - shape[1])
    out = np.zeros_like(a)
    out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = a[max(-dy, 0):h - max(dy, 0), max(-dx, 0):w - max(dx, 0)]
    return out
