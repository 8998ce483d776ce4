"""Classical (model-free) deconvolution: blind kernel estimation and non-blind inversion."""

from __future__ import annotations

import numpy as np

from .blind import WIENER_RULES, WIENER_WEIGHT, BlindConfig, estimate_kernel, to_gray, wiener, wiener_weight


# Below this side there are too few edges to estimate a kernel from: the image is its own
# "deconvolution" (the kernel-aware predictor then sees the input twice).
MIN_SIDE = 32
# The kernel is estimated on the centre of at most this side (the cost grows with the area;
# a few hundred pixels hold edges enough), then the whole image is deconvolved with it.
ESTIMATE_SIDE = 384


def blind_deconvolve(rgb: np.ndarray, cfg: BlindConfig = BlindConfig(), weight: float = WIENER_WEIGHT,
                     rule: str = "fixed") -> np.ndarray:
    """(H, W, 3) blurry sRGB in [0, 1] -> its deconvolution with the kernel estimated from
    its grey image (float64, clipped to [0, 1]). rule "noise": the Wiener weight follows the
    input's estimated noise (wiener_weight) instead of `weight`."""
    rgb = np.asarray(rgb, np.float64)
    if min(rgb.shape[:2]) < MIN_SIDE:
        return np.clip(rgb, 0, 1)
    h, w = rgb.shape[:2]
    ch, cw = min(h, ESTIMATE_SIDE), min(w, ESTIMATE_SIDE)
    centre = rgb[(h - ch) // 2:(h - ch) // 2 + ch, (w - cw) // 2:(w - cw) // 2 + cw]
    gray = to_gray(centre)
    if rule != "fixed":
        weight = wiener_weight(rule, gray)
    return wiener(rgb, estimate_kernel(gray, cfg), weight)


__all__ = ["ESTIMATE_SIDE", "MIN_SIDE", "BlindConfig", "WIENER_RULES", "WIENER_WEIGHT", "blind_deconvolve", "estimate_kernel",
           "wiener", "wiener_weight"]
