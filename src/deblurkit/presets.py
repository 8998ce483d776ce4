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
    help: str  # what it does to the photo, in a photographer's words (run --help, the serve page)
    sampler: str = "ddpm"  # "ddim" is deterministic given the start noise
    noise_ceiling: float | None = None  # None: the 10 / T rule (also when --steps overrides)
    flips: int = 1  # samples cycle through this many mirror images of the input (1, 2, 4)
    # What it costs in PSNR against `fast`, as measured for the shipped model (README's
    # preset table says the same; tests/test_cli.py checks that the two agree).
    cost: str = ""

    @property
    def passes(self) -> int:
        """Network passes per photo (its time cost): the predictor once per mirror image a
        sample uses, and the refiner once per step of each sample."""
        if self.steps == 0:
            return 1
        return min(self.flips, self.samples) + self.steps * self.samples


PRESETS: dict[str, Preset] = {
    "fast": Preset(0, 1, False, "sharp edges, smooth surfaces, nothing invented"),
    "balanced": Preset(3, 1, False, "natural texture, ~0.3 dB less faithful than fast", cost="~0.3 dB"),
    "distortion": Preset(1, 8, True, "8 tries averaged: the most faithful, smooth",
                         noise_ceiling=0.999, flips=4),
    "perception": Preset(5, 1, False, "max detail and grain, may invent texture; ~0.6-0.9 dB", sampler="ddim",
                         cost="~0.6-0.9 dB"),
}
DEFAULT_PRESET = "balanced"


def default_noise_ceiling(steps: int) -> float:
    return min(0.9, 10.0 / max(1, steps))


@dataclass(frozen=True)
class Settings:
    """What a run will actually do: a preset with the caller's overrides applied."""

    preset: str
    steps: int
    samples: int
    average: bool
    noise_ceiling: float
    sampler: str
    flips: int = 1
    implied: bool = False  # the preset was chosen by the sampling options, not named
    overridden_by: tuple[str, ...] = ()  # the options that override the preset


def resolve_settings(
    preset: str | None,
    recommended: str = DEFAULT_PRESET,
    *,
    steps: int | None = None,
    samples: int | None = None,
    average: bool | None = None,
    noise_ceiling: float | None = None,
    sampler: str | None = None,
    flips: int | None = None,
    wants_samples: bool = False,
) -> Settings:
    """The one place where a preset and explicit options combine (CLI and Python API).

    `recommended` is the model's preset, used when none is named. When that is the
    predictor-only preset and the options ask for sampling (averaging, several samples,
    or `wants_samples`: a std map or a trajectory), the preset those options point to is
    taken instead of refusing them.
    """
    if preset is not None and preset not in PRESETS:
        raise ValueError(f"unknown preset {preset!r}: expected one of {', '.join(PRESETS)}")
    name = preset if preset is not None else recommended
    implied = False
    if preset is None and steps is None and PRESETS[name].steps == 0:
        if average or (samples or 1) > 1 or wants_samples:
            name, implied = ("distortion" if average else "balanced"), True
    p = PRESETS[name]
    n_steps = p.steps if steps is None else steps
    n_samples = (p.samples if n_steps > 0 else 1) if samples is None else samples
    avg = (p.average and n_samples > 1) if average is None else average
    if noise_ceiling is not None:
        ceiling = noise_ceiling
    elif steps is None and p.noise_ceiling is not None:
        ceiling = p.noise_ceiling  # tied to the preset's own step count
    else:
        ceiling = default_noise_ceiling(n_steps)
    overrides = tuple(flag for flag, value in (("--steps", steps), ("--noise-ceiling", noise_ceiling), ("--sampler", sampler),
                                              ("--samples", samples), ("--average" if average else "--no-average", average),
                                              ("--flips", flips))
                      if value is not None)
    n_flips = p.flips if flips is None else flips
    return Settings(name, n_steps, n_samples, avg, ceiling, p.sampler if sampler is None else sampler, n_flips, implied, overrides)


def check_settings(s: Settings, std: bool = False) -> None:
    """Refuse option combinations that cannot mean what the user asked for."""
    from .diffusion.schedule import BETA_START  # (torch-free callers never reach this)
    from .errors import UsageError

    if s.steps < 0:
        raise UsageError(f"--steps {s.steps}: must be >= 0 (0 = initial predictor only)")
    if s.samples < 1:
        raise UsageError(f"--samples {s.samples}: must be >= 1")
    if not BETA_START <= s.noise_ceiling < 1.0:
        # The schedule's betas rise from BETA_START to the ceiling, so it cannot be lower.
        raise UsageError(f"--noise-ceiling {s.noise_ceiling:g}: must be in [{BETA_START:g}, 1)")
    if s.sampler not in ("ddpm", "ddim"):
        raise UsageError(f"--sampler {s.sampler}: expected ddpm or ddim")
    if s.flips not in (1, 2, 4):
        raise UsageError(f"--flips {s.flips}: expected 1, 2 or 4 (none, left-right, left-right and up-down)")
    if s.average and s.samples < 2:
        raise UsageError("--average needs --samples 2 or more (the mean of one sample is that sample)")
    if std and s.samples < 2:
        raise UsageError("--std needs --samples 2 or more (a standard deviation over one sample is zero)")
    if s.steps == 0 and s.samples > 1:
        raise UsageError("--samples > 1 needs --steps > 0: the initial predictor alone is deterministic")
