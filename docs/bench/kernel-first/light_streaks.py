"""Issue 35 probe helper (not the product): the kernel read from a photo's light streaks: at night, where shake is commonest (long
exposures), an isolated point light blurred by the shake draws the kernel itself (Hu, Cho,
Wang & Yang 2014, "Deblurring low-light images with light streaks"), while the blind
estimator (deconv.blind) fails on the clipped lights and the guard cannot judge it there.

The brightest local maxima of the photo's grey light (values^GAMMA) well above their
surroundings; around each, a window of the largest kernel's size less its border's median;
kept where the streak is one piece inside the window (most of its light in one connected
component that does not touch the window's edge). The least clipped of them that agrees
with another (kernel_similarity above REFERENCE_AGREE) is the reference, and every streak that agrees
with it is shifted onto it and averaged, weighted by how little of it is clipped (noise and
clipped cores average out). Taken only where at least MIN_AGREEING other streaks agree.

Built as `--kernel auto`'s first look (session 16), reviewed and withdrawn before it shipped
(docs/bench/kernel-first/README.md lists what the review found: one light can count as
several streaks, long streaks are refused, the width check depends on the direction).
Chosen on training photos only (docs/bench/kernel-first/light_streak_probe.{py,txt}: made-up
night scenes from bsds500_test, 25 point lights of 2-40x white, our kernels, blur in light,
1% noise, and the same with 10 lit windows each): before the width check (WIDTH_MAX), where
at least two other streaks agreed (11 of 24 scenes) the streak kernel, deconvolved as a
given kernel is, gained +2.35 dB and the blind estimate -0.44 (one agreeing streak let in
scenes that lost 5 dB), but lit windows were read as streaks (-0.92 dB on scenes with them,
and a real night photo ruined). With it, the kernel path on those scenes: -0.37 -> -0.02 dB
(point lights, 3 of 24 from streaks) and -0.25 -> +0.01 (with windows, 2 of 24). No streak is
taken on the estimator loop's photos, the Köhler-blurred validation photos, the GoPro frames
or the 26 real photos (docs/bench/kernel-first/streak_firing_check.py).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from deblurkit.deconv import kernel_similarity
from deblurkit.deconv.blind import centre_kernel

GAMMA = 2.2  # sRGB values -> light, roughly: a streak is the kernel in light
CLIPPED = 0.98
AGREE = 0.7  # two streaks "agree" above this kernel_similarity
REFERENCE_AGREE = 0.6  # the reference: the least clipped streak with another this similar
MIN_AGREEING = 2  # other streaks that must agree with the reference
CANDIDATES = 40  # the brightest local maxima looked at
MAX_STREAKS = 12  # the least clipped streaks compared
ISOLATED = 0.7  # the streak's share of the light in its window
BRIGHTER = 3.0  # a candidate's light over its surroundings' median (plus FLOOR)
# A streak whose area over its longest side (its mean width, roughly) is above this is left
# out: a point light of up to 2 px radius draws one about 5 px wide, a lit window a wider
# one, and several lit windows agree with each other as well as point lights do. Chosen on
# made-up night scenes with 10 lit windows each (light_streak_probe.py, NIGHT_WINDOWS=10):
# without it the readout's gain there was -0.27 dB (-0.92 in the probe's first version), with
# it +0.25 (4: too few streaks left).
WIDTH_MAX = 6.0
FLOOR = 0.02


@dataclass(frozen=True)
class StreakKernel:
    kernel: np.ndarray  # (size, size) float64, sum 1
    agreeing: int  # other streaks that agree with the reference (averaged into the kernel)
    streaks: int  # isolated streaks found


def streak_kernel(rgb: np.ndarray, size: int) -> StreakKernel | None:
    """(H, W, 3) photo in [0, 1] (float) and the largest kernel looked for (odd, px) -> the
    kernel its light streaks draw, or None where fewer than two streaks are found or
    MIN_AGREEING others do not agree with the reference."""
    found = isolated_streaks(rgb, size)
    return agreed_kernel(found, MIN_AGREEING)


def isolated_streaks(rgb: np.ndarray, size: int, width_max: float = WIDTH_MAX) -> list[tuple[np.ndarray, float]]:
    """The photo's isolated, thin light streaks, the least clipped first: (kernel, size x size
    and sum 1; the share of its pixels that are clipped), at most MAX_STREAKS."""
    size = int(size) | 1
    rgb = np.asarray(rgb, np.float64)
    if min(rgb.shape[:2]) < 2 * size:
        return []
    light = rgb[..., :3].mean(axis=2) ** GAMMA
    clipped = rgb[..., :3].max(axis=2) >= CLIPPED
    r = size // 2
    padded = np.pad(light, r, mode="reflect")
    clipped_padded = np.pad(clipped, r, mode="constant")
    smooth = cv2.GaussianBlur(light, (0, 0), 2.0)
    surroundings = cv2.medianBlur(np.clip(light * 255, 0, 255).astype(np.uint8), 2 * (size // 4) + 1) / 255.0
    peak_side = size // 2 | 1
    peaks = (smooth == cv2.dilate(smooth, np.ones((peak_side, peak_side), np.uint8))) & (smooth > BRIGHTER * surroundings + FLOOR)
    ys, xs = np.nonzero(peaks)
    found = []
    for j in np.argsort(-smooth[ys, xs], kind="stable")[:CANDIDATES]:
        cy, cx = ys[j] + r, xs[j] + r
        window = padded[cy - r:cy + r + 1, cx - r:cx + r + 1]
        border = np.concatenate([window[0], window[-1], window[:, 0], window[:, -1]])
        s = np.maximum(window - np.median(border), 0)
        if s.max() <= 0:
            continue
        n, labels, stats, _ = cv2.connectedComponentsWithStats((s > 0.1 * s.max()).astype(np.uint8), connectivity=8)
        if n < 2:
            continue
        weights = np.bincount(labels.ravel(), weights=s.ravel(), minlength=n)
        weights[0] = 0
        main = int(np.argmax(weights))
        x0, y0, bw, bh = stats[main, :4]
        if x0 == 0 or y0 == 0 or x0 + bw >= size or y0 + bh >= size:
            continue  # it runs out of the window: longer than the kernel looked for, or a lit region
        if weights[main] < ISOLATED * s.sum():
            continue  # other light in the window
        if (labels == main).sum() / max(int(max(bw, bh)), 1) > width_max:
            continue  # thick: a lit shape (a window, a lamp shade) drawn out by the shake, not a point light's streak
        piece = np.where(labels == main, s, 0.0)
        share_clipped = float(clipped_padded[cy - r:cy + r + 1, cx - r:cx + r + 1][labels == main].mean())
        found.append((centre_kernel(piece / piece.sum()), share_clipped))
    found.sort(key=lambda t: t[1])  # the least clipped first (clipping flattens a streak's weights)
    return found[:MAX_STREAKS]


def agreed_kernel(found: list[tuple[np.ndarray, float]], min_agreeing: int = MIN_AGREEING) -> StreakKernel | None:
    """The least clipped streak with another at least REFERENCE_AGREE alike, and every streak
    that agrees with it (above AGREE), shifted onto it and averaged; None where fewer than
    `min_agreeing` others agree (or none is alike another)."""
    if len(found) < 2:
        return None
    n = len(found)
    sim = np.eye(n)
    for a in range(n):
        for b in range(a + 1, n):
            sim[a, b] = sim[b, a] = kernel_similarity(found[a][0], found[b][0])
    others = sim - np.eye(n) * 2  # a streak's agreement with itself left out
    reference = next((j for j in range(n) if others[j].max() > REFERENCE_AGREE), None)
    if reference is None:
        return None
    agreeing = [j for j in range(n) if j != reference and sim[reference, j] > AGREE]
    if len(agreeing) < min_agreeing:
        return None
    ref = found[reference][0]
    total = np.zeros_like(ref)
    for j in [reference, *agreeing]:
        total += _shifted_onto(found[j][0], ref) * (1 - found[j][1])
    total = np.where(total > 0.05 * total.max(), total, 0.0)
    if total.sum() <= 0:
        return None
    return StreakKernel(centre_kernel(total / total.sum()), len(agreeing), len(found))


def _shifted_onto(a: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """a shifted (whole pixels, within its window) to where it correlates best with ref."""
    corr = np.fft.irfft2(np.fft.rfft2(ref) * np.conj(np.fft.rfft2(a)), s=ref.shape)
    dy, dx = np.unravel_index(int(np.argmax(corr)), corr.shape)
    return np.roll(a, (int(dy), int(dx)), axis=(0, 1))


__all__ = ["MIN_AGREEING", "StreakKernel", "agreed_kernel", "isolated_streaks", "streak_kernel"]
