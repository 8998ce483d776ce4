"""Shared fixtures: tiny random-initialised models and small synthetic images."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch

from deblurkit.models import build_model, tiny_config
from deblurkit.weights import save_checkpoint

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
FIXTURES = Path(__file__).resolve().parent / "fixtures"

torch.set_num_threads(min(2, os.cpu_count() or 1))


def random_tiny_model(arch: str = "dvsr", seed: int = 0, scale: float = 0.05, refined: bool | str = False):
    """A tiny model whose zero-initialised layers are randomised too, so it does something."""
    torch.manual_seed(seed)
    model = build_model(tiny_config(arch, refined=refined))
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * scale)
    return model.eval()


@pytest.fixture
def tiny_model():
    return random_tiny_model()


@pytest.fixture
def tiny_weights(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("weights") / "tiny.safetensors"
    save_checkpoint(random_tiny_model(), path)
    return path


def smooth_image(h: int, w: int, seed: int = 0) -> np.ndarray:
    """A natural-ish test picture: upsampled noise, (h, w, 3) float32 in [0, 1]."""
    import cv2

    rng = np.random.default_rng(seed)
    small = rng.random((max(2, h // 8), max(2, w // 8), 3)).astype(np.float32)
    return np.clip(cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC), 0, 1)


def save_photo(path: Path, h: int, w: int, seed: int = 0) -> Path:
    """Write smooth_image(h, w, seed) as an 8-bit PNG (parent folders created)."""
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.round(smooth_image(h, w, seed) * 255).astype(np.uint8)).save(path)
    return path


@pytest.fixture
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not present at {SHARED_DATA}")
    return SHARED_DATA


def make_clip(path: Path, frames: int = 6, h: int = 48, w: int = 64, rate=None, audio: bool = True,
              repeat: bool = False, pts_ms: list[int] | None = None) -> list[np.ndarray]:
    """A small H.264 clip (smooth moving pictures), optionally with an AAC tone (needs PyAV).
    `pts_ms`: each frame's time stamp in milliseconds (a variable frame rate)."""
    import av
    from fractions import Fraction
    rate = rate or Fraction(25)
    images = []
    with av.open(str(path), "w") as c:
        v = c.add_stream("libx264", rate=rate)
        v.width, v.height = w, h
        v.pix_fmt = "yuv420p" if w % 2 == 0 and h % 2 == 0 else "yuv444p"
        v.options = {"crf": "10"}
        if pts_ms is not None:
            v.codec_context.time_base = Fraction(1, 1000)
        a = c.add_stream("aac", rate=16000) if audio else None
        for i in range(frames):
            rgb = np.round(smooth_image(h, w, 0 if repeat else i) * 255).astype(np.uint8)
            images.append(rgb)
            f = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            f.pts, f.time_base = (i, 1 / rate) if pts_ms is None else (pts_ms[i], Fraction(1, 1000))
            for p in v.encode(f):
                c.mux(p)
        for p in v.encode():
            c.mux(p)
        if a is not None:
            t = 0
            for _ in range(8):
                tone = (0.2 * np.sin(2 * np.pi * 440 * (np.arange(1024) + t) / 16000)).astype(np.float32)[None]
                af = av.AudioFrame.from_ndarray(tone, format="flt", layout="mono")
                af.sample_rate, af.pts = 16000, t
                t += 1024
                for p in a.encode(af):
                    c.mux(p)
            for p in a.encode():
                c.mux(p)
    return images
