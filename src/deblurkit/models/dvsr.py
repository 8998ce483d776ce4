"""The predict-and-refine model (DvSR, Fig. 2) and its icDPM special case.

`predict(y)` is the deterministic initial predictor g(y); `denoise(z_t, level, y)` is
the denoiser f that estimates the noise in the diffused residual. The restored image
is g(y) + z_0. For arch "icdpm" there is no predictor: g(y) = 0 and the denoiser
samples the clean image itself (the plain image-conditioned DDPM baseline); arch "msgd"
is icDPM whose denoiser also gets multiscale structure guidance (models.guidance),
computed once from y by `guide(y)` and passed to every `denoise` call. On the kernel
path (kernel_path.py) a model with a refiner starts from `refine(y, d, k)`, d being y's
deconvolution with the photo's kernel k, instead of g(y).
Images are in [-1, 1].
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from .config import ModelConfig
from .guidance import Guidance, StructureGuidance
from .unet import UNet


# Noise levels the "edm" objective trains on (see diffusion.loss.sample_edm_sigmas). Above
# the top the input is pure noise for any practical purpose, so the level the backbone
# is told is capped there: short schedules start higher (sigma ~52 at T = 10) and must
# not ask the noise embedding for a value it never saw.
EDM_SIGMA_MIN, EDM_SIGMA_MAX = 5e-4, 20.0


def blind_deconvolve_batch(y: torch.Tensor, rule: str = "fixed") -> torch.Tensor:
    """Each image's classical blind deconvolution (deblurkit.deconv), [-1, 1] in and out,
    on y's device and dtype. CPU work in float64: a kernel estimate is not differentiable
    and not trained."""
    from ..deconv import blind_deconvolve

    rgb = ((y.detach().float().cpu() + 1) / 2).clamp(0, 1).permute(0, 2, 3, 1).numpy()
    out = np.stack([blind_deconvolve(im, rule=rule) for im in rgb]).transpose(0, 3, 1, 2)
    return torch.from_numpy(out * 2 - 1).to(device=y.device, dtype=y.dtype)


class DvSR(nn.Module):
    # What the restorer asks every family (see restorer.py): this one runs a reverse
    # diffusion in image space (`denoise` at each step) and has no per-image prior.
    diffuses_pixels = True

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        # The predictor learns a correction to its input (g(y) = y + U(y)): a fresh
        # network is then the identity, which is a far better start than 0 for deblurring.
        self.predictor = UNet(config.predictor) if config.predictor is not None else None
        # With a network per scale, `predictor` stays the full-size one (its tensors keep
        # their names, so a shared-network checkpoint initialises every scale) and these are
        # the coarser scales, finest first.
        self.predictor_coarse = nn.ModuleList(
            UNet(config.predictor) for _ in range(config.predictor_scales - 1)) if config.separate_scale_predictors else None
        self.denoiser = UNet(config.denoiser)
        # The kernel path's refiner (config.refiner): a fresh one is zero at its tail, so it
        # starts as d itself.
        self.refiner = UNet(config.refiner) if config.refiner is not None else None
        self.guidance = StructureGuidance(config.guidance, config.denoiser) if config.guidance is not None else None

    @property
    def multiple(self) -> int:
        return self.config.multiple

    @property
    def has_deterministic_path(self) -> bool:
        """Whether 0 steps restore anything: DvSR's predictor does; icDPM / MSGD sample the
        image itself, and their `predict` is 0."""
        return self.predictor is not None

    def activation_bytes_per_pixel(self) -> float:
        """Rough peak activation bytes per input pixel of one U-Net inference pass."""
        worst = 0.0
        for unet in (self.predictor, self.denoiser, self.refiner):
            if unet is None:
                continue
            c = unet.config
            per = sum(c.base_channels * m * (c.num_res_blocks + 6) / 4**i for i, m in enumerate(c.channel_mults))
            worst = max(worst, 4.0 * per / c.pixel_shuffle**2 + 4.0 * 3 * 4)  # + the full-resolution in/out maps
        return 2.0 * worst  # concatenations and allocator slack

    def cached_bytes_per_pixel(self) -> float:
        """Bytes per input pixel of the structure guidance kept over all steps (the encoder
        biases of every tile; float32 at most): 0 without guidance."""
        if self.guidance is None:
            return 0.0
        den = self.config.denoiser
        widths = [den.base_channels * m for m in (1, *den.channel_mults[:-1])]
        return 4.0 * sum(widths[k] / s**2 for s, k in zip(self.config.guidance.scales, self.guidance.levels, strict=True))

    def predict(self, y: torch.Tensor, prior: torch.Tensor | None = None) -> torch.Tensor:
        """The initial prediction g(y) (0 for icDPM / MSGD). No family of this kind has a prior.

        A kernel-aware model (config.deconv_input) computes y's blind deconvolution here;
        training passes it precomputed as three more channels of y ([y, deconv])."""
        if prior is not None:
            raise ValueError("DvSR models take no image prior")
        if self.predictor is None:
            return torch.zeros_like(y)
        y, deconv = self.split_input(y)
        if self.config.predictor_scales == 1:
            return self._correct(y, self.predictor(y if deconv is None else torch.cat([y, deconv], dim=1)), deconv)
        # Coarse to fine: the coarsest scale sees the blurry input twice, every finer one
        # the coarser result upsampled beside its own input (and its deconvolution).
        pyramid = [y if deconv is None else torch.cat([y, deconv], dim=1)]
        for _ in range(self.config.predictor_scales - 1):
            pyramid.append(F.avg_pool2d(pyramid[-1], 2))
        x = None
        for level in reversed(range(len(pyramid))):
            ys, side = pyramid[level][:, :3], pyramid[level][:, 3:]
            prev = ys if x is None else F.interpolate(x, size=ys.shape[-2:], mode="bilinear", align_corners=False).to(ys.dtype)
            x = self._correct(ys, self._scale_predictor(level)(torch.cat([ys, prev, side], dim=1)), side)
        return x

    def refine(self, y: torch.Tensor, d: torch.Tensor, kernel: torch.Tensor | None = None) -> torch.Tensor:
        """The kernel path's initial estimate from blurry y and its deconvolution d (both
        [-1, 1], the same shape): d + R(y, d, d - y) with a refiner, d itself without. The sum
        is taken in d's precision (float32 under autocast): only the correction is bf16."""
        if self.refiner is None:
            return d
        # A kernel-conditioned refiner (config.refiner.kernel_grid) also sees the kernel d was
        # deconvolved with, (k, k) or (B, k, k), so it can learn how far to trust d.
        return d + self.refiner(torch.cat([y, d, d - y], dim=1), kernel=kernel)

    def _correct(self, y: torch.Tensor, out: torch.Tensor, deconv: torch.Tensor | None) -> torch.Tensor:
        """One scale's prediction from its network output: y + U, and with a gate
        (config.deconv_gate) + a (deconv - y), a being the output's fourth channel."""
        if not self.config.deconv_gate:
            return y + out
        return y + out[:, :3] + out[:, 3:4] * (deconv - y)

    def split_input(self, y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(blurry y, its deconvolution or None): a kernel-aware model's training input
        carries the deconvolution as channels 3-5; otherwise it is computed from y."""
        if not self.config.deconv_input:
            return y, None
        if y.shape[1] == 6:
            return y[:, :3], y[:, 3:]
        return y, blind_deconvolve_batch(y, self.config.deconv_wiener)

    def _scale_predictor(self, level: int) -> nn.Module:
        """The predictor network of pyramid level `level` (0 = full size)."""
        if level == 0 or self.predictor_coarse is None:
            return self.predictor
        return self.predictor_coarse[level - 1]

    def guide(self, y: torch.Tensor, noise: torch.Tensor | None = None) -> Guidance | None:
        """The structure guidance of input y (None for an unguided model)."""
        return None if self.guidance is None else self.guidance(y, noise)

    def forward(
        self, x0: torch.Tensor, y: torch.Tensor, noise: torch.Tensor | None, eps: torch.Tensor | None,
        guidance_noise: torch.Tensor | None = None, refine: bool = False, kernel: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor, Guidance | None]:
        """Training pass: returns (denoiser output, its regression target, g(y), guidance).

        `refine`: the refiner's pass instead (y carries d as channels 3-5, `kernel` the (B,
        k, k) kernels d was deconvolved with): (None, None, d + R(y, d, k), None).

        `noise` is the objective's noise variable per sample: sqrt(alpha_bar) for "eps"
        (DvSR Eq. 6: the residual x0 - g(y) is diffused and the gradient flows through it
        into g), sigma for "edm" (the residual of a detached g(y), so the predictor learns
        only from its own loss). `noise=None` skips the denoiser (predictor-only training).
        `guidance_noise`: the (B, 1, H, W) standard normal draw for the guidance input.
        One forward, so DDP sees every trained parameter.
        """
        if refine:
            if self.refiner is None or y.shape[1] != 6:
                raise ValueError("the refiner's pass needs a model with a refiner and y carrying d ([y, d], 6 channels)")
            return None, None, self.refine(y[:, :3], y[:, 3:], kernel), None
        train_predictor = self.predictor is not None and any(p.requires_grad for p in self.predictor.parameters())
        with torch.set_grad_enabled(torch.is_grad_enabled() and train_predictor):
            x_init = self.predict(y)
        y = y[:, :3]  # a kernel-aware model's input carries its deconvolution; the denoiser sees y
        if noise is None:
            return None, None, x_init, None
        guidance = self.guide(y, guidance_noise)
        if self.config.objective == "eps":
            lv = noise.view(-1, 1, 1, 1)
            z = lv * (x0 - x_init) + torch.sqrt(1.0 - lv**2) * eps
            return self.denoise(z, noise, y, x_init, guidance), eps, x_init, guidance
        residual = x0 - x_init.detach()
        sigma = noise.view(-1, 1, 1, 1)
        x_noisy = residual + sigma * eps
        out, c_skip, c_out = self._edm_backbone(x_noisy, noise, y, x_init.detach(), guidance)
        return out, (residual - c_skip * x_noisy) / c_out, x_init, guidance

    def _conditioning(self, y: torch.Tensor, x_init: torch.Tensor | None) -> list[torch.Tensor]:
        if not self.config.condition_on_prediction:
            return [y]
        if x_init is None:
            raise ValueError("this denoiser is conditioned on the initial prediction: pass x_init")
        return [y, x_init]

    def _edm_backbone(self, x_noisy, sigma, y, x_init, guidance):
        """F of D(x; sigma) = c_skip x + c_out F(c_in x, log(sigma) / 4) (EDM, Table 1)."""
        s = self.config.residual_std
        sig = sigma.double().clamp_min(1e-5)
        norm = torch.sqrt(sig**2 + s**2)
        as4d = lambda t: t.float().view(-1, 1, 1, 1)  # noqa: E731
        c_in, c_skip, c_out = as4d(1.0 / norm), as4d(s**2 / norm**2), as4d(sig * s / norm)
        inp = torch.cat([x_noisy * c_in, *self._conditioning(y, x_init)], dim=1)
        c_noise = torch.log(sig.clamp(EDM_SIGMA_MIN, EDM_SIGMA_MAX)) / 4.0
        out = self.denoiser(inp, c_noise.float(), self._biases(guidance, y)).float()
        return out, c_skip, c_out

    def _biases(self, guidance: Guidance | None, y: torch.Tensor):
        if self.guidance is None:
            return None
        if guidance is None:  # a caller that does not cache it: compute it here
            guidance = self.guide(y)
        return guidance.biases

    def denoise(
        self, z: torch.Tensor, level: torch.Tensor, y: torch.Tensor, x_init: torch.Tensor | None = None,
        guidance: Guidance | None = None,
    ) -> torch.Tensor:
        """Noise estimate for z_t = level * residual + sqrt(1 - level^2) * eps (what the samplers use).

        `guidance`: `guide(y)`, computed once and reused over the steps (guided models
        compute it here when it is not given)."""
        if level.ndim == 0:
            level = level.expand(z.shape[0])
        if self.config.objective == "edm":
            lv = level.double().clamp(1e-6, 1.0 - 1e-12)
            sigma = torch.sqrt(1.0 - lv**2) / lv
            x_noisy = z / lv.float().view(-1, 1, 1, 1)
            out, c_skip, c_out = self._edm_backbone(x_noisy, sigma, y, x_init, guidance)
            residual = c_skip * x_noisy + c_out * out
            lv4 = lv.view(-1, 1, 1, 1)
            return ((z.double() - lv4 * residual.double()) / torch.sqrt(1.0 - lv4**2)).to(z.dtype)
        out = self.denoiser(torch.cat([z, *self._conditioning(y, x_init)], dim=1), level, self._biases(guidance, y))
        s2 = self.config.residual_std**2
        if s2 > 0:
            lv = level.float().view(-1, 1, 1, 1)
            out = out + torch.sqrt(1.0 - lv**2) / (lv**2 * s2 + 1.0 - lv**2) * z
        return out
