"""The predict-and-refine model (DvSR, Fig. 2) and its icDPM special case.

`predict(y)` is the deterministic initial predictor g(y); `denoise(z_t, level, y)` is
the denoiser f that estimates the noise in the diffused residual. The restored image
is g(y) + z_0. For arch "icdpm" there is no predictor: g(y) = 0 and the denoiser
samples the clean image itself (the plain image-conditioned DDPM baseline).
Images are in [-1, 1].
"""

from __future__ import annotations

import torch
from torch import nn

from .config import ModelConfig
from .unet import UNet


class DvSR(nn.Module):
    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        # The predictor learns a correction to its input (g(y) = y + U(y)): a fresh
        # network is then the identity, which is a far better start than 0 for deblurring.
        self.predictor = UNet(config.predictor) if config.predictor is not None else None
        self.denoiser = UNet(config.denoiser)

    @property
    def multiple(self) -> int:
        return self.config.multiple

    def predict(self, y: torch.Tensor) -> torch.Tensor:
        if self.predictor is None:
            return torch.zeros_like(y)
        return y + self.predictor(y)

    def forward(
        self, x0: torch.Tensor, y: torch.Tensor, level: torch.Tensor, eps: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Training pass (DvSR Eq. 6): diffuse the residual x0 - g(y) to `level` with `eps`.

        Returns (the denoiser's estimate of `eps`, g(y)). One forward, so DDP sees every parameter.
        """
        x_init = self.predict(y)
        lv = level.view(-1, 1, 1, 1)
        z = lv * (x0 - x_init) + torch.sqrt(1.0 - lv**2) * eps
        return self.denoise(z, level, y), x_init

    def denoise(self, z: torch.Tensor, level: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Noise estimate for z_t = level * residual + sqrt(1 - level^2) * eps."""
        if level.ndim == 0:
            level = level.expand(z.shape[0])
        out = self.denoiser(torch.cat([z, y], dim=1), level)
        s2 = self.config.residual_std**2
        if s2 > 0:
            lv = level.float().view(-1, 1, 1, 1)
            out = out + torch.sqrt(1.0 - lv**2) / (lv**2 * s2 + 1.0 - lv**2) * z
        return out


def build_model(config: ModelConfig) -> DvSR:
    return DvSR(config)
