"""Real measured blur kernels: reading them, and blurring photos the way the standard
benchmarks (Levin et al. 2009, Sun et al. 2013, Lai et al. 2016) make their inputs.

The protocol: the stored 8-bit values of the sharp photo are convolved (true convolution,
not correlation) with the kernel, Gaussian noise of a given std is added, and the result
is rounded to 8 bits; `linear` blurs in linear light instead (sRGB gamma undone, as a
camera's sensor integrates). The whole photo is blurred, then centre-cropped, so a crop's
borders see real pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import UsageError

KERNEL_EXTENSIONS = (".png", ".npy", ".mat")


@dataclass(frozen=True)
class Kernel:
    name: str
    array: np.ndarray  # float32, sums to 1
    offset: tuple[float, float]  # centroid minus centre (x, y) before centring, pixels

    @property
    def extent(self) -> int:
        ys, xs = np.nonzero(self.array)
        return int(max(ys.max() - ys.min(), xs.max() - xs.min()) + 1)


def _read_mat(path: Path) -> np.ndarray:
    try:
        from scipy.io import loadmat
    except ImportError:
        raise UsageError(f"{path}: reading .mat kernels needs SciPy (pip install 'deblurkit[bench]')") from None
    try:
        d = loadmat(str(path))
    except Exception as e:  # SciPy raises several types for a corrupt or v7.3 (HDF5) file
        raise UsageError(f"{path}: not a readable .mat file ({type(e).__name__}: {e})") from None
    arrays = {k: v for k, v in d.items() if not k.startswith("__") and isinstance(v, np.ndarray)
              and v.ndim == 2 and v.dtype.kind in "fiu" and min(v.shape) > 1}
    if len(arrays) != 1:
        found = ", ".join(sorted(arrays)) or "none"
        raise UsageError(f"{path}: expected exactly one 2-D numeric array in the .mat file, found {found}")
    return next(iter(arrays.values()))


def read_kernel_array(path: Path) -> np.ndarray:
    ext = path.suffix.lower()
    if ext == ".npy":
        try:
            a = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as e:
            raise UsageError(f"{path}: not a readable .npy array ({e})") from None
    elif ext == ".mat":
        a = _read_mat(path)
    elif ext == ".png":
        import cv2

        a = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if a is None:
            raise UsageError(f"{path}: not a readable PNG")
        if a.ndim == 3:
            a = a[:, :, :3].mean(axis=2)
    else:
        raise UsageError(f"{path}: kernels must be {', '.join(KERNEL_EXTENSIONS)}")
    a = np.asarray(a)
    if a.ndim != 2 or min(a.shape) < 1 or a.dtype.kind not in "fiub":
        raise UsageError(f"{path}: a kernel must be a 2-D numeric array, got shape {a.shape} of {a.dtype}")
    return a.astype(np.float64)


def prepare_kernel(a: np.ndarray, name: str, threshold: float = 0.05, centre: bool = True) -> Kernel:
    """Zero the faint estimation noise below `threshold` x max, normalise to sum 1, and
    (centre) shift the kernel by whole pixels so its centroid sits at the centre of an odd
    support: an off-centre kernel shifts the blurry image, which a deblurrer cannot know and
    PSNR would punish (Köhler et al.'s metric aligns for the same reason)."""
    if not np.all(np.isfinite(a)):
        raise UsageError(f"{name}: the kernel has non-finite values")
    a = np.clip(a, 0, None)
    if a.max() <= 0:
        raise UsageError(f"{name}: the kernel has no positive values")
    a = a / a.max()  # values near the float limit would overflow the sum below
    a = np.where(a >= threshold, a, 0.0)
    a = a / a.sum()
    if centre:  # the bounding box of what is left, then re-centred
        ys, xs = np.nonzero(a)
        a = a[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]
    h, w = a.shape
    gy, gx = np.mgrid[0:h, 0:w]
    cy, cx = float((a * gy).sum()), float((a * gx).sum())
    if centre:
        ry, rx = int(round(cy)), int(round(cx))
        half = max(ry, h - 1 - ry, rx, w - 1 - rx)
        out = np.zeros((2 * half + 1, 2 * half + 1))
        out[half - ry : half - ry + h, half - rx : half - rx + w] = a
        offset = (cx - rx, cy - ry)
    else:
        # As stored, padded to odd sides (the centre pixel is the origin).
        out = np.pad(a, ((0, 1 - h % 2), (0, 1 - w % 2)))
        offset = (cx - (out.shape[1] - 1) / 2, cy - (out.shape[0] - 1) / 2)
    return Kernel(name, out.astype(np.float32), (round(offset[0], 3), round(offset[1], 3)))


def load_kernels(folder: Path, threshold: float = 0.05, centre: bool = True) -> list[Kernel]:
    if not folder.is_dir():
        raise UsageError(f"{folder}: not a directory of kernels ({', '.join(KERNEL_EXTENSIONS)})")
    files = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in KERNEL_EXTENSIONS)
    if not files:
        raise UsageError(f"{folder}: no kernels found ({', '.join(KERNEL_EXTENSIONS)} files)")
    return [prepare_kernel(read_kernel_array(p), str(p), threshold, centre) for p in files]


def blur_with_kernel(sharp_u8: np.ndarray, kernel: np.ndarray, noise: float, rng: np.random.Generator,
                     linear: bool = False) -> np.ndarray:
    """The benchmark's blurry image (float32 in [0, 1], on the 8-bit grid) of an 8-bit photo."""
    from ..data.blur import convolve, linear_to_srgb, srgb_to_linear

    x = sharp_u8.astype(np.float32) / 255.0
    if linear:
        y = linear_to_srgb(convolve(srgb_to_linear(x).astype(np.float32), kernel)).astype(np.float32)
    else:
        y = convolve(x, kernel)
    y = y + noise * rng.standard_normal(y.shape).astype(np.float32)
    return (np.round(np.clip(y, 0.0, 1.0) * 255) / 255).astype(np.float32)
