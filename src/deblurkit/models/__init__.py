from .config import ARCHITECTURES, DEFAULT_EMBED_SCALE, DEFAULT_RESIDUAL_STD, ModelConfig, UNetConfig, icdpm_config, tiny_config
from .dvsr import DvSR, build_model

__all__ = [
    "ARCHITECTURES",
    "DEFAULT_EMBED_SCALE",
    "DEFAULT_RESIDUAL_STD",
    "DvSR",
    "ModelConfig",
    "UNetConfig",
    "build_model",
    "icdpm_config",
    "tiny_config",
]
