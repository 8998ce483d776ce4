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
pad (blind.periodic_pad's cross-fade, written in place: blind.fill_periodic_pad), cut off again.

Solved in float32 (DTYPE): the result is written as 8 or 16 bits and float64 changed no
value by more than 2e-6 (1.4e-6 on a 1280x720 photo), at 2.6-3x the time.
"""

from __future__ import annotations

import numpy as np
import torch

from .blind import fill_periodic_pad, noise_sigma, padded_shape, psf2otf, to_gray

# weight = TV_PER_SIGMA x the input's estimated noise (at least TV_FLOOR): chosen on training
# photos with our own hand-shake kernels (docs/bench/kernel-first/estimator_loop.txt), never on the bench's.
# The floor stands in for the estimated kernel's own error on clean photos: 0.001 -> 0.003
# gave -0.47 -> -0.08 dB on the 18 GoPro training frames (384 px, estimated kernels) and
# +1.79 -> +1.81 / +1.09 -> +1.14 on our hand-shake loop at noise 0.01 / 0.003; 0.01 helps
# GoPro more (+0.31) but costs the hand-shake loop 0.2 dB.
TV_PER_SIGMA = 0.4
TV_FLOOR = 3e-3
# From this grey noise on (1% Gaussian noise per channel is 0.007 in grey, 2% is 0.013) an
# estimated kernel's deconvolution is weighted NOISY_TV_FACTOR times more: a kernel read from
# a noisy photo is less exact, and its errors act as more noise. Chosen on training photos
# (docs/bench/kernel-first/noise_robust_probe.md): our handheld model's photos +0.55 -> +1.23
# dB, the loop at 2% / 3% Gaussian noise +2.16 -> +2.17 / +2.30 -> +2.34; x3 lost 0.1 dB on
# the loop. A given (true) kernel keeps the plain weight, which suits it better (2%: +4.90
# against +4.56 at x2).
NOISY_SIGMA = 0.01
NOISY_TV_FACTOR = 2.0
BETA_START, BETA_MAX, BETA_RATE = 1.0, 256.0, 2.0 * np.sqrt(2.0)
DTYPE = torch.float32


_INTEGER_SCALE = {np.dtype(np.uint8): 255.0, np.dtype(np.uint16): 65535.0}


def unit(a: np.ndarray, dtype=np.float64, out: np.ndarray | None = None) -> np.ndarray:
    """Pixels (uint8, uint16 or float in [0, 1]; a slice of the photo) as floats in [0, 1]
    (float64, or `dtype`): the photo stays in its compact form and only the part in use is
    converted. out: written there instead (an array of a's shape, whose dtype is used)."""
    scale = _INTEGER_SCALE.get(a.dtype)
    if out is not None:
        np.copyto(out, a, casting="unsafe")
        if scale is not None:
            out /= out.dtype.type(scale)  # the converted value over the scale in that dtype, as below
        return out
    if scale is not None:
        return a.astype(dtype) / dtype(scale)
    return np.asarray(a, dtype)


def tv_weight(gray: np.ndarray, estimated_kernel: bool = False) -> float:
    """The TV weight for a photo (its grey) and a kernel that was given (the plain weight) or
    estimated (NOISY_TV_FACTOR times more where the photo is noisy)."""
    sigma = noise_sigma(gray)
    factor = NOISY_TV_FACTOR if estimated_kernel and sigma >= NOISY_SIGMA else 1.0
    return max(TV_PER_SIGMA * factor * sigma, TV_FLOOR)


def load_padded_channel(out: np.ndarray, rgb: np.ndarray, c: int) -> None:
    """Channel c of the photo converted as unit(rgb[..., c], np.float32) does, and padded as
    blind.periodic_pad does, written straight into the float32 `out` (the padded shape):
    the same numbers without three more copies of a channel (12 MP: 150 MB less at the
    start of each channel's solve)."""
    h, w = rgb.shape[:2]
    unit(rgb[..., c], out=out[:h, :w])
    fill_periodic_pad(out, h, w)


def solver_arrays(rgb: np.ndarray, k: np.ndarray, out: np.ndarray | None) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """What a per-channel solver of an (H, W, C) photo starts from: the kernel (float64, sum
    1), the float32 (H, W, C) output (`out`, checked, or a new one) and the padded shape."""
    k = np.asarray(k, np.float64)
    h, w, channels = rgb.shape
    if out is None:
        out = np.empty((h, w, channels), np.float32)
    elif out.shape != (h, w, channels) or out.dtype != np.float32:
        raise ValueError(f"out must be float32 {(h, w, channels)}, got {out.dtype} {out.shape}")
    return k / k.sum(), out, padded_shape((h, w), max(k.shape))


def tv_deconvolve(rgb: np.ndarray, k: np.ndarray, weight: float | None = None, out: np.ndarray | None = None) -> np.ndarray:
    """(H, W, C) blurry image (uint8, uint16 or float in [0, 1]: each channel is converted
    as it is solved) and its kernel -> the TV deconvolution in [0, 1]. C is 3 for a photo;
    with another C (a grey window: 1) give `weight`, which is otherwise measured on the
    photo's grey.

    Solved in torch, one channel at a time (its FFTs and element-wise steps use every
    thread the process has; numpy's use one), the adjoint of the differences applied in
    space (one forward FFT per step, not two). Every step of every channel writes into the
    same few buffers of one channel's size, so a whole 12 MP photo with a long kernel fits
    the photo's memory budget: the deconvolution needs no tiles, whose seams the solver's
    long-reaching early steps would leave. Returns a C-contiguous float32 (H, W, C) array, or
    writes into `out` (a float32 (H, W, C) array or view, e.g. of a channels-first photo)."""
    weight = tv_weight(to_gray(unit(rgb))) if weight is None else weight
    k, out, shape = solver_arrays(rgb, k, out)
    h, w, channels = rgb.shape

    with torch.inference_mode():
        x = torch.empty((1, *shape), dtype=DTYPE)
        xs = x[0].numpy()  # the same memory: each channel starts there (load_padded_channel)
        load_padded_channel(xs, rgb, 0)
        K = torch.from_numpy(psf2otf(k, shape)).to(DTYPE.to_complex())
        lam = 2.0 / weight
        lam_k_conj = lam * K.conj()
        kk, dd = lam * K.abs() ** 2, _difference_energy(shape, DTYPE)
        del K
        # Buffers of one channel, reused by every channel: x, one difference image at a time, the
        # adjoint, the two spectra and the denominator (and the kernel's terms, kept for all channels)
        g, adjoint = torch.empty_like(x), torch.empty_like(x)
        kty, spectrum = torch.empty_like(lam_k_conj[None]), torch.empty_like(lam_k_conj[None])
        denominator = torch.empty_like(kk)  # kk + beta dd, one step at a time
        for c in range(channels):
            if c:  # the channel starts at the input
                load_padded_channel(xs, rgb, c)
            torch.fft.rfft2(x, out=kty)
            kty.mul_(lam_k_conj)
            beta = BETA_START
            while beta <= BETA_MAX * (1 + 1e-9):
                # w = shrink(grad x, 1 / beta) (g: its x part, then its y part); then conj(Dx) F(wx) + conj(Dy) F(wy)
                # = F(grad^T w), grad^T w = wx(i-1) - wx(i) + wy(j-1) - wy(j), summed in that order
                _forward_difference(x, -1, g)
                _shrink_(g, 1 / beta, scratch=adjoint)
                _backward_difference(g, -1, adjoint)
                _forward_difference(x, -2, g)
                _shrink_(g, 1 / beta, scratch=x)  # x is not read again before the solve overwrites it
                _add_shifted_(adjoint, g, -2)
                adjoint.sub_(g)
                torch.fft.rfft2(adjoint, out=spectrum)
                torch.add(kk, dd, alpha=beta, out=denominator)
                spectrum.mul_(beta).add_(kty).div_(denominator)
                # irfft2 in two passes, the first written back into the spectrum (rewritten next
                # step anyway), so irfft2's own copy of it is not made: 12 MP, -49 MB. The same
                # to float32 rounding (at most 7e-7 on a test photo: the 1/(H W) scaling is
                # applied per axis)
                torch.fft.ifft(spectrum, dim=-2, out=spectrum)
                torch.fft.irfft(spectrum, n=shape[-1], dim=-1, out=x)
                beta *= BETA_RATE
            out[..., c] = x[0, :h, :w].clamp_(0, 1).numpy()
        return out


def _forward_difference(x: torch.Tensor, dim: int, out: torch.Tensor) -> None:
    """out = x(i+1) - x(i) along dim, periodic (x.roll(-1, dim) - x, without the roll's copy)."""
    n = x.shape[dim]
    torch.sub(x.narrow(dim, 1, n - 1), x.narrow(dim, 0, n - 1), out=out.narrow(dim, 0, n - 1))
    torch.sub(x.narrow(dim, 0, 1), x.narrow(dim, n - 1, 1), out=out.narrow(dim, n - 1, 1))


def _backward_difference(x: torch.Tensor, dim: int, out: torch.Tensor) -> None:
    """out = x(i-1) - x(i) along dim, periodic (x.roll(1, dim) - x)."""
    n = x.shape[dim]
    torch.sub(x.narrow(dim, 0, n - 1), x.narrow(dim, 1, n - 1), out=out.narrow(dim, 1, n - 1))
    torch.sub(x.narrow(dim, n - 1, 1), x.narrow(dim, 0, 1), out=out.narrow(dim, 0, 1))


def _add_shifted_(out: torch.Tensor, x: torch.Tensor, dim: int) -> None:
    """out += x(i-1) along dim, periodic (x.roll(1, dim))."""
    n = x.shape[dim]
    out.narrow(dim, 1, n - 1).add_(x.narrow(dim, 0, n - 1))
    out.narrow(dim, 0, 1).add_(x.narrow(dim, n - 1, 1))


def _shrink_(v: torch.Tensor, t: float, scratch: torch.Tensor) -> None:
    """v = softshrink(v, t) in place: v - clamp(v, -t, t) is the same numbers (scratch: overwritten)."""
    torch.clamp(v, -t, t, out=scratch)
    v.sub_(scratch)


def _difference_energy(shape: tuple[int, int], dtype: torch.dtype) -> torch.Tensor:
    """|Dx|^2 + |Dy|^2 on rfft2's grid, the forward differences' transfer functions in
    closed form: |exp(2 pi i f) - 1|^2 = 2 - 2 cos(2 pi f)."""
    h, w = shape
    fy = torch.fft.fftfreq(h, dtype=torch.float64)[:, None]
    fx = torch.fft.rfftfreq(w, dtype=torch.float64)[None, :]
    return ((2 - 2 * torch.cos(2 * np.pi * fy)) + (2 - 2 * torch.cos(2 * np.pi * fx))).to(dtype)
