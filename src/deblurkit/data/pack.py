"""One packed training-data file: every training image in a single safetensors file.

A GPU machine gets only the working tree, so the data travels as one git-ignored file
of a few tens of MB. Images are stored encoded (JPEG at a chosen quality, optionally
downscaled), each as a uint8 byte tensor; the metadata lists the sources, their kind
(sharp photos for synthetic blur, or real blur/sharp pairs) and their mixing weights.
Loading decodes everything once into memory, as the folder sources do.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from ..errors import ImageReadError, UsageError
from .blur import BlurConfig
from .datasets import PairedFolder, SharpFolder

PACK_KEY = "deblur.pack"
PACK_VERSION = 1


def _encode(img: np.ndarray, quality: int, max_side: int | None) -> torch.Tensor:
    h, w = img.shape[:2]
    if max_side and max(h, w) > max_side:
        s = max_side / max(h, w)
        img = cv2.resize(img, (round(w * s), round(h * s)), interpolation=cv2.INTER_AREA)
    ok, buf = cv2.imencode(".jpg", np.ascontiguousarray(img[:, :, ::-1]), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ImageReadError("could not encode an image for the pack")
    return torch.from_numpy(buf.reshape(-1).copy())


def _decode(t: torch.Tensor, name: str) -> np.ndarray:
    img = cv2.imdecode(t.numpy(), cv2.IMREAD_COLOR)
    if img is None:
        raise ImageReadError(f"{name}: corrupt image in the training pack")
    return np.ascontiguousarray(img[:, :, ::-1])


def write_pack(out: Path, sources: list[tuple[str, str, float]], quality: int = 92, pair_quality: int = 97,
               max_side: int | None = None, crop: int = 16) -> dict:
    """Pack (path, kind, weight) sources into `out`; returns the metadata written.

    Sharp photos are re-encoded at `quality` (downscaled to `max_side` if given, which
    also makes them sharper); real pairs keep full resolution at `pair_quality`, so the
    real blur is not resampled.
    """
    tensors, meta = {}, []
    for i, (path, kind, weight) in enumerate(sources):
        if kind == "sharp":
            images = SharpFolder(path, crop).images
            for j, img in enumerate(images):
                tensors[f"{i}/{j}"] = _encode(img, quality, max_side)
            count = len(images)
        elif kind == "pairs":
            pairs = PairedFolder(path, crop).pairs
            for j, (sharp, blurry) in enumerate(pairs):
                tensors[f"{i}/{j}/sharp"] = _encode(sharp, pair_quality, None)
                tensors[f"{i}/{j}/blur"] = _encode(blurry, pair_quality, None)
            count = len(pairs)
        else:
            raise UsageError(f"unknown data kind {kind!r}")
        meta.append({"path": str(path), "kind": kind, "weight": weight, "count": count})
    info = {"version": PACK_VERSION, "sources": meta, "quality": quality, "pair_quality": pair_quality,
            "max_side": max_side}
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{__import__('os').getpid()}.tmp")
    try:
        save_file(tensors, str(tmp), metadata={PACK_KEY: json.dumps(info)})
        tmp.replace(out)
    finally:
        tmp.unlink(missing_ok=True)
    return info


def read_pack(path: Path, crop: int, limit: int | None = None, blur: BlurConfig = BlurConfig()) -> list[tuple[SharpFolder | PairedFolder, float, str]]:
    """The pack's sources as in-memory datasets: (dataset, weight, note) each."""
    try:
        with safe_open(str(path), framework="pt") as f:
            info = json.loads((f.metadata() or {})[PACK_KEY])
            if info.get("version") != PACK_VERSION:
                raise ValueError(f"pack version {info.get('version')!r}, expected {PACK_VERSION}")
            out = []
            for i, src in enumerate(info["sources"]):
                n = min(int(src["count"]), limit or int(src["count"]))
                name = f"{path}: {src['path']}"
                if src["kind"] == "sharp":
                    ds = SharpFolder.from_arrays([_decode(f.get_tensor(f"{i}/{j}"), name) for j in range(n)], crop, name, blur)
                    note = f"{name}: {len(ds)} sharp images (synthetic blur), {ds.skipped} skipped"
                else:
                    pairs = [(_decode(f.get_tensor(f"{i}/{j}/sharp"), name), _decode(f.get_tensor(f"{i}/{j}/blur"), name))
                             for j in range(n)]
                    ds = PairedFolder.from_arrays(pairs, crop, name)
                    note = f"{name}: {len(ds)} real pairs, {ds.skipped} skipped"
                out.append((ds, float(src["weight"]), note))
            return out
    except (SafetensorError, OSError, KeyError, ValueError, TypeError) as e:
        raise ImageReadError(f"{path}: not a readable training pack ({e})") from None
