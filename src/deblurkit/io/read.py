"""Reading photos: EXIF orientation applied, 16-bit kept, alpha and metadata carried.

Pillow decodes 8-bit images and reads metadata for every format; OpenCV decodes
16-bit PNG/TIFF pixels, which Pillow cannot hold as RGB. The EXIF orientation is
applied to the pixel array with numpy so both decoders follow one code path.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, UnidentifiedImageError

from ..errors import ImageReadError

from .header import open_unchecked
from .discover import DEFAULT_MAX_PIXELS, IMAGE_EXTENSIONS  # noqa: F401 (re-exported)

ORIENTATION_TAG = 0x0112



def library_chatter(enabled: bool) -> None:
    """OpenCV logs decoder complaints to the terminal on its own; the user gets our one
    line instead (and OpenCV's words too with --debug)."""
    from cv2.utils import logging as cv_logging

    cv_logging.setLogLevel(cv_logging.LOG_LEVEL_WARNING if enabled else cv_logging.LOG_LEVEL_SILENT)


library_chatter(False)

@dataclass
class LoadedImage:
    path: Path
    # (H, W, 3), orientation applied, in its compact source form: uint8 or uint16 as
    # decoded, float32 in [0, 1] for float files. A 24 MP photo is 72 MB as uint8 and
    # 288 MB as float32, so the float view is made only where it is needed (`rgb`).
    pixels: np.ndarray
    bit_depth: int  # 8 or 16: the depth outputs are written at (where the format allows)
    grayscale: bool
    alpha: np.ndarray | None  # (H, W) in the source dtype, passed through unchanged
    icc_profile: bytes | None
    exif: bytes | None  # with orientation reset to 1 (normal)
    format: str
    notes: list[str] = field(default_factory=list)  # things the user should know (frame used, clipping)

    @property
    def size(self) -> tuple[int, int]:
        return self.pixels.shape[1], self.pixels.shape[0]

    @property
    def rgb(self) -> np.ndarray:
        """(H, W, 3) float32 in [0, 1]: a new array on each call (except for float files)."""
        return pixels_to_unit(self.pixels)


def pixels_to_unit(pixels: np.ndarray) -> np.ndarray:
    """uint8 / uint16 / float pixels as float32 in [0, 1] (the division the restorer repeats per tile)."""
    if pixels.dtype == np.uint8:
        return pixels.astype(np.float32) / 255.0
    if pixels.dtype == np.uint16:
        return pixels.astype(np.float32) / 65535.0
    return pixels.astype(np.float32, copy=False)


def apply_orientation(a: np.ndarray, orientation: int) -> np.ndarray:
    """Undo EXIF orientation 1..8 on an (H, W, ...) array (as PIL's exif_transpose)."""
    ops = {
        1: lambda x: x,
        2: lambda x: x[:, ::-1],
        3: lambda x: x[::-1, ::-1],
        4: lambda x: x[::-1],
        5: lambda x: np.swapaxes(x, 0, 1),
        6: lambda x: np.rot90(x, -1),
        7: lambda x: np.rot90(np.swapaxes(x, 0, 1), 2),
        8: lambda x: np.rot90(x, 1),
    }
    return np.ascontiguousarray(ops.get(orientation, ops[1])(a))


PNG_GRAY_ALPHA = 4  # IHDR colour type


def _png_ihdr(path: Path) -> tuple[int, int | None]:
    """(bit depth, colour type) from a PNG's IHDR; (8, None) if it has none."""
    with open(path, "rb") as f:
        head = f.read(26)
    return (head[24], head[25]) if len(head) == 26 and head[12:16] == b"IHDR" else (8, None)


def _is_high_depth(img: Image.Image, path: Path) -> bool:
    if img.format == "PNG":
        return _png_ihdr(path)[0] == 16 and img.mode not in ("P",)
    if img.format == "TIFF":
        bits = img.tag_v2.get(258, (8,))
        bits = bits if isinstance(bits, tuple) else (bits,)
        return max(bits) == 16
    return False


def _decode_cv2(path: Path) -> np.ndarray:
    data = np.fromfile(str(path), dtype=np.uint8)  # no cv2.imread: it mishandles non-ASCII paths on some OSes
    arr = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise ImageReadError(f"{path}: OpenCV could not decode this 16-bit image")
    if arr.ndim == 3:
        code = cv2.COLOR_BGRA2RGBA if arr.shape[2] == 4 else cv2.COLOR_BGR2RGB
        arr = cv2.cvtColor(arr, code)
    return arr


def _pil_to_array(img: Image.Image) -> np.ndarray:
    mode = img.mode
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    elif mode == "PA":
        img = img.convert("RGBA")
    elif mode == "1":
        img = img.convert("L")
    elif mode in ("CMYK", "YCbCr", "LAB", "HSV"):
        img = img.convert("RGB")
    elif mode.startswith("I;16"):
        return np.array(img, dtype=np.uint16)
    elif mode == "F":
        return np.array(img, dtype=np.float32)
    elif mode == "I":
        raise ImageReadError(f"{img.filename}: 32-bit integer images are not supported")
    elif mode == "La":
        img = img.convert("LA")
    elif mode in ("RGBa", "RGBX"):
        img = img.convert("RGBA" if mode == "RGBa" else "RGB")
    return np.array(img)


TIFF_MAGIC = (b"II*\x00", b"MM\x00*")


def _float_to_unit(arr: np.ndarray) -> np.ndarray:
    """Float pixels (32-bit TIFF) are taken as [0, 1] intensities and clipped."""
    return np.clip(np.nan_to_num(arr.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)


def read_image(path: str | Path, max_pixels: int = DEFAULT_MAX_PIXELS) -> LoadedImage:
    """Decode an image file; every failure is an `ImageReadError` naming the file and why."""
    path = Path(path)
    if not path.exists():
        raise ImageReadError(f"{path}: no such file")
    if path.is_dir():
        raise ImageReadError(f"{path}: is a directory")
    if not os.access(path, os.R_OK):
        raise ImageReadError(f"{path}: permission denied")
    if path.stat().st_size == 0:
        raise ImageReadError(f"{path}: empty file (0 bytes)")
    notes: list[str] = []
    exif = Image.Exif()
    orientation, icc = 1, None
    try:
        with warnings.catch_warnings():
            # Our own limit (max_pixels) is checked below from the header; Pillow's global
            # one is never touched (io.header says why).
            warnings.simplefilter("ignore", UserWarning)  # e.g. "Truncated File Read" is raised below instead
            try:
                img = open_unchecked(path)
            except UnidentifiedImageError:
                img = None
                with open(path, "rb") as f:
                    if f.read(4) not in TIFF_MAGIC:
                        raise
            if img is None:  # a TIFF Pillow cannot hold (e.g. 32-bit float RGB): OpenCV decodes it
                arr, fmt = _decode_cv2(path), "TIFF"
                if arr.shape[0] * arr.shape[1] > max_pixels:
                    raise ImageReadError(f"{path}: {arr.shape[1]}x{arr.shape[0]} is over the {max_pixels:,}-pixel limit (raise it with --max-pixels)")
            else:
                with img:
                    if img.width * img.height > max_pixels:
                        raise ImageReadError(
                            f"{path}: {img.width}x{img.height} is over the {max_pixels:,}-pixel limit (raise it with --max-pixels)"
                        )
                    frames = getattr(img, "n_frames", 1)
                    if frames > 1:
                        notes.append(f"{path}: {frames} frames, the first is used")
                    img.seek(0)
                    exif = img.getexif()
                    orientation = int(exif.get(ORIENTATION_TAG, 1) or 1)
                    icc = img.info.get("icc_profile") or None
                    fmt = img.format or path.suffix.lstrip(".").upper()
                    if _is_high_depth(img, path):
                        samples = img.tag_v2.get(277, 1) if img.format == "TIFF" else 1
                        if isinstance(samples, int) and samples > 4:
                            raise ImageReadError(f"{path}: {samples} channels are not supported (1 to 4)")
                        arr = _decode_cv2(path)
                        if img.format == "PNG" and _png_ihdr(path)[1] == PNG_GRAY_ALPHA and arr.ndim == 3:
                            arr = arr[:, :, [0, 3]]  # OpenCV expands grey + alpha to RGBA; keep it grey
                    else:
                        img.load()
                        arr = _pil_to_array(img)
    except ImageReadError:
        raise
    except Image.DecompressionBombError:
        raise ImageReadError(
            f"{path}: over the {max_pixels:,}-pixel limit, a possible decompression bomb (raise it with --max-pixels)"
        ) from None
    except UnidentifiedImageError:
        raise ImageReadError(f"{path}: not a recognised image file") from None
    except PermissionError:
        raise ImageReadError(f"{path}: permission denied") from None
    except MemoryError:
        raise ImageReadError(f"{path}: not enough memory to decode this image") from None
    except Exception as e:  # untrusted bytes: any decoder failure is reported, never raised raw
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ImageReadError(f"{path}: corrupt or truncated image ({reason})") from None

    try:
        if exif and ORIENTATION_TAG in exif:
            exif[ORIENTATION_TAG] = 1
        exif_bytes = exif.tobytes() if len(exif) else None
    except Exception:
        exif_bytes = None
        notes.append(f"{path}: unreadable EXIF block dropped")

    arr = apply_orientation(arr, orientation)
    if arr.ndim == 2:
        arr = arr[:, :, None]
    channels = arr.shape[2]
    if channels not in (1, 2, 3, 4):
        raise ImageReadError(f"{path}: {channels} channels are not supported")
    alpha = arr[:, :, -1].copy() if channels in (2, 4) else None
    color = arr[:, :, :-1] if alpha is not None else arr
    grayscale = color.shape[2] == 1
    if color.dtype.kind == "f":
        pixels = _float_to_unit(color)
        if alpha is not None:
            alpha = np.round(_float_to_unit(alpha) * 65535).astype(np.uint16)
        depth = 16
        notes.append(f"{path}: floating-point pixels clipped to [0, 1]; written as 16-bit")
    elif color.dtype in (np.uint8, np.uint16):
        pixels = color
        depth = 16 if color.dtype == np.uint16 else 8
    else:
        raise ImageReadError(f"{path}: {color.dtype} pixels are not supported")
    if grayscale:
        pixels = np.repeat(pixels, 3, axis=2)
    return LoadedImage(
        path=path,
        pixels=np.ascontiguousarray(pixels),
        bit_depth=depth,
        grayscale=grayscale,
        alpha=alpha,
        icc_profile=icc,
        exif=exif_bytes,
        format=fmt,
        notes=notes,
    )
