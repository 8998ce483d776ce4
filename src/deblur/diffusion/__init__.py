from .loss import dvsr_loss
from .samplers import SAMPLERS, StepInfo, ddim_sample, ddpm_sample, initial_state
from .schedule import NoiseSchedule, sample_training_levels, train_schedule

__all__ = [
    "SAMPLERS",
    "NoiseSchedule",
    "StepInfo",
    "ddim_sample",
    "ddpm_sample",
    "dvsr_loss",
    "initial_state",
    "sample_training_levels",
    "train_schedule",
]
