"""Model-free rows of the kernel bench: the project's own deconvolution given the true
kernel (the ceiling of any kernel-first method: its non-blind step with a perfect kernel)
and given the kernel the project's blind estimator finds, as the kernel path finds and
uses it (deconv.photo: the photo-level estimate, the guard, the TV deconvolution). Both use deblurkit.deconv with the kernel path's non-blind step
(KERNEL_PATH_NONBLIND, TV), so the rows move when the library's estimator or non-blind
step changes; the kernel bench scores each estimate against the truth. The true-kernel row
is the estimate's step given a perfect kernel (TV); a kernel the user gives (`--kernel
FILE`) is inverted by deconv.highlights instead on photos with clipped highlights, which
the bench's photos, blurred as stored values, do not have in the sense that matters."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

CLASSICAL = ("true-kernel", "estimate")


@dataclass(frozen=True)
class ClassicalResult:
    image: np.ndarray  # (H, W, 3) in [0, 1]
    kernel: np.ndarray | None  # the kernel estimated (None where it was given)
    fell_back: bool = False  # the guard kept the input: the estimate does not explain it


def restore_classical(name: str, rgb: np.ndarray, true_kernel: np.ndarray | None) -> ClassicalResult:
    from ..deconv import KERNEL_PATH_NONBLIND, deconvolve_with_kernel

    if name == "true-kernel":
        if true_kernel is None:
            raise ValueError("true-kernel needs the pair's true kernel")
        return ClassicalResult(deconvolve_with_kernel(rgb, true_kernel, method=KERNEL_PATH_NONBLIND), None)
    if name == "estimate":  # exactly the product's kernel path (`deblur --kernel auto`), without the networks
        from ..deconv.photo import deconvolve_photo, estimate_photo_kernel

        est = estimate_photo_kernel(rgb)
        # a kernel read from light streaks is deconvolved as the kernel path does it (as a given one)
        image = deconvolve_photo(rgb, est.kernel, estimated=not est.streaks) if est.accepted else np.clip(rgb, 0, 1)
        return ClassicalResult(np.asarray(image, np.float64), est.kernel, not est.accepted)
    raise ValueError(f"unknown classical method {name!r}")
