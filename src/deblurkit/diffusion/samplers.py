"""Reverse-diffusion samplers as plain functions over a noise schedule.

The model is reached only through `denoise(z_t, level) -> eps_hat` where
level = sqrt(alpha_bar_t) is a Python float; the caller closes over the conditioning
(and any tiling). Randomness comes from `noise(like)`, so the caller controls the
generators (one per sample) and results never depend on batch composition.

The chain starts from z_T ~ N(0, (1 - alpha_bar_T) I): the marginal of the diffused
residual when the residual's own spread is small compared with the noise. When
alpha_bar_T is ~0 this is Algorithm 1's N(0, I); when a short or low-ceiling schedule
leaves alpha_bar_T well above 0 it keeps the start consistent with what the denoiser
saw in training.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import torch

from .schedule import NoiseSchedule

DenoiseFn = Callable[[torch.Tensor, float], torch.Tensor]
NoiseFn = Callable[[torch.Tensor], torch.Tensor]


@dataclass
class StepInfo:
    index: int  # 0-based count of steps done, including this one
    total: int
    level: float  # sqrt(alpha_bar_t) of the step just taken
    x0: torch.Tensor  # the current estimate of the clean residual
    z: torch.Tensor  # z_{t-1}


StepCallback = Callable[[StepInfo], None]


def initial_state(schedule: NoiseSchedule, noise: torch.Tensor) -> torch.Tensor:
    """z_T from standard normal `noise`, scaled to N(0, (1 - alpha_bar_T) I)."""
    return noise * math.sqrt(1.0 - float(schedule.alpha_bars()[-1]))


def _x0_from_eps(z, eps, ab):
    return (z - math.sqrt(1.0 - ab) * eps) / math.sqrt(ab)


def ddpm_sample(
    denoise: DenoiseFn,
    schedule: NoiseSchedule,
    z: torch.Tensor,
    noise: NoiseFn,
    *,
    clip: Callable[[torch.Tensor], torch.Tensor] | None = None,
    callback: StepCallback | None = None,
) -> torch.Tensor:
    """Ancestral sampling (DDPM, DvSR Algorithm 1) from z = z_T down to z_0."""
    betas = schedule.betas()
    abars = schedule.alpha_bars()
    T = schedule.steps
    for n, i in enumerate(reversed(range(T))):
        ab, beta = float(abars[i]), float(betas[i])
        ab_prev = float(abars[i - 1]) if i > 0 else 1.0
        eps = denoise(z, math.sqrt(ab))
        x0 = _x0_from_eps(z, eps, ab)
        if clip is not None:
            x0 = clip(x0)
        if i > 0:
            # Posterior q(z_{t-1} | z_t, x0): mean c0*x0 + c1*z_t, variance beta*(1-ab_prev)/(1-ab).
            c0 = math.sqrt(ab_prev) * beta / (1.0 - ab)
            c1 = math.sqrt(1.0 - beta) * (1.0 - ab_prev) / (1.0 - ab)
            sigma = math.sqrt(beta * (1.0 - ab_prev) / (1.0 - ab))
            z = c0 * x0 + c1 * z + sigma * noise(z)
        else:
            z = x0
        if callback is not None:
            callback(StepInfo(n + 1, T, math.sqrt(ab), x0, z))
    return z


def ddim_sample(
    denoise: DenoiseFn,
    schedule: NoiseSchedule,
    z: torch.Tensor,
    noise: NoiseFn | None = None,
    *,
    clip: Callable[[torch.Tensor], torch.Tensor] | None = None,
    callback: StepCallback | None = None,
) -> torch.Tensor:
    """Deterministic DDIM (eta = 0): only z_T is random."""
    abars = schedule.alpha_bars()
    T = schedule.steps
    for n, i in enumerate(reversed(range(T))):
        ab = float(abars[i])
        ab_prev = float(abars[i - 1]) if i > 0 else 1.0
        eps = denoise(z, math.sqrt(ab))
        x0 = _x0_from_eps(z, eps, ab)
        if clip is not None:
            x0 = clip(x0)
            eps = (z - math.sqrt(ab) * x0) / math.sqrt(1.0 - ab)
        z = math.sqrt(ab_prev) * x0 + math.sqrt(1.0 - ab_prev) * eps if i > 0 else x0
        if callback is not None:
            callback(StepInfo(n + 1, T, math.sqrt(ab), x0, z))
    return z


SAMPLERS = {"ddpm": ddpm_sample, "ddim": ddim_sample}
