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

Measured on training photos with the true kernel (docs/bench/kernel-first/highlight_solver_product_probe.txt:
36 bsds500_test photos with clipped pixels, our kernels, 1% noise): highlights lifted x3,
the TV step +1.92 dB, this +4.36; without lifted highlights +5.85 against +6.01. With the
estimator's kernels the probe's version changed nothing measurable (+0.18 -> +0.19), so
the kernel path keeps the TV step for estimated kernels and uses this one for a given
kernel on photos with clipped pixels (photo.deconvolve_photo).

Periodic model on the same smooth pad as the TV step, the pad read as unknown (no pull
from it: +0.13-0.19 dB over reading it as data), in torch, one channel at a time in float32
(eight float buffers of one channel's size and one spectrum, several reused for more than
one thing; ten before, and a new step factor and spectra every step: a made-up 12 MP night photo
through `deblur --kernel auto` peaks at 1.34 GB resident here, 1.52 GB before, in 75-80 s).
Three cheaper solvers kept at most 56% of its gain on training photos (+2.47 of +4.44); it
would have to run within about four kernel extents of every light to keep it all; a pyramid
start keeps 96-99% for a third less work (docs/bench/kernel-first/highlight_tv_bounds_probe.txt).
"""

from __future__ import annotations

import numpy as np
import torch

from .blind import psf2otf
from .nonblind import (_INTEGER_SCALE, NOISY_SIGMA, _add_shifted_, _backward_difference, _forward_difference,
                       load_padded_channel, solver_arrays)

CLIPPED = 0.98  # a channel at or above this (in [0, 1]) is read as clipped
ITERATIONS = 50
# The TV term's weight: TV below NOISY_SIGMA of grey noise, TV_PER_SIGMA x the noise above.
# Chosen on training photos (48 bsds500_test photos, our kernels, true kernel; 2% noise:
# 0.002 / 0.004 / 0.006 / 0.009 gave +3.61 / +4.35 / +4.42 / +4.26 dB; 1% noise: 0.002
# +5.60, 0.004 +5.22).
TV = 0.002
TV_PER_SIGMA = 0.45
FLOOR = 1e-4  # Richardson-Lucy divides by the blurred estimate: kept above zero
MAX_ACCELERATION = 0.95  # the extrapolation's largest factor (below 1: Biggs & Andrews)
DTYPE = torch.float32


def clipped_share(rgb: np.ndarray) -> float:
    """The share of pixels with a channel at or above CLIPPED (uint8, uint16 or float in [0, 1])."""
    a = np.asarray(rgb)
    level = CLIPPED * _INTEGER_SCALE.get(a.dtype, 1.0)
    return float((a[..., :3] >= level).any(axis=-1).mean()) if a.size else 0.0


def tv_term(sigma: float) -> float:
    """The TV term's weight for a photo whose grey noise is `sigma`."""
    return TV if sigma < NOISY_SIGMA else TV_PER_SIGMA * sigma


def richardson_lucy_clipped(rgb: np.ndarray, k: np.ndarray, iterations: int = ITERATIONS, tv: float = TV,
                            out: np.ndarray | None = None) -> np.ndarray:
    """(H, W, C) blurry photo (uint8, uint16 or float in [0, 1]) and its kernel -> the
    deconvolution in [0, 1] (float32 (H, W, C), or written into `out`, a float32 array or view
    of that shape), clipped pixels read as lower bounds (see the module's docstring).

    Accelerated as Biggs & Andrews (1997) do: each step starts from the last estimate carried
    further along its last move, by how much the last two moves agree."""
    k, out, shape = solver_arrays(rgb, k, out)
    h, w, channels = rgb.shape
    with torch.inference_mode():
        K = torch.from_numpy(psf2otf(k, shape)).to(DTYPE.to_complex())
        Kc = K.conj()
        outside = torch.ones(shape, dtype=torch.bool)  # the pad: no data there (its ratio is 1)
        outside[:h, :w] = False
        y = torch.empty(shape, dtype=DTYPE)
        ys = y.numpy()
        # one channel's buffers, reused by every channel: the estimate, the point a step starts
        # from, the estimate before, the last two moves, the blurred point, a TV term. Each
        # buffer also serves where its own value is not needed (12 MP: 170 MB less at the
        # peak): the step's factor is made in x (saved in x_prev first), the TV term's other two
        # in the blurred point (used up by then) and the move (made after them).
        x, point, x_prev, move, move_prev, blurred, gy = (torch.empty_like(y) for _ in range(7))
        spectrum = torch.empty_like(K)  # each FFT's spectrum, multiplied in place (no second one)
        reached = torch.empty(shape, dtype=torch.bool)
        for c in range(channels):
            load_padded_channel(ys, rgb, c)
            bound = (y >= CLIPPED) | outside
            y.clamp_(min=FLOOR)
            x.copy_(y)
            point.copy_(y)
            has_move = False
            for _ in range(iterations):
                x_prev.copy_(x)
                torch.fft.irfft2(torch.fft.rfft2(point, out=spectrum).mul_(K), s=shape, out=blurred)
                blurred.clamp_(min=FLOOR)
                # a clipped pixel the estimate already reaches exerts no pull; nor does the pad
                torch.ge(blurred, y, out=reached).logical_or_(outside).logical_and_(bound)
                ratio = torch.div(y, blurred, out=blurred).masked_fill_(reached, 1.0)
                step = torch.fft.irfft2(torch.fft.rfft2(ratio, out=spectrum).mul_(Kc), s=shape, out=x)
                if tv:
                    gx, norm = blurred, move
                    _forward_difference(point, -1, gx)
                    _forward_difference(point, -2, gy)
                    torch.mul(gx, gx, out=norm).addcmul_(gy, gy).add_(1e-6).sqrt_()
                    gx.div_(norm)
                    gy.div_(norm)
                    # minus div(grad x / |grad x|), into norm: the forward differences' adjoint
                    # (gx(i-1) - gx(i) + gy(j-1) - gy(j)), as the TV step applies it
                    _backward_difference(gx, -1, norm)
                    norm.sub_(gy)
                    _add_shifted_(norm, gy, -2)
                    step.div_(norm.mul_(tv).add_(1).clamp_(min=0.1))
                step.mul_(point).clamp_(min=FLOOR)  # x = point x step
                torch.sub(x, point, out=move)
                alpha = 0.0
                if has_move:
                    alpha = _inner(move, move_prev, blurred) / max(_inner(move_prev, move_prev, blurred), 1e-30)
                    alpha = min(max(alpha, 0.0), MAX_ACCELERATION)
                move, move_prev, has_move = move_prev, move, True
                torch.sub(x, x_prev, out=point)
                point.mul_(alpha).add_(x).clamp_(min=FLOOR)
            out[..., c] = x[:h, :w].clamp(0, 1).numpy()
    return out


def _inner(a: torch.Tensor, b: torch.Tensor, scratch: torch.Tensor) -> float:
    """<a, b>, the same number whatever the thread count (torch.dot's threaded reduction is
    not: the acceleration, and so every byte after it, would follow the machine): products
    summed row by row in float64 (scratch: overwritten)."""
    torch.mul(a, b, out=scratch)
    return float(scratch.sum(-1, dtype=torch.float64).sum())


__all__ = ["CLIPPED", "clipped_share", "richardson_lucy_clipped", "tv_term"]
