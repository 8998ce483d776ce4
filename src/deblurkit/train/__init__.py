from .config import DataSpec, TrainConfig, model_size
from .loop import NonFiniteLoss, TrainResult, train

__all__ = ["DataSpec", "NonFiniteLoss", "TrainConfig", "TrainResult", "model_size", "train"]
