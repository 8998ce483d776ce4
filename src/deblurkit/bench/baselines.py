"""Classical non-blind references for the synthetic bench, where the true kernel is known.

Wiener and Richardson-Lucy deconvolution from scikit-image, per channel, in linear light
(the synthetic blur is applied there). For spatially varying blur only the first kernel is
known to the baseline, so there it is an approximation, which is also what a non-blind
method faces in practice.
"""

from __future__ import annotations

import numpy as np

from ..data.blur import linear_to_srgb, srgb_to_linear
from ..errors import UsageError

WIENER_BALANCE = 0.1  # Laplacian-regularised (Wiener-Hunt); 0.1 was best of 0.001-0.1 on blurred photos
RL_ITERATIONS = 30


def _restoration():
    try:
        from skimage import restoration
    except ImportError:
        raise UsageError("--baselines needs scikit-image: pip install 'deblur[bench]'") from None
    return restoration


def deconvolve(blurry: np.ndarray, kernel: np.ndarray, method: str) -> np.ndarray:
    """(H, W, 3) sRGB in [0, 1] -> deconvolved sRGB in [0, 1]."""
    restoration = _restoration()
    # Reflect-pad by the kernel radius: both methods otherwise treat the border as
    # circular (Wiener) or zero (Richardson-Lucy) and ring inwards from it.
    p = kernel.shape[0] // 2
    lin = np.pad(srgb_to_linear(blurry.astype(np.float64)), ((p, p), (p, p), (0, 0)), mode="reflect")
    out = np.empty_like(lin)
    for c in range(3):
        if method == "wiener":
            out[..., c] = restoration.wiener(lin[..., c], kernel, balance=WIENER_BALANCE, clip=True)
        elif method == "richardson-lucy":
            out[..., c] = restoration.richardson_lucy(lin[..., c], kernel, num_iter=RL_ITERATIONS, clip=True)
        else:
            raise ValueError(method)
    return linear_to_srgb(np.clip(out[p:-p or None, p:-p or None], 0, 1)).astype(np.float32)
