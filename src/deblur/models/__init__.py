from .config import ARCHITECTURES, DEFAULT_EMBED_SCALE, ModelConfig, UNetConfig, icdpm_config, tiny_config
from .dvsr import DvSR, build_model

__all__ = [
    "ARCHITECTURES",
    "DEFAULT_EMBED_SCALE",
    "DvSR",
    "ModelConfig",
    "UNetConfig",
    "build_model",
    "icdpm_config",
    "tiny_config",
]
