"""Classical (model-free) deconvolution: blind kernel estimation and non-blind inversion."""

from __future__ import annotations

import numpy as np

from .blind import WIENER_WEIGHT, BlindConfig, estimate_kernel, to_gray, wiener


def blind_deconvolve(rgb: np.ndarray, cfg: BlindConfig = BlindConfig(), weight: float = WIENER_WEIGHT) -> np.ndarray:
    """(H, W, 3) blurry sRGB in [0, 1] -> its deconvolution with the kernel estimated from
    its grey image (float64, clipped to [0, 1])."""
    rgb = np.asarray(rgb, np.float64)
    return wiener(rgb, estimate_kernel(to_gray(rgb), cfg), weight)


__all__ = ["BlindConfig", "WIENER_WEIGHT", "blind_deconvolve", "estimate_kernel", "wiener"]
