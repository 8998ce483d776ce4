from .config import (ARCHITECTURES, DEFAULT_EMBED_SCALE, DEFAULT_RESIDUAL_STD, OBJECTIVES, GuidanceConfig, ModelConfig, UNetConfig,
                     icdpm_config, msgd_config, tiny_config)
from .dvsr import DvSR
from .families import build_model, config_from_dict, config_from_json
from .hidiff import HIDiff, HIDiffConfig, tiny_hidiff_config

__all__ = [
    "ARCHITECTURES",
    "DEFAULT_EMBED_SCALE",
    "DEFAULT_RESIDUAL_STD",
    "OBJECTIVES",
    "DvSR",
    "GuidanceConfig",
    "ModelConfig",
    "UNetConfig",
    "build_model",
    "config_from_dict",
    "config_from_json",
    "HIDiff",
    "HIDiffConfig",
    "tiny_hidiff_config",
    "icdpm_config",
    "msgd_config",
    "tiny_config",
]
