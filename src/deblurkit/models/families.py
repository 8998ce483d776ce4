"""Every model family behind one door: a checkpoint's config names its architecture, and
this picks the config class that reads it and the network that config builds.

  dvsr, icdpm, msgd   ModelConfig  -> DvSR   (pixel-space diffusion of a residual)
  hidiff              HIDiffConfig -> HIDiff (regression transformer + latent diffusion prior)
"""

from __future__ import annotations

import json

from torch import nn

from .config import ModelConfig
from .dvsr import DvSR
from .hidiff import HIDiff, HIDiffConfig

AnyConfig = ModelConfig | HIDiffConfig


def config_from_dict(d: dict) -> AnyConfig:
    if not isinstance(d, dict):
        raise TypeError(f"the model config must be an object, not {type(d).__name__}")
    return HIDiffConfig.from_dict(d) if d.get("arch") == "hidiff" else ModelConfig.from_dict(d)


def config_from_json(text: str) -> AnyConfig:
    return config_from_dict(json.loads(text))


def build_model(config: AnyConfig) -> nn.Module:
    if isinstance(config, HIDiffConfig):
        return HIDiff(config)
    return DvSR(config)
