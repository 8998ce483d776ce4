"""Classical (model-free) deconvolution: blind kernel estimation and non-blind inversion."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .nonblind import tv_deconvolve, tv_weight
from .photo import MIN_SIDE
from .similarity import kernel_similarity
from .blind import (GUARD_RESIDUAL, WIENER_RULES, WIENER_WEIGHT, BlindConfig, estimate_kernel, residual_ratio, to_gray,
                    wiener, wiener_weight)


NONBLIND_METHODS = ("wiener", "tv")
# The kernel path's non-blind step: TV gains 1.5-1.7 dB over Wiener with the true kernel and
# +0.3 dB with estimated ones (training photos, our own kernels; docs/bench/kernel-first/estimator_loop.txt).
KERNEL_PATH_NONBLIND = "tv"

# Below MIN_SIDE (deconv.photo) there are too few edges to estimate a kernel from: the image
# is its own "deconvolution" (the kernel-aware predictor then sees the input twice). The
# kernel is estimated on the centre of at most CROP_ESTIMATE_SIDE, then the whole image is
# deconvolved with it. This is the per-crop estimate of the kernel-aware models
# (--deconv-input) and of the packs they train on, so it keeps the side they were made
# with; the product's whole-photo estimate (deconv.photo.ESTIMATE_SIDE) is its own.
CROP_ESTIMATE_SIDE = 384


@dataclass(frozen=True)
class Deconvolution:
    image: np.ndarray  # (H, W, 3) float64 in [0, 1]: the deconvolution, or the input where it fell back
    kernel: np.ndarray | None  # the estimated kernel (None: the image was too small to estimate one)
    fell_back: bool  # the guard found that the kernel does not explain the input


def blind_deconvolution(rgb: np.ndarray, cfg: BlindConfig = BlindConfig(), weight: float = WIENER_WEIGHT,
                        rule: str = "fixed", method: str = "wiener") -> Deconvolution:
    """(H, W, 3) blurry sRGB in [0, 1] -> its deconvolution with the kernel estimated from
    its grey image. rule "noise": the Wiener weight follows the input's estimated noise
    (wiener_weight) instead of `weight`; "guarded": as "noise", but the input comes back
    unchanged where the kernel does not explain it (residual_ratio above GUARD_RESIDUAL).
    method "tv": the non-blind step is nonblind.tv_deconvolve (its own noise rule) instead
    of Wiener (the kernel-aware models were trained on Wiener's)."""
    rgb = np.asarray(rgb, np.float64)
    if min(rgb.shape[:2]) < MIN_SIDE:
        return Deconvolution(np.clip(rgb, 0, 1), None, False)
    h, w = rgb.shape[:2]
    ch, cw = min(h, CROP_ESTIMATE_SIDE), min(w, CROP_ESTIMATE_SIDE)
    top, left = (h - ch) // 2, (w - cw) // 2
    gray = to_gray(rgb[top:top + ch, left:left + cw])
    if rule != "fixed":
        weight = wiener_weight(rule, gray)
    k = estimate_kernel(gray, cfg)
    if rule == "guarded" and residual_ratio(gray, k) > GUARD_RESIDUAL:
        return Deconvolution(np.clip(rgb, 0, 1), k, True)
    if method == "tv":
        tv = tv_weight(to_gray(rgb), estimated_kernel=True)  # the kernel is an estimate: nonblind.tv_weight
        return Deconvolution(tv_deconvolve(rgb, k, tv).astype(np.float64), k, False)
    return Deconvolution(wiener(rgb, k, weight), k, False)


def deconvolve_with_kernel(rgb: np.ndarray, kernel: np.ndarray, rule: str = "noise", method: str = "wiener") -> np.ndarray:
    """(H, W, 3) blurry sRGB in [0, 1] and a known kernel -> the non-blind deconvolution
    (float64 in [0, 1]): "wiener", weighted by `rule` as the blind path weighs it ("guarded"
    checks nothing here: the kernel is given), or "tv" (nonblind.tv_deconvolve)."""
    rgb = np.asarray(rgb, np.float64)
    k = np.asarray(kernel, np.float64)
    if method == "tv":
        return tv_deconvolve(rgb, k).astype(np.float64)
    if method != "wiener":
        raise ValueError(f"unknown non-blind method {method!r} (expected {' or '.join(NONBLIND_METHODS)})")
    return wiener(rgb, k / k.sum(), wiener_weight("noise" if rule == "guarded" else rule, to_gray(rgb)))


def blind_deconvolve(rgb: np.ndarray, cfg: BlindConfig = BlindConfig(), weight: float = WIENER_WEIGHT,
                     rule: str = "fixed") -> np.ndarray:
    """blind_deconvolution's image alone (float64, clipped to [0, 1])."""
    return blind_deconvolution(rgb, cfg, weight, rule).image


__all__ = ["CROP_ESTIMATE_SIDE", "GUARD_RESIDUAL", "MIN_SIDE", "BlindConfig", "Deconvolution", "WIENER_RULES", "WIENER_WEIGHT",
           "KERNEL_PATH_NONBLIND", "NONBLIND_METHODS", "blind_deconvolution", "blind_deconvolve", "deconvolve_with_kernel", "tv_deconvolve", "kernel_similarity", "estimate_kernel", "residual_ratio", "wiener", "wiener_weight"]
