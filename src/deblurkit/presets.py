"""Named points on the perception-distortion curve, and the default noise ceiling.

Presets set the step count, sample count, averaging, sampler and (where it matters) the
noise ceiling; explicit flags override them. They were chosen by measurement on the
bundled model (`deblur bench`, the model card). The noise ceiling B (the last beta of the
linear schedule) defaults to 10 / T capped at 0.9, which keeps sum(beta) ~ 5: for T >= 50,
alpha_bar_T ~ e^-5; fewer, larger steps end lower (e^-7.9 at T = 10, e^-6.2 at T = 20)
except where the cap binds (e^-4.3 at T = 5, 0.1 at T <= 2).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    steps: int
    samples: int
    average: bool
    help: str
    sampler: str = "ddpm"  # "ddim" is deterministic given the start noise
    noise_ceiling: float | None = None  # None: the 10 / T rule (also when --steps overrides)


PRESETS: dict[str, Preset] = {
    "fast": Preset(0, 1, False, "the predictor alone: one network pass, highest PSNR, smooth"),
    "balanced": Preset(3, 1, False, "3 ancestral steps: more natural texture for ~0.3 dB PSNR"),
    "distortion": Preset(1, 8, True, "8 one-step samples from pure noise, averaged (MMSE)", noise_ceiling=0.999),
    "perception": Preset(5, 1, False, "5 DDIM steps: the most natural texture, ~1 dB PSNR", sampler="ddim"),
}
DEFAULT_PRESET = "balanced"


def default_noise_ceiling(steps: int) -> float:
    return min(0.9, 10.0 / max(1, steps))
