"""Classical blind kernel estimation: coarse-to-fine alternation under an L0 gradient prior.

Why a classical estimator in a learned tool: on real hand-shake kernels the learned
predictor gains +0.1 to +0.5 dB, while a plain Wiener filter *given the true kernel*
gains +4 dB on the same pairs (docs/experiments/probes/nonblind_probe.txt). The network fails to
find the kernel, not to invert it. An estimator that models no particular shake (it
only assumes the sharp image has few, strong edges) has nothing of our blur model to
overfit, which is what a real photo needs.

The method is Xu, Zheng & Jia 2013 / Pan et al. 2014 ("L0-regularized intensity and
gradient prior", its gradient term), as in their published MATLAB code:
- an image pyramid with the kernel shrinking by sqrt(1/2) per level down to ~5 px;
- at each level alternate (a) the latent image under an L0 gradient prior, solved by
  half-quadratic splitting in the Fourier domain, and (b) the kernel by least squares on
  gradients with a Tikhonov term, clipped at zero, pruned of faint pixels and of
  connected pieces that carry little weight, normalised;
- the L0 weight decays per iteration so finer edges join as the kernel sharpens.
FFTs assume periodic images, so each image is first padded into a smooth periodic one
(a cross-fade between opposite edges) and the pad is cut off again.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
from numpy.fft import irfft2, rfft2


# Laplacian weight of the final Wiener step: 0.01-0.1 tried on training data, 0.03 best with
# estimated kernels (they are never exact, and a weaker prior amplifies their errors).
WIENER_WEIGHT = 0.03
# The "noise" rule adds this much weight per unit of the input's estimated noise variance.
# 0.03 was chosen at the bench's noise (0.01); the training blur is often far noisier, and
# there the fixed weight made the deconvolution worse than its input (-0.92 dB mean on the
# pack's own crops, -0.09 with this rule, the bench protocol unchanged;
# docs/experiments/probes/deconv_training_probe.py, training photos only).
NOISE_WEIGHT_PER_VARIANCE = 1000.0
# The "guarded" rule is "noise" plus a check that the kernel explains the input: the input
# is deconvolved with a light weight (GUARD_WEIGHT, so the regularisation leaves little of
# the image in the residual), blurred again by the kernel and compared with the input;
# where they differ by more than GUARD_RESIDUAL times the input's estimated noise (at
# least GUARD_NOISE_FLOOR, so 8-bit steps and tiny model errors on clean photos do not
# count), the estimate failed (a wrong kernel on a flat or low-contrast crop: such crops
# lost 2-14 dB) and the input comes back unchanged. Chosen on training data only
# (docs/experiments/probes/deconv_guard_probe.py): the pack's own handheld draws +0.03 -> +0.43 dB mean,
# the bench protocol with our own kernels +0.21 -> +0.35. 1.2 scored a little higher on
# the draws (+0.55) but rejected a right kernel on a clean GoPro crop with noise 0.005.
GUARD_WEIGHT = 0.01
GUARD_NOISE_FLOOR = 0.005
GUARD_RESIDUAL = 1.5
WIENER_RULES = ("fixed", "noise", "guarded")


@dataclass(frozen=True)
class BlindConfig:
    kernel_size: int = 75  # the largest kernel looked for (odd, px)
    iterations: int = 5  # alternations per pyramid level
    lambda_grad: float = 4e-3  # L0 weight on the latent image's gradients
    lambda_decay: float = 1.1  # lambda /= decay each iteration, down to lambda_min
    lambda_min: float = 1e-4
    kernel_reg: float = 2.0  # Tikhonov weight of the kernel step (on the gradient energy scale)
    prune: float = 0.1  # kernel pixels below this fraction of the maximum are zeroed (0.05-0.2 tried on training data; estimator_loop.txt)
    min_piece: float = 0.1  # connected kernel pieces with less than this weight are dropped
    cg_iterations: int = 20  # conjugate-gradient steps of the kernel solve
    threshold_decay: float = 1.1  # the salient-edge threshold is relaxed this much per iteration
    beta_max: float = 1e5  # half-quadratic splitting ends here
    kappa: float = 2.0  # beta *= kappa per splitting step
    edges_per_direction: float = 2.0  # salient gradients kept per orientation bin, times the kernel size
    cg_start: str = "delta"  # the kernel solve starts from: delta, uniform (Pan et al.) or previous (the last estimate)
    level_clean: bool = True  # prune and drop pieces of the kernel carried up a level (Pan et al. only clip and normalise)
    # Kernels larger than this are estimated on the image shrunk until they fit, then enlarged:
    # at full resolution the 1%-noise gradients of a long, faint stroke drown in noise and the
    # estimate shrinks towards a dot level by level (0: no cap).
    finest_size: int = 0
    noise_lambda_floor: float = 0.0  # lambda never falls below this times the input's estimated noise (0.5: Anger et al.)
    # Cho & Lee's prediction: the latent image is sharpened by this many shock-filter steps
    # before its edges are selected, so the kernel step sees step edges (0: off). Against
    # the no-blur pull at fine levels: on the tuning loop (48 training photos, TV) 5 steps
    # raise the 31-75 px kernels' similarity 0.584 -> 0.675 (+0.88 -> +1.54 dB) and cost
    # the 13-27 px ones 0.37 dB (+2.73 -> +2.36); 2, 3, 10 and 20 steps scored lower.
    shock_steps: int = 5
    shock_dt: float = 0.25
    shock_from: int = 0  # the shock filter acts from this pyramid level on (0: all)
    start: str = "horizontal"  # the coarsest level's start, two pixels side by side (Pan et al.) or "vertical"


def to_gray(rgb: np.ndarray) -> np.ndarray:
    return (rgb[..., :3] @ np.array([0.299, 0.587, 0.114])).astype(np.float64)


def padded_shape(shape: tuple[int, int], pad: int) -> tuple[int, int]:
    """(H, W) grown by at least `pad` on each axis, to sizes the FFT is fast at."""
    return cv2.getOptimalDFTSize(shape[0] + pad), cv2.getOptimalDFTSize(shape[1] + pad)


def periodic_pad(img: np.ndarray, pad: int) -> np.ndarray:
    """Pad (H, W) on the bottom and right by at least `pad` (up to sizes the FFT is fast
    at) so the result wraps smoothly: the pad cross-fades from the last row/column into
    the first, so FFT-based solvers see no edge."""
    h, w = img.shape
    out = np.empty(padded_shape((h, w), pad), np.result_type(img.dtype, np.float32))  # float32 stays float32
    out[:h, :w] = img
    fill_periodic_pad(out, h, w)
    return out


def fill_periodic_pad(out: np.ndarray, h: int, w: int) -> None:
    """Fill `out` outside its top-left (h, w) corner, which holds the image, with
    periodic_pad's cross-fades (in place: no second copy of a large image)."""
    def fade(n):
        t = np.arange(1, n + 1) / (n + 1)
        return (0.5 - 0.5 * np.cos(np.pi * t)).astype(out.dtype, copy=False)

    t = fade(out.shape[0] - h)[:, None]
    out[h:, :w] = (1 - t) * out[h - 1:h, :w] + t * out[:1, :w]
    t = fade(out.shape[1] - w)[None, :]
    out[:, w:] = (1 - t) * out[:, w - 1:w] + t * out[:, :1]


def psf2otf(k: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """The kernel's transfer function on an image of `shape`, its centre at the origin."""
    pad = np.zeros(shape)
    kh, kw = k.shape
    pad[:kh, :kw] = k
    return rfft2(np.roll(pad, (-(kh // 2), -(kw // 2)), axis=(0, 1)))


def _diff_otf(shape: tuple[int, int], axis: int) -> np.ndarray:
    """Transfer function of the forward difference x[i+1] - x[i] along `axis` (as _grad)."""
    d = np.zeros(shape)
    d[0, 0] = -1
    d[(-1, 0) if axis == 0 else (0, -1)] = 1
    return rfft2(d)


def _grad(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Forward differences with wrap-around (matching the FFT's periodic model); slices,
    not np.roll, which copies the image first."""
    gx, gy = np.empty_like(x), np.empty_like(x)
    np.subtract(x[:, 1:], x[:, :-1], out=gx[:, :-1])
    np.subtract(x[:, :1], x[:, -1:], out=gx[:, -1:])
    np.subtract(x[1:], x[:-1], out=gy[:-1])
    np.subtract(x[:1], x[-1:], out=gy[-1:])
    return gx, gy


def l0_latent(y: np.ndarray, K: np.ndarray, lam: float, cfg: BlindConfig) -> np.ndarray:
    """argmin_x ||k*x - y||^2 + lam ||grad x||_0, by half-quadratic splitting (periodic y).

    In float64 torch: its FFTs and element-wise steps use the process's threads (numpy's
    one), 1.5x faster on a 1280x720 window here with 2 threads, the same numbers to 1e-14.
    The estimate's most costly step (about 24 splitting steps per call, 40 calls a photo)."""
    import torch

    shape = y.shape
    yt = torch.from_numpy(np.ascontiguousarray(y, np.float64))
    Kt = torch.from_numpy(np.ascontiguousarray(K))  # a view numpy accepts (reversed, read-only) torch may not
    Dx, Dy = _diff_otf(shape, 1), _diff_otf(shape, 0)
    num_y = torch.view_as_real(Kt.conj() * torch.fft.rfft2(yt))  # Dx, Dy: only their energy below (the adjoint is applied in space)
    den_k = Kt.abs() ** 2
    den_d = torch.from_numpy(np.abs(Dx) ** 2 + np.abs(Dy) ** 2)
    x = yt.clone()
    gx, gy, adjoint, keep = torch.empty_like(x), torch.empty_like(x), torch.empty_like(x), torch.empty(shape, dtype=torch.bool)
    beta = 2 * lam
    while beta < cfg.beta_max:
        # forward differences (as _grad), the small ones set to zero; slices into reused
        # buffers, not torch.roll's new arrays (a third faster on one thread)
        torch.sub(x[:, 1:], x[:, :-1], out=gx[:, :-1])
        torch.sub(x[:, :1], x[:, -1:], out=gx[:, -1:])
        torch.sub(x[1:], x[:-1], out=gy[:-1])
        torch.sub(x[:1], x[-1:], out=gy[-1:])
        torch.ge(gx * gx + gy * gy, lam / beta, out=keep)
        gx.mul_(keep)
        gy.mul_(keep)
        # The adjoint of the forward difference applied in space (one FFT, not two):
        # conj(Dx) F(gx) + conj(Dy) F(gy) = F(adjoint(gx, gy)).
        torch.sub(gx[:, :-1], gx[:, 1:], out=adjoint[:, 1:])
        torch.sub(gx[:, -1:], gx[:, :1], out=adjoint[:, :1])
        adjoint[1:] += gy[:-1]
        adjoint[:1] += gy[-1:]
        adjoint -= gy
        f = torch.fft.rfft2(adjoint)
        # complex / real on the (re, im) pairs: torch would divide as complex by complex
        torch.view_as_real(f).mul_(beta).add_(num_y).div_((den_k + beta * den_d)[..., None])
        x = torch.fft.irfft2(f, s=shape)
        beta *= cfg.kappa
    return x.numpy()


def salient_threshold(x: np.ndarray, size: int, per_direction: float = 2.0) -> float:
    """Cho & Lee's gradient threshold: keep at least per_direction * size of the strongest
    gradients in each of four orientation bins, so every direction of the kernel is
    constrained by some edges and weak, noisy ones do not drown it."""
    gx, gy = _grad(x)
    mag = np.hypot(gx, gy).ravel()
    ang = np.mod(np.arctan2(gy, gx).ravel(), np.pi)
    bins = np.minimum((ang / (np.pi / 4)).astype(int), 3)
    need = max(int(per_direction * size), 10)
    out = np.inf
    for b in range(4):
        m = np.sort(mag[bins == b])[::-1]
        if len(m):
            out = min(out, m[min(need, len(m) - 1)])
    return float(out) if np.isfinite(out) else 0.0


def shock_filter(x: np.ndarray, steps: int, dt: float) -> np.ndarray:
    """Osher-Rudin shock filter after a light Gaussian (Cho & Lee 2009): intensities move
    away from the edge's mid-level, turning blurred ramps into steps."""
    x = x.astype(np.float64).copy()
    for _ in range(steps):
        s = cv2.GaussianBlur(x, (0, 0), 1.0, borderType=cv2.BORDER_REFLECT)
        lap = cv2.Laplacian(s, cv2.CV_64F, borderType=cv2.BORDER_REFLECT)
        gy, gx = np.gradient(x)
        x -= dt * np.sign(lap) * np.hypot(gx, gy)
    return x


def kernel_step(x: np.ndarray, y: np.ndarray, size: int, cfg: BlindConfig, threshold: float = 0.0,
                previous: np.ndarray | None = None) -> np.ndarray:
    """Least-squares kernel from gradients: argmin_k ||grad x * k - grad y||^2 + reg ||k||^2,
    using only the latent image's gradients above `threshold` (its salient edges)."""
    shape = y.shape
    gx, gy = _grad(x)
    keep = np.hypot(gx, gy) >= threshold
    xs, ys = (gx * keep, gy * keep), _grad(y)
    fx = [rfft2(a) for a in xs]
    num = sum(np.conj(f) * rfft2(b) for f, b in zip(fx, ys))
    den = sum(np.abs(f) ** 2 for f in fx)
    r = size // 2

    def window(full):  # the size x size window around the origin of a periodic array
        return np.roll(full, (r, r), axis=(0, 1))[:size, :size]

    # Conjugate gradients on the normal equations with the kernel confined to its window
    # (Pan et al.'s estimate_psf): the unconstrained Fourier solution leaks weight outside
    # the window and leaves a haze that cropping cannot remove. The normal operator is the
    # gradients' autocorrelation (symmetric), which a kernel confined to size x size sees
    # only at lags below size: it is applied as a small 2-D filter on the kernel, the same
    # numbers as the FFT of the whole padded image at a fraction of the cost.
    autocorr = np.roll(irfft2(den, s=shape), (size - 1, size - 1), axis=(0, 1))[:2 * size - 1, :2 * size - 1]

    def A(k):
        return cv2.filter2D(k, -1, autocorr, borderType=cv2.BORDER_CONSTANT) + cfg.kernel_reg * k

    b = window(irfft2(num, s=shape))
    if cfg.cg_start == "uniform":
        k = np.full((size, size), 1.0 / size ** 2)
    elif cfg.cg_start == "previous" and previous is not None and previous.shape == (size, size):
        k = previous.copy()
    else:
        k = np.zeros((size, size))
        k[r, r] = 1.0
    res = b - A(k)
    p, rs = res.copy(), float((res * res).sum())
    for _ in range(cfg.cg_iterations):
        Ap = A(p)
        alpha = rs / max(float((p * Ap).sum()), 1e-30)
        k += alpha * p
        res -= alpha * Ap
        rs_new = float((res * res).sum())
        if rs_new < 1e-10 * max(float((b * b).sum()), 1e-30):
            break
        p, rs = res + (rs_new / rs) * p, rs_new
    return clean_kernel(k, cfg)


def clean_kernel(k: np.ndarray, cfg: BlindConfig) -> np.ndarray:
    k = np.maximum(k, 0)
    if k.max() <= 0:
        out = np.zeros_like(k)
        out[k.shape[0] // 2, k.shape[1] // 2] = 1
        return out
    k[k < cfg.prune * k.max()] = 0
    k /= k.sum()
    n, labels = cv2.connectedComponents((k > 0).astype(np.uint8), connectivity=8)
    weights = np.bincount(labels.ravel(), weights=k.ravel(), minlength=n)
    weights[0] = 0  # the background
    # Drop light pieces (estimation noise), but never the heaviest: a scattered estimate
    # must still leave a kernel.
    drop = (weights < cfg.min_piece) & (np.arange(n) != int(np.argmax(weights)))
    k[drop[labels]] = 0
    return centre_kernel(k / k.sum())


def centre_shift(k: np.ndarray) -> tuple[int, int]:
    """The whole-pixel shift (rows, columns) that puts the centre of mass of k (sum 1) at
    its window's middle."""
    h, w = k.shape
    yy, xx = np.mgrid[:h, :w]
    cy, cx = float((k * yy).sum()), float((k * xx).sum())
    return int(round(h // 2 - cy)), int(round(w // 2 - cx))


def centre_kernel(k: np.ndarray) -> np.ndarray:
    """Shift the kernel (whole pixels) so its centre of mass is at the middle: the latent
    image is only defined up to a shift, and an off-centre kernel wastes its support."""
    h, w = k.shape
    dy, dx = centre_shift(k)
    out = np.zeros_like(k)
    ys, yd = (slice(0, h - dy), slice(dy, h)) if dy >= 0 else (slice(-dy, h), slice(0, h + dy))
    xs, xd = (slice(0, w - dx), slice(dx, w)) if dx >= 0 else (slice(-dx, w), slice(0, w + dx))
    out[yd, xd] = k[ys, xs]
    return out / out.sum()


def _odd(n: float) -> int:
    n = max(int(math.ceil(n)), 3)
    return n if n % 2 else n + 1


def pyramid_sizes(kernel_size: int) -> list[int]:
    """Kernel sizes from ~5 px up to kernel_size, sqrt(1/2) apart (coarsest first)."""
    levels = max(int(math.floor(math.log(5 / kernel_size) / math.log(math.sqrt(0.5)))), 0)
    return [_odd(kernel_size * math.sqrt(0.5) ** i) for i in range(levels, -1, -1)]


def estimate_kernel(gray: np.ndarray, cfg: BlindConfig = BlindConfig()) -> np.ndarray:
    """(H, W) blurry grey image in [0, 1] -> (kernel_size, kernel_size) kernel, sum 1."""
    size = _odd(min(cfg.kernel_size, 2 * (min(gray.shape) // 4) - 1))
    if cfg.finest_size and size > cfg.finest_size:
        small = _odd(cfg.finest_size)
        f = small / size
        shrunk = cv2.resize(gray, (max(int(round(gray.shape[1] * f)), small + 2), max(int(round(gray.shape[0] * f)), small + 2)),
                            interpolation=cv2.INTER_AREA)
        k = _estimate_at(shrunk, small, cfg)
        k = np.maximum(cv2.resize(k, (size, size), interpolation=cv2.INTER_CUBIC), 0)
        return centre_kernel(k / k.sum())
    return _estimate_at(gray, size, cfg)


def _estimate_at(gray: np.ndarray, size: int, cfg: BlindConfig) -> np.ndarray:
    sizes = pyramid_sizes(size)
    k = None
    lam = cfg.lambda_grad
    lam_min = max(cfg.lambda_min, cfg.noise_lambda_floor * noise_sigma(gray)) if cfg.noise_lambda_floor else cfg.lambda_min
    for level, ks in enumerate(sizes):
        scale = ks / size
        h, w = max(int(round(gray.shape[0] * scale)), ks + 2), max(int(round(gray.shape[1] * scale)), ks + 2)
        y = cv2.resize(gray, (w, h), interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR)
        yp = periodic_pad(y, ks)
        if k is None:
            k = np.zeros((ks, ks))
            if cfg.start not in ("horizontal", "vertical"):
                raise ValueError(f"unknown start {cfg.start!r} (expected horizontal or vertical)")
            if cfg.start == "vertical":
                k[ks // 2 - 1: ks // 2 + 1, ks // 2] = 0.5
            else:
                k[ks // 2, ks // 2 - 1: ks // 2 + 1] = 0.5  # Pan et al.'s start: two pixels
        else:
            k = cv2.resize(k, (ks, ks), interpolation=cv2.INTER_LINEAR)
            if cfg.level_clean:
                k = clean_kernel(k, cfg)
            else:
                k = np.maximum(k, 0)
                k /= k.sum()
        threshold = None
        for _ in range(cfg.iterations):
            x = l0_latent(yp, psf2otf(k, yp.shape), lam, cfg)
            if cfg.shock_steps and level >= cfg.shock_from:
                x = shock_filter(x, cfg.shock_steps, cfg.shock_dt)
            threshold = (salient_threshold(x, ks, cfg.edges_per_direction) if threshold is None
                         else threshold / cfg.threshold_decay)
            k = kernel_step(x, yp, ks, cfg, threshold, k)
            lam = max(lam / cfg.lambda_decay, lam_min)
    return k


def noise_sigma(gray: np.ndarray) -> float:
    """The noise's standard deviation, from the image's response to a mask that cancels
    smooth structure (Immerkaer 1996, "Fast noise variance estimation")."""
    m = np.array([[1, -2, 1], [-2, 4, -2], [1, -2, 1]], float)
    r = cv2.filter2D(np.asarray(gray, np.float64), -1, m, borderType=cv2.BORDER_REFLECT)[1:-1, 1:-1]
    return float(np.sqrt(np.pi / 2) * np.abs(r).mean() / 6) if r.size else 0.0


def wiener_weight(rule: str, gray: np.ndarray) -> float:
    """The Wiener step's weight: "fixed" (WIENER_WEIGHT) or "noise" (more for a noisier input)."""
    if rule == "fixed":
        return WIENER_WEIGHT
    if rule in ("noise", "guarded"):
        return WIENER_WEIGHT + NOISE_WEIGHT_PER_VARIANCE * noise_sigma(gray) ** 2
    raise ValueError(f"unknown Wiener rule {rule!r} (expected {' or '.join(WIENER_RULES)})")


def reblur_residual(gray: np.ndarray, k: np.ndarray, weight: float = GUARD_WEIGHT) -> float:
    """RMS difference between the grey image and its Wiener deconvolution (weight `weight`)
    blurred again by k. Borders, where the periodic deconvolution is not a convolution, are
    left out (0 for an image too small to have an inside)."""
    gray = np.asarray(gray, np.float64)
    m = k.shape[0] // 2 + 2
    if min(gray.shape) <= 2 * m:
        return 0.0
    latent = wiener(gray[..., None], k, weight)[..., 0]
    reblur = cv2.filter2D(latent, -1, k[::-1, ::-1], borderType=cv2.BORDER_REFLECT)
    return float(np.sqrt(np.mean((reblur - gray)[m:-m, m:-m] ** 2)))


def residual_ratio(gray: np.ndarray, k: np.ndarray) -> float:
    """The guard's measure: reblur_residual at the light GUARD_WEIGHT, in units of the
    image's estimated noise (at least GUARD_NOISE_FLOOR): about 1 or less where k explains
    the image, far more where it does not."""
    return reblur_residual(gray, k) / max(noise_sigma(gray), GUARD_NOISE_FLOOR)


def wiener(rgb: np.ndarray, k: np.ndarray, weight: float = WIENER_WEIGHT) -> np.ndarray:
    """Non-blind deconvolution, Laplacian-regularised Wiener per channel on a periodic pad."""
    h, w = rgb.shape[:2]
    p = max(k.shape)
    lap = np.array([[0, -1, 0], [-1, 4, -1], [0, -1, 0]], float)
    out = np.empty(rgb.shape, np.float64)
    for c in range(rgb.shape[2]):
        yp = periodic_pad(rgb[..., c].astype(np.float64), p)
        K, L = psf2otf(k, yp.shape), psf2otf(lap, yp.shape)
        H = np.conj(K) / (np.abs(K) ** 2 + weight * np.abs(L) ** 2)
        out[..., c] = irfft2(H * rfft2(yp), s=yp.shape)[:h, :w]
    return np.clip(out, 0, 1)
