"""Named points on the perception-distortion curve, and the default noise ceiling.

Presets only set step count, sample count and averaging; explicit flags override them.
The noise ceiling B (the last beta of the linear schedule) defaults to 10 / T capped at
0.9, which keeps sum(beta) ~ 5: for T >= 50, alpha_bar_T ~ e^-5; fewer, larger steps end
lower (e^-7.9 at T = 10, e^-6.2 at T = 20) except where the cap binds (e^-4.3 at T = 5,
0.1 at T <= 2). The chain starts from (almost) pure noise and T moves along the curve.
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


PRESETS: dict[str, Preset] = {
    "fast": Preset(0, 1, False, "initial predictor only: one network pass, lowest cost, smooth result"),
    "balanced": Preset(20, 1, False, "default: 20 ancestral steps, one sample; minutes for 12 MP on a laptop CPU"),
    "distortion": Preset(10, 8, True, "10 steps, 8 samples averaged (approximate MMSE): highest PSNR/SSIM"),
    "perception": Preset(200, 1, False, "200 steps, one sample: the crispest, most realistic detail"),
}
DEFAULT_PRESET = "balanced"


def default_noise_ceiling(steps: int) -> float:
    return min(0.9, 10.0 / max(1, steps))
