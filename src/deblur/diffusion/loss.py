"""The DvSR training objective (Eq. 6).

    L = E || eps - f( sqrt(ab) * (x0 - g(y)) + sqrt(1 - ab) * eps, sqrt(ab), y ) ||_1

The residual x0 - g(y) is diffused, and the predictor g is trained only through this
loss: its gradient flows through the residual into g (no separate predictor loss).
For icDPM, g(y) = 0 and this is Eq. 5.
"""

from __future__ import annotations

import torch

from ..models import DvSR
from .schedule import NoiseSchedule, sample_training_levels


def dvsr_loss(
    model: DvSR,
    x0: torch.Tensor,
    y: torch.Tensor,
    schedule: NoiseSchedule,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Mean L1 noise-prediction error on a batch of (sharp x0, blurry y) in [-1, 1]."""
    n = x0.shape[0]
    gen_device = generator.device if generator is not None else x0.device
    level = sample_training_levels(schedule, n, generator).to(x0.device)
    eps = torch.randn(x0.shape, generator=generator, device=gen_device).to(x0.device)
    residual = x0 - model.predict(y)
    lv = level.view(n, 1, 1, 1)
    z = lv * residual + torch.sqrt(1.0 - lv**2) * eps
    return (eps - model.denoise(z, level, y)).abs().mean()
