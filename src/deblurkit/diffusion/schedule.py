"""Noise schedules over the continuous noise level sqrt(alpha_bar) (WaveGrad / SR3).

Definition used everywhere (training and inference):
    beta_t = beta_start + (beta_end - beta_start) * (t - 1) / (T - 1),  t = 1..T
             (for T = 1: beta_1 = beta_end)
    alpha_t = 1 - beta_t,  alpha_bar_t = prod_{s<=t} alpha_s,  alpha_bar_0 = 1.
The network only ever sees the scalar sqrt(alpha_bar), so a model trained on one fine
schedule can be sampled with any (T, beta_end) at run time without retraining.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
import torch

BETA_START = 1e-6

# Training schedule of SR3/WaveGrad: fine enough that the uniform draw between two
# neighbouring levels covers the whole (0, 1) range of sqrt(alpha_bar) densely.
DEFAULT_TRAIN_STEPS = 2000
DEFAULT_TRAIN_BETA_END = 1e-2


@dataclass(frozen=True)
class NoiseSchedule:
    steps: int
    beta_end: float
    beta_start: float = BETA_START

    def __post_init__(self):
        if self.steps < 1:
            raise ValueError(f"a schedule needs at least 1 step, got {self.steps}")
        if not (0.0 < self.beta_end < 1.0):
            raise ValueError(f"beta_end (noise ceiling) must be in (0, 1), got {self.beta_end}")
        if not (0.0 < self.beta_start <= self.beta_end):
            raise ValueError(f"beta_start must be in (0, beta_end], got {self.beta_start}")

    def betas(self) -> np.ndarray:
        if self.steps == 1:
            return np.array([self.beta_end], dtype=np.float64)
        return np.linspace(self.beta_start, self.beta_end, self.steps, dtype=np.float64)

    def alpha_bars(self) -> np.ndarray:
        """alpha_bar_1..alpha_bar_T (float64)."""
        return np.cumprod(1.0 - self.betas())

    def levels(self) -> np.ndarray:
        """sqrt(alpha_bar) at t = 0..T (index 0 is the clean level 1.0)."""
        return np.sqrt(np.concatenate([[1.0], self.alpha_bars()]))

    def to_dict(self) -> dict:
        return {"kind": "linear", **asdict(self)}

    @classmethod
    def from_dict(cls, d: dict) -> "NoiseSchedule":
        if d.get("kind", "linear") != "linear":
            raise ValueError(f"unknown schedule kind {d.get('kind')!r}")
        return cls(steps=int(d["steps"]), beta_end=float(d["beta_end"]), beta_start=float(d["beta_start"]))


def train_schedule() -> NoiseSchedule:
    return NoiseSchedule(DEFAULT_TRAIN_STEPS, DEFAULT_TRAIN_BETA_END)


def sample_training_levels(
    schedule: NoiseSchedule, n: int, generator: torch.Generator | None = None, device=None
) -> torch.Tensor:
    """Continuous levels for training: pick t ~ U{1..T}, then sqrt(alpha_bar) ~ U(level_t, level_{t-1})."""
    gdev = generator.device if generator is not None else torch.device("cpu")
    levels = torch.from_numpy(schedule.levels()).float().to(gdev)
    t = torch.randint(1, schedule.steps + 1, (n,), generator=generator, device=gdev)
    u = torch.rand(n, generator=generator, device=gdev)
    lo, hi = levels[t], levels[t - 1]
    out = lo + u * (hi - lo)
    return out.to(device) if device is not None else out
