"""Non-blind deconvolution for photos with clipped highlights: Richardson-Lucy with a TV
term, clipped pixels read as lower bounds.

A highlight the camera clipped was brighter than it shows, so the blurred photo is not
the kernel times a sharp photo there: a linear solver (the TV step, nonblind.tv_deconvolve)
explains the clipped plateau with dark rings around it and loses most of its gain. After
Whyte, Sivic and Zisserman (2014, "Deblurring shaken and partially saturated images"): a
clipped pixel (a channel at or above CLIPPED) only says "at least this bright", so where the
estimate, blurred, is already as bright it exerts no pull. Richardson-Lucy (multiplicative,
never below zero) with the TV term of Dey et al. (2006):

    x <- x * (k^T r) / (1 - tv div(grad x / |grad x|)),   r = y / (k * x), r = 1 where y is
                                                             clipped and k * x >= y

Measured on training photos with the true kernel (docs/bench/kernel-first/highlight_solver_probe.txt:
36 bsds500_test photos with clipped pixels, our kernels, 1% noise): highlights lifted x3,
the TV step +1.92 dB, this +4.21; without lifted highlights +5.85 against +5.90. With the
estimator's kernels it changes nothing measurable (+0.18 -> +0.19), so the kernel path keeps
the TV step for estimated kernels and uses this one for a given kernel (photo.deconvolve_photo).

Periodic model on the same smooth pad as the TV step, in torch, one channel at a time in
float32 (a few buffers of one channel's size).
"""

from __future__ import annotations

import numpy as np
import torch

from .blind import padded_shape, psf2otf
from .nonblind import NOISY_SIGMA, load_padded_channel

CLIPPED = 0.98  # a channel at or above this (in [0, 1]) is read as clipped
ITERATIONS = 50
# The TV term's weight: TV below NOISY_SIGMA of grey noise, TV_PER_SIGMA x the noise above.
# Chosen on training photos (48 bsds500_test photos, our kernels, true kernel; 2% noise:
# 0.002 / 0.004 / 0.006 / 0.009 gave +3.81 / +4.34 / +4.40 / +4.26 dB; 1% noise: 0.002
# +5.43, 0.004 +5.16).
TV = 0.002
TV_PER_SIGMA = 0.45
FLOOR = 1e-4  # Richardson-Lucy divides by the blurred estimate: kept above zero
DTYPE = torch.float32


def clipped_share(rgb: np.ndarray) -> float:
    """The share of pixels with a channel at or above CLIPPED (uint8, uint16 or float in [0, 1])."""
    a = np.asarray(rgb)
    level = CLIPPED * {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}.get(a.dtype, 1.0)
    return float((a[..., :3] >= level).any(axis=-1).mean()) if a.size else 0.0


def tv_term(sigma: float) -> float:
    """The TV term's weight for a photo whose grey noise is `sigma`."""
    return TV if sigma < NOISY_SIGMA else TV_PER_SIGMA * sigma


def richardson_lucy_clipped(rgb: np.ndarray, k: np.ndarray, iterations: int = ITERATIONS, tv: float = TV,
                            out: np.ndarray | None = None) -> np.ndarray:
    """(H, W, C) blurry photo (uint8, uint16 or float in [0, 1]) and its kernel -> the
    deconvolution in [0, 1] (float32 (H, W, C), or written into `out`, a float32 array or view
    of that shape), clipped pixels read as lower bounds (see the module's docstring)."""
    k = np.asarray(k, np.float64)
    k = k / k.sum()
    h, w, channels = rgb.shape
    if out is None:
        out = np.empty((h, w, channels), np.float32)
    elif out.shape != (h, w, channels) or out.dtype != np.float32:
        raise ValueError(f"out must be float32 {(h, w, channels)}, got {out.dtype} {out.shape}")
    shape = padded_shape((h, w), max(k.shape))
    with torch.inference_mode():
        K = torch.from_numpy(psf2otf(k, shape)).to(DTYPE.to_complex())
        Kc = K.conj()
        y = torch.empty(shape, dtype=DTYPE)
        ys = y.numpy()
        x, blurred, gx, gy, norm = (torch.empty_like(y) for _ in range(5))
        for c in range(channels):
            load_padded_channel(ys, rgb, c)
            clipped = y >= CLIPPED
            outside = torch.ones(shape, dtype=torch.bool)
            outside[:h, :w] = False
            y.clamp_(min=FLOOR)
            x.copy_(y)
            for _ in range(iterations):
                torch.fft.irfft2(torch.fft.rfft2(x) * K, s=shape, out=blurred)
                blurred.clamp_(min=FLOOR)
                ratio = torch.div(y, blurred)
                ratio.masked_fill_(clipped & (blurred >= y), 1.0)  # a clipped pixel the estimate already reaches: no pull
                ratio.masked_fill_(outside, 1.0)
                step = torch.fft.irfft2(torch.fft.rfft2(ratio) * Kc, s=shape)
                if tv:
                    _forward(x, -1, gx)
                    _forward(x, -2, gy)
                    torch.sqrt(gx * gx + gy * gy + 1e-6, out=norm)
                    gx.div_(norm)
                    gy.div_(norm)
                    _backward(gx, -1, norm)  # div(grad x / |grad x|), into norm
                    _backward_add(gy, -2, norm)
                    step.div_(norm.mul_(-tv).add_(1).clamp_(min=0.1))
                x.mul_(step).clamp_(min=FLOOR)
            out[..., c] = x[:h, :w].clamp(0, 1).numpy()
    return out


def _forward(x: torch.Tensor, dim: int, out: torch.Tensor) -> None:
    """out = x(i+1) - x(i) along dim, periodic."""
    torch.sub(x.roll(-1, dim), x, out=out)


def _backward(g: torch.Tensor, dim: int, out: torch.Tensor) -> None:
    """out = g(i) - g(i-1) along dim, periodic (the divergence's part along dim: minus the forward difference's adjoint)."""
    torch.sub(g, g.roll(1, dim), out=out)


def _backward_add(g: torch.Tensor, dim: int, out: torch.Tensor) -> None:
    out.add_(g).sub_(g.roll(1, dim))


__all__ = ["CLIPPED", "clipped_share", "richardson_lucy_clipped", "tv_term"]
