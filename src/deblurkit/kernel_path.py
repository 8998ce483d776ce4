"""Kernel-first restoration (issue 35), the step below the restorer: find the photo's blur
kernel (or take the one the user gives), deconvolve the photo with it, and hand the
networks that deconvolution as their starting estimate. Where the estimated kernel does
not explain the photo (the guard: moving objects, scene motion, defocus the estimator
does not find) the photo takes the blind path, the predictor alone, as before.

Shared by every front end through `Restorer.restore(..., kernel=KernelChoice(...))`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

KERNEL_MODES = ("auto", "none", "given")


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
        return {"mode": self.mode, "kernel_sha256": given, "size": self.size,
                "region": None if self.region is None else list(self.region)}

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


def _pixels_hwc(image: torch.Tensor) -> np.ndarray:
    """(1, 3, H, W) tensor on the CPU -> an (H, W, 3) view in its own dtype (no float copy)."""
    return image[0].detach().cpu().permute(1, 2, 0).numpy()


def decide(image: torch.Tensor, choice: KernelChoice, supported: bool = True) -> KernelReport:
    """The path for this photo and its kernel."""
    from .deconv.photo import GUARD_RESIDUAL, MIN_SIDE, estimate_photo_kernel

    if choice.mode == "none":
        return KernelReport("blind", None, "kernel path off")
    if not supported:
        return KernelReport("blind", None, "this model has no predictor to refine a deconvolution: blind path")
    if choice.mode == "given":
        return KernelReport("kernel", choice.kernel, "the given kernel")
    H, W = image.shape[-2:]
    if min(H, W) < MIN_SIDE:
        return KernelReport("blind", None, f"too small to estimate a kernel (under {MIN_SIDE} px a side): blind path")
    est = estimate_photo_kernel(_pixels_hwc(image), choice.size, choice.region)
    if not est.accepted:
        return KernelReport("blind", est.kernel, f"no kernel explains the photo (residual {est.residual:.2f} x noise, "
                            f"limit {GUARD_RESIDUAL}): blind path", est.residual)
    return KernelReport("kernel", est.kernel, f"estimated {est.size}x{est.size} kernel (residual {est.residual:.2f} x noise)",
                        est.residual)


def deconvolution(image: torch.Tensor, kernel: np.ndarray) -> torch.Tensor:
    """(1, 3, H, W) photo -> its deconvolution with `kernel`, (1, 3, H, W) float32 in [0, 1]."""
    from .deconv.photo import deconvolve_photo

    d = deconvolve_photo(_pixels_hwc(image), kernel)
    return torch.from_numpy(d).permute(2, 0, 1)[None].contiguous()


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
