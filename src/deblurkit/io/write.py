"""Encoding results and writing them atomically (temp file in place, then rename)."""

from __future__ import annotations

import glob
import io
import os
import re
import struct
import tempfile
import zlib
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from ..errors import ImageWriteError

FORMATS = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "tiff": "TIFF", "tif": "TIFF", "webp": "WEBP", "bmp": "BMP"}
SIXTEEN_BIT_FORMATS = {"PNG", "TIFF"}
ALPHA_FORMATS = {"PNG", "TIFF", "WEBP"}


def format_for(path: Path, explicit: str | None = None) -> str:
    key = (explicit or path.suffix.lstrip(".") or "png").lower()
    if key not in FORMATS:
        raise ImageWriteError(f"{path}: unsupported output format {key!r} (use one of {', '.join(sorted(set(FORMATS)))})")
    return FORMATS[key]


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png_gray_alpha_16(pix: np.ndarray) -> bytes:
    """A PNG of colour type 4 (grey + alpha) at 16 bits from (H, W, 2) uint16."""
    h, w = pix.shape[:2]
    rows = np.concatenate([np.zeros((h, 1), np.uint8), pix.astype(">u2").view(np.uint8).reshape(h, w * 4)], axis=1)
    ihdr = struct.pack(">IIBBBBB", w, h, 16, 4, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IDAT", zlib.compress(rows.tobytes(), 6))
            + _png_chunk(b"IEND", b""))


def _png_add_metadata(png: bytes, icc: bytes | None, exif: bytes | None) -> bytes:
    """Insert iCCP / eXIf chunks right after IHDR (OpenCV cannot write them)."""
    extra = b""
    if icc:
        extra += _png_chunk(b"iCCP", b"icc\x00\x00" + zlib.compress(icc))
    if exif:
        raw = exif[6:] if exif.startswith(b"Exif\x00\x00") else exif
        extra += _png_chunk(b"eXIf", raw)
    if not extra:
        return png
    ihdr_end = 8 + 8 + 13 + 4  # signature + (length, type) + IHDR data + CRC
    return png[:ihdr_end] + extra + png[ihdr_end:]


def _quantise(x: np.ndarray, depth: int) -> np.ndarray:
    """round(clip(x, 0, 1) * top) as uint8 / uint16, in bands of rows so that the float
    temporaries stay small next to a full-resolution photo."""
    top = 65535.0 if depth == 16 else 255.0
    out = np.empty(x.shape, np.uint16 if depth == 16 else np.uint8)
    band = max(1, (1 << 22) // max(1, x[0].size))  # ~4 M values (16 MB of float32) at a time
    for r in range(0, x.shape[0], band):
        out[r : r + band] = np.round(np.clip(x[r : r + band], 0.0, 1.0) * top)
    return out


def _match_depth(alpha: np.ndarray, depth: int) -> np.ndarray:
    if depth == 16 and alpha.dtype == np.uint8:
        return alpha.astype(np.uint16) * 257
    if depth == 8 and alpha.dtype == np.uint16:
        return np.round(alpha / 257.0).astype(np.uint8)
    return alpha


def encode_image(
    rgb: np.ndarray,
    fmt: str,
    *,
    bit_depth: int = 8,
    grayscale: bool = False,
    alpha: np.ndarray | None = None,
    icc_profile: bytes | None = None,
    exif: bytes | None = None,
    quality: int = 95,
) -> bytes:
    """Encode an (H, W, 3) float image in [0, 1] as `fmt` (a Pillow format name)."""
    depth = 16 if bit_depth == 16 and fmt in SIXTEEN_BIT_FORMATS else 8
    color = rgb.mean(axis=2, keepdims=True) if grayscale else rgb
    pix = _quantise(color, depth)
    if alpha is not None and fmt in ALPHA_FORMATS:
        pix = np.concatenate([pix, _match_depth(alpha, depth)[:, :, None]], axis=2)
    if pix.shape[2] == 1:
        pix = pix[:, :, 0]

    if depth == 16 and fmt == "PNG" and pix.ndim == 3 and pix.shape[2] == 2:
        # OpenCV writes 1, 3 or 4 channels only: 16-bit grey + alpha is encoded here.
        return _png_add_metadata(_png_gray_alpha_16(pix), icc_profile, exif)
    if depth == 16:
        if pix.ndim == 3:
            pix = cv2.cvtColor(pix, cv2.COLOR_RGBA2BGRA if pix.shape[2] == 4 else cv2.COLOR_RGB2BGR)
        ok, buf = cv2.imencode(".png" if fmt == "PNG" else ".tiff", pix)
        if not ok:
            raise ImageWriteError(f"OpenCV could not encode a 16-bit {fmt}")
        data = buf.tobytes()
        return _png_add_metadata(data, icc_profile, exif) if fmt == "PNG" else data

    img = Image.fromarray(pix)
    params: dict = {}
    if icc_profile:
        params["icc_profile"] = icc_profile
    if exif and fmt in ("JPEG", "PNG", "WEBP", "TIFF"):
        params["exif"] = exif
    if fmt in ("JPEG", "WEBP"):
        params["quality"] = quality
    if fmt == "JPEG":
        params["subsampling"] = 0 if quality >= 90 else 2
    out = io.BytesIO()
    img.save(out, format=fmt, **params)
    return out.getvalue()


def default_file_mode() -> int:
    """The mode a plain open() would give a new file (0666 minus the umask)."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def temp_prefix(path: Path) -> str:
    """Our temporaries carry the writer's PID, so a later run can tell abandoned ones
    (their process is gone: killed with -9, or the machine went down) from live ones."""
    return f".{path.name}.deblur-{os.getpid()}-"


_TEMP = re.compile(r"^\.(?P<name>.+)\.deblur-(?P<pid>\d+)-[^/]*\.tmp$")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Delete temporaries of our naming pattern for `path` whose writer no longer runs."""
    removed = []
    try:
        candidates = list(Path(path).parent.glob(f".{glob.escape(Path(path).name)}.deblur-*.tmp"))
    except OSError:
        return removed
    for tmp in candidates:
        m = _TEMP.match(tmp.name)
        if m and m["name"] == Path(path).name and not _alive(int(m["pid"])):
            try:
                tmp.unlink()
                removed.append(tmp)
            except OSError:
                pass
    return removed


def write_atomic(path: Path, data: bytes) -> None:
    """Write via a temporary file in the destination folder, then rename into place.

    An interrupted write leaves no file under the final name, so a resumed run never
    mistakes a partial output for a finished one.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_temporaries(path)
        fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path), suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise ImageWriteError(f"{path}: cannot write here ({e.strerror or e})") from None
    try:
        os.fchmod(fd, default_file_mode())  # mkstemp makes 0600; outputs get the usual permissions
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(e, OSError):
            raise ImageWriteError(f"{path}: write failed ({e.strerror or e})") from None
        raise
