"""In-memory images for the Python API: numpy arrays, PIL images and torch tensors in,
the same kind (dtype, layout, range, mode, device) out.

Accepted:
- numpy (H, W), (H, W, 1), (H, W, 3) or (H, W, 4); uint8, uint16 or float (range [0, 1]);
- PIL images in modes L, LA, RGB, RGBA, I;16 (16-bit grey; mode I within 16 bits comes
  back as I;16) and F (floats in [0, 1]); other modes are converted to RGB (or RGBA when
  they carry transparency, premultiplied La / RGBa included) and come back in their own
  mode where Pillow converts back, else in the converted one; a mode Pillow cannot
  convert is refused with one line;
- torch tensors (C, H, W) or (1, C, H, W) with C in 1, 3, 4; uint8 or float ([0, 1]).

Grey images are restored as RGB and returned as the mean of the channels (as the file
writer does); an alpha channel passes through unchanged.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

from ..errors import UsageError

_FLOAT_SLACK = 1e-3  # float inputs may overshoot [0, 1] by rounding, not by a scale


@dataclass
class Unpacked:
    rgb: torch.Tensor  # (1, 3, H, W) float32 in [0, 1], on the CPU
    repack: Callable[[torch.Tensor], Any]  # (3, H, W) float in [0, 1] -> the caller's kind


def _scale(dtype: np.dtype) -> float | None:
    if dtype == np.uint8:
        return 255.0
    if dtype == np.uint16:
        return 65535.0
    if np.issubdtype(dtype, np.floating):
        return None
    raise UsageError(f"image dtype {dtype}: expected uint8, uint16 or a float type")


def _unpack_hwc(a: np.ndarray, what: str) -> tuple[np.ndarray, np.ndarray | None, bool]:
    """(H, W, C) or (H, W) -> float32 RGB (H, W, 3), alpha in the source dtype, grey flag."""
    if a.ndim == 2:
        a = a[:, :, None]
    if a.ndim != 3 or a.shape[2] not in (1, 2, 3, 4):
        raise UsageError(f"{what} of shape {tuple(a.shape)}: expected (H, W), (H, W, 1), (H, W, 3) or (H, W, 4)")
    if a.shape[0] < 1 or a.shape[1] < 1:
        raise UsageError(f"{what} of shape {tuple(a.shape)}: empty image")
    scale = _scale(a.dtype)
    c = a.shape[2]
    colour, alpha = (a[:, :, :-1], a[:, :, -1].copy()) if c in (2, 4) else (a, None)
    x = colour.astype(np.float32)
    if scale is None:
        if not np.isfinite(x).all():
            raise UsageError(f"{what}: contains NaN or infinite values")
        lo, hi = float(x.min()), float(x.max())
        if lo < -_FLOAT_SLACK or hi > 1.0 + _FLOAT_SLACK:
            raise UsageError(f"{what}: float values span [{lo:g}, {hi:g}]; expected [0, 1]")
        x = np.clip(x, 0.0, 1.0)
    else:
        x = x / scale
    grey = x.shape[2] == 1
    if grey:
        x = np.repeat(x, 3, axis=2)
    return x, alpha, grey


def _pack_hwc(rgb: np.ndarray, dtype: np.dtype, alpha: np.ndarray | None, grey: bool, channel_axis: bool) -> np.ndarray:
    colour = rgb.mean(axis=2, keepdims=True) if grey else rgb
    scale = _scale(dtype)
    if scale is None:
        out = colour.astype(dtype)
    else:
        out = np.round(np.clip(colour, 0.0, 1.0) * scale).astype(dtype)
    if alpha is not None:
        out = np.concatenate([out, alpha[:, :, None].astype(dtype)], axis=2)
    if not channel_axis:
        out = out[:, :, 0]
    return out


def _from_numpy(a: np.ndarray) -> Unpacked:
    rgb, alpha, grey = _unpack_hwc(a, "numpy image")
    dtype, channel_axis = a.dtype, a.ndim == 3

    def repack(x: torch.Tensor) -> np.ndarray:
        return _pack_hwc(x.permute(1, 2, 0).float().cpu().numpy(), dtype, alpha, grey, channel_axis)

    return Unpacked(torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1)[None], repack)


PIL_MODES = "L, LA, RGB, RGBA, I;16, I (within 16 bits), F (floats in [0, 1]), or a mode Pillow converts to RGB(A)"


def _from_pil(img) -> Unpacked:
    from PIL import Image

    mode = original = img.mode
    if mode == "F":
        a = np.asarray(img, dtype=np.float32)
        try:
            inner = _from_numpy(a)
        except UsageError as e:
            raise UsageError(f"PIL image of mode F: {str(e).split(': ', 1)[-1]}; accepted: {PIL_MODES}") from None
        return Unpacked(inner.rgb, lambda x: Image.fromarray(inner.repack(x).astype(np.float32), mode="F"))
    if mode in ("I;16", "I;16L", "I;16B", "I"):
        a = np.asarray(img)
        if mode == "I" and (a.min() < 0 or a.max() > 65535):
            raise UsageError("PIL image of mode I with values outside 0..65535")
        a = a.astype(np.uint16)
        back = "I;16"
    elif mode in ("L", "LA", "RGB", "RGBA"):
        a, back = np.asarray(img), mode
    else:
        # Premultiplied modes (La, RGBa) carry alpha too: a case-sensitive test lost it.
        back = {"La": "LA", "RGBa": "RGBA"}.get(mode) or ("RGBA" if ("A" in mode.upper() or "transparency" in img.info) else "RGB")
        try:
            a = np.asarray(img.convert(back))
        except (ValueError, OSError) as e:
            raise UsageError(f"PIL image of mode {mode}: cannot be converted to {back} ({e}); accepted: {PIL_MODES}") from None
        mode = back
    inner = _from_numpy(a)

    def repack(x: torch.Tensor):
        out = inner.repack(x)  # uint8 (H, W[, 2|3|4]) or uint16 (H, W): Pillow infers the mode
        result = Image.fromarray(out.astype("<u2") if back == "I;16" else out)
        if original != result.mode and original not in ("I", "I;16L", "I;16B", "P", "1", "PA"):
            try:
                return result.convert(original)  # the caller's mode (RGBa, La, CMYK, ...)
            except ValueError:
                pass
        return result

    return Unpacked(inner.rgb, repack)


def _from_torch(t: torch.Tensor) -> Unpacked:
    batched = t.ndim == 4
    if batched and t.shape[0] != 1:
        raise UsageError(f"tensor of shape {tuple(t.shape)}: one image at a time (batch of 1)")
    chw = t[0] if batched else t
    if chw.ndim != 3 or chw.shape[0] not in (1, 3, 4):
        raise UsageError(f"tensor of shape {tuple(t.shape)}: expected (C, H, W) or (1, C, H, W), C in 1, 3, 4")
    if t.device.type == "meta":
        raise UsageError(f"tensor on the meta device: it holds no data; pass a tensor on the CPU or a GPU")
    if t.dtype not in (torch.uint8, torch.float16, torch.bfloat16, torch.float32, torch.float64):
        raise UsageError(f"tensor dtype {t.dtype}: expected uint8 or a float type")
    hwc = chw.detach().permute(1, 2, 0).cpu()
    a = hwc.numpy() if t.dtype not in (torch.float16, torch.bfloat16) else hwc.float().numpy()
    inner = _from_numpy(a)
    dtype, device = t.dtype, t.device

    def repack(x: torch.Tensor) -> torch.Tensor:
        out = inner.repack(x)  # uint8 or float32 (H, W, C)
        chw_out = torch.from_numpy(np.ascontiguousarray(out)).permute(2, 0, 1).to(device=device, dtype=dtype)
        return chw_out[None] if batched else chw_out

    return Unpacked(inner.rgb, repack)


def unpack_image(image) -> Unpacked:
    """The API's input, as a float RGB batch of one and a way back to the input's kind."""
    if isinstance(image, np.ndarray):
        return _from_numpy(image)
    if isinstance(image, torch.Tensor):
        return _from_torch(image)
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover (pillow is a dependency)
        Image = None
    if Image is not None and isinstance(image, Image.Image):
        return _from_pil(image)
    raise UsageError(f"image of type {type(image).__name__}: expected a numpy array, a PIL image or a torch tensor")
