"""Non-blind deconvolution under a total-variation prior, the kernel path's inversion.

Wiener (blind.wiener) is one linear filter: with a long kernel it rings and its noise
grows wherever the kernel's spectrum is weak. TV keeps edges and flattens the noise
between them (the field's standard non-blind step: Krishnan & Fergus 2009 solve it by
half-quadratic splitting, Pan et al. and Anger et al. end their blind estimators with it;
with the true kernel it gains 1.5-2 dB over Wiener on 1%-noise crops, issue 35's table).

    argmin_x  ||k * x - y||^2 + weight * ||grad x||_1      (anisotropic, per channel)

by half-quadratic splitting as Krishnan & Fergus write it (lam = 2 / weight on the data
term): w = shrink(grad x, 1 / beta), then x in closed form in the Fourier domain, beta
growing from 1 to 256 by 2 sqrt(2). Periodic model on a smooth periodic
pad (blind.periodic_pad), cut off again.
"""

from __future__ import annotations

import numpy as np
from numpy.fft import irfft2, rfft2

from .blind import _diff_otf, _grad, noise_sigma, periodic_pad, psf2otf, to_gray

# weight = TV_PER_SIGMA x the input's estimated noise (at least TV_FLOOR): chosen on training
# photos with our own hand-shake kernels (docs/bench/kernel-first/estimator_loop.txt), never on the bench's.
# The floor stands in for the estimated kernel's own error on clean photos: 0.001 -> 0.003
# gave -0.47 -> -0.08 dB on the 18 GoPro training frames (384 px, estimated kernels) and
# +1.79 -> +1.81 / +1.09 -> +1.14 on our hand-shake loop at noise 0.01 / 0.003; 0.01 helps
# GoPro more (+0.31) but costs the hand-shake loop 0.2 dB.
TV_PER_SIGMA = 0.4
TV_FLOOR = 3e-3
BETA_START, BETA_MAX, BETA_RATE = 1.0, 256.0, 2.0 * np.sqrt(2.0)


def tv_weight(gray: np.ndarray) -> float:
    return max(TV_PER_SIGMA * noise_sigma(gray), TV_FLOOR)


def tv_deconvolve(rgb: np.ndarray, k: np.ndarray, weight: float | None = None) -> np.ndarray:
    """(H, W, 3) blurry image in [0, 1] and its kernel -> the TV deconvolution in [0, 1]."""
    rgb = np.asarray(rgb, np.float64)
    k = np.asarray(k, np.float64)
    k = k / k.sum()
    weight = tv_weight(to_gray(rgb)) if weight is None else weight
    h, w = rgb.shape[:2]
    out = np.empty(rgb.shape, np.float64)
    for c in range(rgb.shape[2]):
        yp = periodic_pad(rgb[..., c], max(k.shape))
        K = psf2otf(k, yp.shape)
        Dx, Dy = _diff_otf(yp.shape, 1), _diff_otf(yp.shape, 0)
        lam = 2.0 / weight
        kty = lam * np.conj(K) * rfft2(yp)
        kk, dd = lam * np.abs(K) ** 2, np.abs(Dx) ** 2 + np.abs(Dy) ** 2
        x = yp.copy()
        beta = BETA_START
        while beta <= BETA_MAX * (1 + 1e-9):
            gx, gy = _grad(x)
            wx = np.sign(gx) * np.maximum(np.abs(gx) - 1 / beta, 0)
            wy = np.sign(gy) * np.maximum(np.abs(gy) - 1 / beta, 0)
            num = kty + beta * (np.conj(Dx) * rfft2(wx) + np.conj(Dy) * rfft2(wy))
            x = irfft2(num / (kk + beta * dd), s=yp.shape)
            beta *= BETA_RATE
        out[..., c] = x[:h, :w]
    return np.clip(out, 0, 1)
