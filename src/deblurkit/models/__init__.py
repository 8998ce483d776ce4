from .config import (ARCHITECTURES, DEFAULT_EMBED_SCALE, DEFAULT_RESIDUAL_STD, GuidanceConfig, ModelConfig, UNetConfig,
                     icdpm_config, msgd_config, tiny_config)
from .dvsr import DvSR, build_model

__all__ = [
    "ARCHITECTURES",
    "DEFAULT_EMBED_SCALE",
    "DEFAULT_RESIDUAL_STD",
    "DvSR",
    "GuidanceConfig",
    "ModelConfig",
    "UNetConfig",
    "build_model",
    "icdpm_config",
    "msgd_config",
    "tiny_config",
]
