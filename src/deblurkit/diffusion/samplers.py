"""Reverse-diffusion samplers as plain functions over a noise schedule.

The model is reached only through `denoise(z_t, level) -> eps_hat` where
level = sqrt(alpha_bar_t) is a Python float; the caller closes over the conditioning
(and any tiling). Randomness comes from `noise(buffer)`, so the caller controls the
generators (one per sample) and results never depend on batch composition.

Memory: a full-resolution photo makes every state tensor large, so the samplers work in
place. `denoise` must return a new tensor (not a view of z_t), which the sampler turns
into the x0 estimate in place; `noise(buffer)` returns standard normal draws shaped like
`buffer` and may fill and return `buffer` itself; `z` is updated in place. Each in-place
update performs exactly the operations of the textbook expression it replaces, in an
order that rounds identically, so the results are the same bits.

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
    """Reported once per step, as soon as its x0 estimate is known (before z moves on).

    `x0` is the sampler's working buffer: valid during the callback only; copy to keep.
    """

    index: int  # 1-based count of steps done, including this one
    total: int
    level: float  # sqrt(alpha_bar_t) of the step being taken
    x0: torch.Tensor  # the current estimate of the clean residual


StepCallback = Callable[[StepInfo], None]


def initial_state(schedule: NoiseSchedule, noise: torch.Tensor) -> torch.Tensor:
    """z_T from standard normal `noise`, scaled in place to N(0, (1 - alpha_bar_T) I)."""
    return noise.mul_(math.sqrt(1.0 - float(schedule.alpha_bars()[-1])))


def _x0_from_eps_(z, eps, ab):
    """(z - sqrt(1 - ab) * eps) / sqrt(ab), computed in eps's buffer."""
    return eps.mul_(math.sqrt(1.0 - ab)).neg_().add_(z).div_(math.sqrt(ab))


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
        x0 = _x0_from_eps_(z, denoise(z, math.sqrt(ab)), ab)
        if clip is not None:
            x0 = clip(x0)
        if callback is not None:
            callback(StepInfo(n + 1, T, math.sqrt(ab), x0))
        if i == 0:
            return x0
        # Posterior q(z_{t-1} | z_t, x0): mean c0*x0 + c1*z_t, variance beta*(1-ab_prev)/(1-ab),
        # i.e. z = c0 * x0 + c1 * z + sigma * noise, with x0's buffer reused for the noise.
        c0 = math.sqrt(ab_prev) * beta / (1.0 - ab)
        c1 = math.sqrt(1.0 - beta) * (1.0 - ab_prev) / (1.0 - ab)
        sigma = math.sqrt(beta * (1.0 - ab_prev) / (1.0 - ab))
        z.mul_(c1).add_(x0.mul_(c0))
        z.add_(noise(x0).mul_(sigma))
        del x0  # free before the next denoise allocates its output
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
        x0 = _x0_from_eps_(z, eps.clone(), ab)
        if clip is not None:
            x0 = clip(x0)
            # eps = (z - sqrt(ab) * x0) / sqrt(1 - ab), consistent with the clipped x0
            eps.copy_(x0).mul_(math.sqrt(ab)).neg_().add_(z).div_(math.sqrt(1.0 - ab))
        if callback is not None:
            callback(StepInfo(n + 1, T, math.sqrt(ab), x0))
        if i == 0:
            return x0
        # z = sqrt(ab_prev) * x0 + sqrt(1 - ab_prev) * eps
        z.copy_(x0).mul_(math.sqrt(ab_prev)).add_(eps.mul_(math.sqrt(1.0 - ab_prev)))
        del eps, x0
    return z


SAMPLERS = {"ddpm": ddpm_sample, "ddim": ddim_sample}
