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


def random_tiny_model(arch: str = "dvsr", seed: int = 0, scale: float = 0.05):
    """A tiny model whose zero-initialised layers are randomised too, so it does something."""
    torch.manual_seed(seed)
    model = build_model(tiny_config(arch))
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
