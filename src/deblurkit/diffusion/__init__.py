from .loss import PHASES, dvsr_loss, guidance_ramp, predictor_loss, sample_edm_sigmas, training_loss
from .samplers import SAMPLERS, StepInfo, ddim_sample, ddpm_sample, initial_state
from .schedule import NoiseSchedule, sample_training_levels, train_schedule

__all__ = [
    "SAMPLERS",
    "NoiseSchedule",
    "StepInfo",
    "ddim_sample",
    "ddpm_sample",
    "PHASES",
    "dvsr_loss",
    "guidance_ramp",
    "predictor_loss",
    "sample_edm_sigmas",
    "training_loss",
    "initial_state",
    "sample_training_levels",
    "train_schedule",
]
