"""The DvSR training objective (Eq. 6), with an optional direct loss on the predictor.

    L = E || eps - f( sqrt(ab) * (x0 - g(y)) + sqrt(1 - ab) * eps, sqrt(ab), y ) ||_1

The residual x0 - g(y) is diffused, and the predictor g is trained only through this
loss: its gradient flows through the residual into g (no separate predictor loss).
For icDPM, g(y) = 0 and this is Eq. 5.

Why the optional `predictor_weight` term: the denoiser is conditioned on y, so it can
absorb any function of y that g adds; Eq. 6 alone therefore barely constrains g, and in
short trainings g drifts far from the image (measured here: predictor PSNR 8.7 dB against
21.4 dB for the blurry input after 500 steps). A small L1 pull of g(y) towards x0 keeps
the initial prediction a real deblurred image, the role DvSR's Fig. 3 shows it playing.
With predictor_weight = 0 this is exactly Eq. 6.
"""

from __future__ import annotations

import math

import torch

from ..models.dvsr import EDM_SIGMA_MAX, EDM_SIGMA_MIN
from ..models.guidance import regression_loss
from .schedule import NoiseSchedule, sample_training_levels


def dvsr_loss(
    model: torch.nn.Module,  # a DvSR, possibly wrapped (DDP)
    x0: torch.Tensor,
    y: torch.Tensor,
    schedule: NoiseSchedule,
    generator: torch.Generator | None = None,
    predictor_weight: float = 0.0,
    guidance_scales: tuple[int, ...] | None = None,
    denoise_weight: float = 1.0,
) -> torch.Tensor:
    """Mean L1 noise-prediction error on a batch of (sharp x0, blurry y) in [-1, 1].

    The model's forward diffuses the residual x0 - g(y); see `DvSR.forward`. A guided
    model adds the regression loss of its structure guidance (MSGD: L = w L_denoise +
    L_regression, w ramped from 0 to 1 at the start of training).
    """
    n = x0.shape[0]
    gen_device = generator.device if generator is not None else x0.device
    level = sample_training_levels(schedule, n, generator).to(x0.device)
    eps = torch.randn(x0.shape, generator=generator, device=gen_device).to(x0.device)
    gnoise = _guidance_noise(x0, generator) if guidance_scales else None
    eps_hat, _target, x_init, guidance = model(x0, y, level, eps, gnoise)
    loss = denoise_weight * (eps - eps_hat).abs().mean()
    if predictor_weight > 0:
        loss = loss + predictor_weight * (x_init - x0).abs().mean()
    if guidance is not None:
        loss = loss + regression_loss(guidance, x0, guidance_scales)
    return loss


def _guidance_noise(x0: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """The standard normal draw behind the guidance input's training noise (one grey plane).

    Drawn only for guided models, so unguided runs keep their random streams."""
    gen_device = generator.device if generator is not None else x0.device
    shape = (x0.shape[0], 1, *x0.shape[-2:])
    return torch.randn(shape, generator=generator, device=gen_device).to(x0.device)



# Training phases: what one step trains. "joint" trains both networks (with the "edm"
# objective the predictor learns only from its own loss, as the denoiser sees a detached
# g(y)); "predictor" skips the denoiser entirely; "denoiser" keeps g frozen.
# "refiner" trains the kernel path's refiner alone, on crops that carry their deconvolution
# (y is [blurry, d]): L1 of d + R(y, d) against the sharp crop.
PHASES = ("joint", "predictor", "denoiser", "refiner")


def predictor_loss(x_init: torch.Tensor, x0: torch.Tensor, fft_weight: float = 0.0) -> torch.Tensor:
    """L1 on g(y), plus L1 on the difference of the 2-D spectra (MIMO-UNet's frequency term),
    which weights the fine detail a blurred image lacks more than pixel L1 alone does."""
    diff = x_init.float() - x0.float()
    loss = diff.abs().mean()
    if fft_weight > 0:
        spec = torch.fft.rfft2(diff, norm="ortho")
        loss = loss + fft_weight * torch.view_as_real(spec).abs().mean()
    return loss


def sample_edm_sigmas(n: int, residual_std: float, generator: torch.Generator | None = None) -> torch.Tensor:
    """Training noise levels sigma for the "edm" objective.

    Mostly log-normal around the residual's own spread (where the denoiser's choices
    matter most), plus a quarter log-uniform over 5e-4..20 so every level a run-time
    schedule visits -- from sigma ~1e-3 at the last step of a long schedule to ~12 at its
    start -- is seen in training.
    """
    gdev = generator.device if generator is not None else torch.device("cpu")
    normal = math.log(0.6 * residual_std) + 1.5 * torch.randn(n, generator=generator, device=gdev)
    lo, hi = math.log(EDM_SIGMA_MIN), math.log(EDM_SIGMA_MAX)
    uniform = lo + (hi - lo) * torch.rand(n, generator=generator, device=gdev)
    pick = torch.rand(n, generator=generator, device=gdev) < 0.25
    return torch.where(pick, uniform, normal).exp()


def training_loss(
    model: torch.nn.Module,  # a DvSR, possibly wrapped (DDP)
    config,  # its ModelConfig
    x0: torch.Tensor,
    y: torch.Tensor,
    schedule: NoiseSchedule,
    generator: torch.Generator | None = None,
    *,
    phase: str = "joint",
    predictor_weight: float = 1.0,
    fft_weight: float = 0.0,
    denoise_weight: float = 1.0,
    stage: int = 1,
    kernel: torch.Tensor | None = None,
) -> torch.Tensor:
    """The loss of one training step for `config.objective` and `phase`.

    `denoise_weight` scales the denoising term (guided models warm-start on the
    regression loss alone and ramp it in; see `guidance_ramp`). HI-Diff: `stage` 1 or 2
    (its own two losses; see models.hidiff). `kernel`: phase "refiner", the (B, k, k)
    kernels the crops were deconvolved with."""
    if getattr(config, "arch", None) == "hidiff":
        return model(x0, y, stage=stage, generator=generator)
    if phase not in PHASES:
        raise ValueError(f"unknown training phase {phase!r}; known: {', '.join(PHASES)}")
    has_predictor = config.predictor is not None
    if phase == "refiner":
        if getattr(config, "refiner", None) is None:
            raise ValueError("phase 'refiner' needs a model with a refiner")
        _, _, refined, _ = model(x0, y, None, None, refine=True, kernel=kernel)
        return predictor_loss(refined, x0, fft_weight)
    if phase == "predictor":
        if not has_predictor:
            raise ValueError("phase 'predictor' needs a model with a predictor")
        _, _, x_init, _ = model(x0, y, None, None)
        return predictor_loss(x_init, x0, fft_weight)
    train_g = phase == "joint" and has_predictor
    if config.objective == "eps":
        if fft_weight > 0:
            raise ValueError("the frequency loss term is only available with the edm objective or phase 'predictor'")
        return dvsr_loss(model, x0, y, schedule, generator, predictor_weight if train_g else 0.0,
                         guidance_scales=config.guidance.scales if config.guidance is not None else None,
                         denoise_weight=denoise_weight)
    gen_device = generator.device if generator is not None else x0.device
    sigma = sample_edm_sigmas(x0.shape[0], config.residual_std, generator).to(x0.device)
    eps = torch.randn(x0.shape, generator=generator, device=gen_device).to(x0.device)
    gnoise = _guidance_noise(x0, generator) if config.guidance is not None else None
    out, target, x_init, guidance = model(x0, y, sigma, eps, gnoise)
    loss = denoise_weight * (out - target).pow(2).mean()
    if train_g and predictor_weight > 0:
        loss = loss + predictor_weight * predictor_loss(x_init, x0, fft_weight)
    if guidance is not None:
        loss = loss + regression_loss(guidance, x0, config.guidance.scales)
    return loss


def guidance_ramp(step: int, ramp_steps: int) -> float:
    """MSGD's warm start: the denoising loss's weight rises linearly from 0 at step 0 to 1
    at `ramp_steps` (the paper: 60k of 1M iterations), so the guidance first learns
    its regression alone. 0 ramp steps: weight 1 throughout."""
    if ramp_steps <= 0:
        return 1.0
    return min(1.0, step / ramp_steps)

