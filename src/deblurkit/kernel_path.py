"""Kernel-first restoration (issue 35), the step below the restorer: find the photo's blur
kernel (or take the one the user gives), deconvolve the photo with it, and hand the
networks that deconvolution as their starting estimate (refined first by the model's
refiner, where it has one: models/config.py `refiner`). Where the estimated kernel does
not explain the photo (the guard: moving objects, scene motion, defocus the estimator
does not find) the photo takes the blind path, the predictor alone, as before.

A second check sends scene motion (GoPro-style: people walking, parallax) to the blind
path although a kernel passes the guard: the blind predictor, trained on such blur, changes
a photo it recognises a lot, and a camera shake it does not recognise hardly at all
(+0.1 to +0.5 dB). Where the predictor changes the photo at least RECOGNISED_RATIO times
as much as the deconvolution does (around the estimation window, at the estimation's
scale), the predictor is trusted, unless its change points the way the deconvolution's does
on a photo with little noise (AGREEING_CHANGE: it then undoes part of the blur this kernel
describes, a short camera shake it half knows, and the deconvolution all of it). Chosen on
training data only (docs/bench/kernel-first/predictor_on_deconv_probe.py, record
docs/bench/kernel-first/predictor_on_deconv_probe.txt): on 72 training photos (ImageNet
samples, Sun80) blurred by our own kernels the kernel path's mean gain is +1.24 dB with
0.9 (+0.93 with 0.7, +1.23 with 1.0 to 1.5: above 0.9 the deconvolution changed nothing
worth keeping); on the 18 GoPro training frames 0.9 sends 7 of the 9 frames the guard
accepted to the blind path. The predictor is trusted too where its result, blurred by
the kernel, fits the photo at most DEBLURRED_RATIO times as closely as the photo blurred
again (it deblurred the photo along this kernel): the two GoPro training frames left
scored 0.72 and 0.78, 119 training photos with our hand-shake kernels 0.86 or more
(docs/bench/kernel-first/deblurred_check_probe.py).

Shared by every front end through `Restorer.restore(..., kernel=KernelChoice(...))`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

KERNEL_MODES = ("auto", "none", "given")
RECOGNISED_RATIO = 0.9  # the predictor's change over the deconvolution's, at which the predictor is trusted
# ... unless the two changes point the same way (their cosine at least this): the predictor
# then undoes part of the very blur the kernel describes (a short camera shake it half
# knows), and the deconvolution undoes all of it. Set on training data
# (docs/bench/kernel-first/change_direction_probe.txt): the GoPro training frames the ratio
# sends blind have cosines -0.05 to 0.24, the one camera-shake photo it sent blind wrongly
# (the deconvolution +4.29 dB, the predictor +0.19) 0.41; the middle of that gap. Not on a
# noisy photo (the check window's grey noise at least nonblind.NOISY_SIGMA, as for the TV
# weight): there the predictor, trained on noisy photos, removes the noise the deconvolution
# keeps, and on 27 Sun80 training photos blurred by our handheld model (noise 1.2-4.3%) the
# 15 the exception would move scored 0.34 dB less on average on the kernel path
# (change_direction_probe.txt, "noisy").
AGREEING_CHANGE = 0.33
DEBLURRED_RATIO = 0.82  # at most this: the predictor's output blurred by the kernel misses the photo by this fraction of what the photo blurred again does (it deblurred it)
NEAR_DOT_EXTENT = 6  # a kernel at most this long (px at the estimation scale) is near a dot: nothing for a deconvolution to undo
CHECK_SIDE = 384  # the centre the check runs on, full-resolution pixels (plus a margin of the kernel)


@dataclass(frozen=True)
class KernelChoice:
    mode: str = "none"  # auto: estimate and let the guard decide; none: the blind path; given: deconvolve with `kernel`
    kernel: np.ndarray | None = None  # (k, k), for mode "given"
    size: int | None = None  # the largest kernel looked for, full-resolution px (auto; None: the estimator's default)
    region: tuple[int, int, int, int] | None = None  # x, y, w, h to estimate on (auto; None: the centre)

    def fingerprint(self) -> dict:
        """What changes the pixels, for a video's resume manifest (the kernel by its hash)."""
        import hashlib

        given = None if self.kernel is None else hashlib.sha256(np.ascontiguousarray(self.kernel).tobytes()).hexdigest()
        # A given kernel's frames on photos with clipped highlights come from deconv.highlights
        # since it exists: frames made before it (the TV step alone) are not reused.
        # Likewise an auto frame may take a kernel read from light streaks since that step exists.
        # And an auto frame's path may differ since the predictor's check weighs how its change
        # agrees with the deconvolution's. And since the estimate's window (and the centre the
        # TV weight reads the noise from) is 512 px, not 384, both modes' frames may differ.
        step = ({"given_step": "tv+highlights+centre512"} if self.mode == "given" else
                {"auto_step": "streaks+estimate512+agreement-low-noise"} if self.mode == "auto" else {})
        return {"mode": self.mode, "kernel_sha256": given, "size": self.size,
                "region": None if self.region is None else list(self.region), **step}

    def __post_init__(self):
        if self.mode not in KERNEL_MODES:
            raise ValueError(f"unknown kernel mode {self.mode!r} (expected {', '.join(KERNEL_MODES)})")
        if (self.mode == "given") != (self.kernel is not None):
            raise ValueError("a kernel goes with mode 'given', and mode 'given' needs one")
        if self.size is not None and self.size < 3:
            raise ValueError(f"kernel size {self.size}: must be at least 3 px")


@dataclass(frozen=True)
class KernelReport:
    """What the kernel step did for one photo (the restorer's `on_kernel` hears it)."""

    path: str  # "kernel" (deconvolved, networks refine) or "blind" (the predictor on the input)
    kernel: np.ndarray | None  # the kernel estimated or given (None: none was looked for)
    reason: str  # one line for the user
    residual: float | None = None  # the guard's measure (estimated kernels)
    estimated: bool = True  # the kernel was estimated (False: the user's; its deconvolution takes the plain TV weight)


def _pixels_hwc(image: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) tensor on the CPU -> an (H, W, 3) view in its own dtype (no float copy)."""
    return image[0].detach().cpu().permute(1, 2, 0).numpy()


@dataclass(frozen=True)
class PredictorCheck:
    """What the blind predictor does to the photo, measured against the kernel (see
    predictor_check)."""

    ratio: float  # the predictor's RMS change of the photo over the deconvolution's
    deblurred: float  # RMS(k * P(y) - y) / RMS(k * y - y): below 1, P(y) is a sharper photo this kernel explains
    agreement: float  # cos(P(y) - y, d - y): near 1, the predictor undoes the blur this kernel describes
    noise: float  # the window's grey noise (blind.noise_sigma), where the check looked


def predictor_check(image: torch.Tensor, est, predictor) -> PredictorCheck:
    """The blind predictor on the photo against the estimated kernel: at the estimation's
    scale (the predictor sees the blur as the estimator did, and a 12 MP photo costs no more
    than a 1280 px one), on a CHECK_SIDE square centred on the window the kernel was
    estimated on, with a margin of the kernel's size that is cut off before measuring.
    `est`: deconv.photo.KernelEstimate. `predictor`: (1, 3, h, w) float32 in [0, 1] -> the
    same, the restorer's deterministic network.

    Two signs that the predictor knows this blur: it changes the photo about as much as the
    deconvolution does or more (scene motion it was trained on; camera shake it hardly
    touches), in another direction (`agreement`, the two changes' cosine: a predictor that
    goes the deconvolution's way is undoing part of this kernel's blur; not asked on a noisy
    photo, `noise`), or its output, blurred by the kernel, gives the photo back better than
    the photo blurred again does (it deblurred the photo along this very kernel; a predictor
    that leaves the photo as it is scores 1)."""
    import cv2

    from .deconv.blind import _odd, noise_sigma, to_gray
    from .deconv.photo import deconvolve_photo, resize_kernel, unit

    H, W = image.shape[-2:]
    s = est.scale
    kernel = est.kernel if s == 1 else resize_kernel(est.kernel, _odd(est.kernel.shape[0] * s))
    m = int(kernel.shape[0])
    side = int(round((CHECK_SIDE + 2 * m) / s))  # in full-resolution pixels
    side_h, side_w = min(H, side), min(W, side)
    x, y0, w, h = est.region
    t = min(max(y0 + h // 2 - side_h // 2, 0), H - side_h)
    l = min(max(x + w // 2 - side_w // 2, 0), W - side_w)
    y = unit(_pixels_hwc(image)[t:t + side_h, l:l + side_w], np.float32)
    if s < 1:
        y = cv2.resize(y, (max(int(round(side_w * s)), 1), max(int(round(side_h * s)), 1)), interpolation=cv2.INTER_AREA)
    d = deconvolve_photo(y, kernel, estimated=not est.streaks)  # as the kernel path will deconvolve it
    p = predictor(torch.from_numpy(np.ascontiguousarray(y)).permute(2, 0, 1)[None].contiguous())[0].permute(1, 2, 0).cpu().numpy()
    hh, ww = y.shape[:2]
    mh, mw = min(m, (hh - 1) // 4), min(m, (ww - 1) // 4)  # keep an inside on small photos
    inside = (slice(mh, hh - mh), slice(mw, ww - mw))

    def rms(a, b) -> float:
        return float(np.sqrt(np.mean((a[inside] - b[inside]) ** 2, dtype=np.float64)))

    def blur(a):
        return cv2.filter2D(a, -1, kernel[::-1, ::-1].astype(np.float32), borderType=cv2.BORDER_REFLECT)

    a = (p - y)[inside].astype(np.float64).ravel()
    b = (d - y)[inside].astype(np.float64).ravel()
    agreement = float(np.sum(a * b) / max(np.sqrt(np.sum(a * a) * np.sum(b * b)), 1e-12))
    return PredictorCheck(rms(p, y) / max(rms(d, y), 1e-6), rms(blur(p), y) / max(rms(blur(y), y), 1e-6), agreement,
                          noise_sigma(to_gray(y.astype(np.float64))))


def decide(image: torch.Tensor, choice: KernelChoice, supported: bool = True, predictor=None) -> KernelReport:
    """The path for this photo and its kernel. `predictor` (the restorer's blind network,
    as predictor_check takes it): where given, an estimated kernel's photo whose blur the
    predictor recognises takes the blind path."""
    from .deconv.nonblind import NOISY_SIGMA
    from .deconv.photo import GUARD_RESIDUAL, MIN_SIDE, estimate_photo_kernel, kernel_extent

    if choice.mode == "none":
        return KernelReport("blind", None, "kernel path off")
    if not supported:
        return KernelReport("blind", None, "this model has no predictor to refine a deconvolution: blind path")
    if choice.mode == "given":
        return KernelReport("kernel", choice.kernel, "the given kernel", estimated=False)
    H, W = image.shape[-2:]
    if min(H, W) < MIN_SIDE:
        return KernelReport("blind", None, f"too small to estimate a kernel (under {MIN_SIDE} px a side): blind path")
    est = estimate_photo_kernel(_pixels_hwc(image), choice.size, choice.region)
    if not est.accepted:
        return KernelReport("blind", est.kernel, f"no kernel explains the photo (residual {est.residual:.2f} x noise, "
                            f"limit {GUARD_RESIDUAL}): blind path", est.residual)
    extent = kernel_extent(est.kernel) * est.scale
    if extent <= NEAR_DOT_EXTENT:
        # the TV step's smoothing then costs more than the kernel gives back (GoPro frame 110:
        # a 6 px kernel, -0.7 dB against the input); the predictor handles such small blur
        return KernelReport("blind", est.kernel, f"the estimated kernel is near a dot ({extent:.0f} px, limit "
                            f"{NEAR_DOT_EXTENT}): blind path", est.residual)
    if predictor is not None:
        check = predictor_check(image, est, predictor)
        if check.ratio >= RECOGNISED_RATIO and (check.agreement < AGREEING_CHANGE or check.noise >= NOISY_SIGMA):
            return KernelReport("blind", est.kernel, f"the predictor recognises this blur (it changes the photo {check.ratio:.2f} x as "
                                f"much as the {est.size}x{est.size} kernel's deconvolution, limit {RECOGNISED_RATIO}, "
                                + (f"in another direction: cosine {check.agreement:.2f}, under {AGREEING_CHANGE}"
                                   if check.agreement < AGREEING_CHANGE else
                                   f"on a noisy photo: grey noise {check.noise:.3f}, limit {NOISY_SIGMA}") + "): blind path",
                                est.residual)
        if check.deblurred <= DEBLURRED_RATIO:
            return KernelReport("blind", est.kernel, f"the predictor recognises this blur (its result, blurred by the "
                                f"{est.size}x{est.size} kernel, fits the photo {check.deblurred:.2f} x as closely as the photo "
                                f"blurred again, limit {DEBLURRED_RATIO}): blind path", est.residual)
    if est.streaks:  # measured from the photo, not estimated: deconvolved as a given kernel is (deconv.highlights)
        return KernelReport("kernel", est.kernel, f"{est.size}x{est.size} kernel read from {est.streaks + 1} light streaks that "
                            f"agree (residual {est.residual:.2f} x noise)", est.residual, estimated=False)
    return KernelReport("kernel", est.kernel, f"estimated {est.size}x{est.size} kernel (residual {est.residual:.2f} x noise)",
                        est.residual)


def deconvolution(image: torch.Tensor, kernel: np.ndarray, estimated: bool) -> torch.Tensor:
    """(1, 3, H, W) photo -> its deconvolution with `kernel` (`estimated` or given: see
    nonblind.tv_weight), (1, 3, H, W) float32 in [0, 1]."""
    from .deconv.photo import deconvolve_photo

    return torch.from_numpy(deconvolve_photo(_pixels_hwc(image), kernel, channels_first=True, estimated=estimated))[None]


def kernel_choice(kernel="auto", size: int | None = None, region=None) -> KernelChoice:
    """A user's kernel option -> KernelChoice: "auto", "none", a kernel array, or the path of
    a kernel image (a known PSF: the photo is deconvolved with it, no estimate). ValueError
    with the reason (and the file) where it is none of these."""
    from pathlib import Path

    from .deconv.photo import as_kernel, read_kernel

    if isinstance(kernel, np.ndarray):
        k = np.asarray(kernel, np.float64)
        if k.ndim != 2 or not np.isfinite(k).all() or k.min() < 0 or k.sum() <= 0:
            raise ValueError("kernel: needs a 2-D array of non-negative values with a positive sum")
        mode, given = "given", as_kernel(k)
    elif isinstance(kernel, str) and kernel in ("auto", "none"):
        mode, given = kernel, None
    elif isinstance(kernel, (str, Path)):
        try:
            given = read_kernel(kernel)
        except ValueError as e:
            raise ValueError(f"{kernel}: {e}") from None
        mode = "given"
    else:
        raise ValueError(f"kernel: expected auto, none, an array or a kernel image's path, not {type(kernel).__name__}")
    return KernelChoice(mode, given, size, None if region is None else tuple(int(v) for v in region))
