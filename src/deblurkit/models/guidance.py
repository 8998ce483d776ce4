"""MSGD's multiscale structure guidance (Ren et al., Sec. 3.2, Fig. 3).

For each scale s: the blurry input in grey, area-downsampled by s (plus a little
Gaussian noise in training, to mask domain-specific degradations), goes through a small
network of 3x3 residual blocks that keeps its resolution. Its features are
  (a) regressed by one convolution to the grey *sharp* image at that scale (the MSE
      regression loss keeps them about sharp structure, not about the blur), and
  (b) projected by one convolution to the width of the denoiser's encoder at the level
      that runs at 1/s, where they are added as a bias.
The guidance depends on the input only, so it is computed once per image (or tile) and
reused at every reverse-diffusion step.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .config import GuidanceConfig, UNetConfig, guidance_levels
from .unet import ResBlock, _zero

# ITU-R BT.601 luma, the usual RGB -> grey.
LUMA = (0.299, 0.587, 0.114)


def to_grey(x: torch.Tensor) -> torch.Tensor:
    """(B, 3, H, W) -> (B, 1, H, W); works on the [-1, 1] scale since the weights sum to 1."""
    w = torch.tensor(LUMA, dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
    return (x * w).sum(dim=1, keepdim=True)


def downsample(x: torch.Tensor, scale: int) -> torch.Tensor:
    return x if scale == 1 else F.avg_pool2d(x, scale)


def scaled_noise(noise: torch.Tensor, scale: int) -> torch.Tensor:
    """Unit-variance i.i.d. noise at 1/scale from one full-resolution N(0, 1) draw: the
    mean of s x s independent draws has variance 1 / s^2, so it is multiplied by s."""
    return noise if scale == 1 else F.avg_pool2d(noise, scale) * scale


def grey_targets(x0: torch.Tensor, scales: tuple[int, ...]) -> list[torch.Tensor]:
    """The regression targets: the grey sharp image at each scale."""
    g = to_grey(x0.float())
    return [downsample(g, s) for s in scales]


@dataclass
class Guidance:
    """The guidance of one batch of inputs."""

    biases: list[torch.Tensor | None]  # per denoiser level: added to its encoder features (or None)
    regression: list[torch.Tensor]  # per scale: the grey sharp estimate (B, 1, H/s, W/s)

    @property
    def batch(self) -> int:
        return next(b.shape[0] for b in self.biases if b is not None)

    def for_sampling(self) -> "Guidance":
        """What the denoiser needs at every step: the biases (the regression outputs are
        for training and --save-guidance only, so a cached guidance need not keep them)."""
        return Guidance(self.biases, [])

    def repeat(self, n: int) -> "Guidance":
        """Each input's guidance repeated n times in a row (for n samples of each tile)."""
        if n == 1:
            return self
        rep = lambda t: t.repeat_interleave(n, dim=0)  # noqa: E731
        return Guidance([None if b is None else rep(b) for b in self.biases], [rep(r) for r in self.regression])


class ScaleNet(nn.Module):
    """The guidance network of one scale: no down- or upsampling inside."""

    def __init__(self, channels: int, blocks: int, out_channels: int):
        super().__init__()
        self.head = nn.Conv2d(1, channels, 3, padding=1)
        self.blocks = nn.ModuleList([ResBlock(channels, channels, None, 0.0) for _ in range(blocks)])
        self.regress = nn.Conv2d(channels, 1, 3, padding=1)
        # Zero at the start, so a fresh guided denoiser is exactly the unguided one and
        # the denoising loss (ramped in after the regression warm start) opens it up.
        self.project = _zero(nn.Conv2d(channels, out_channels, 3, padding=1))

    def forward(self, grey: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.head(grey)
        for block in self.blocks:
            h = block(h, None)
        h = F.silu(h)
        # The regression predicts a correction to the grey input, as the predictor does.
        return self.project(h), grey + self.regress(h)


class StructureGuidance(nn.Module):
    def __init__(self, config: GuidanceConfig, denoiser: UNetConfig):
        super().__init__()
        self.config = config
        self.levels = guidance_levels(config, denoiser)
        self.n_levels = len(denoiser.channel_mults)
        # Feature width where each level begins: the stem's, then that of the level above
        # (the downsampling keeps the width; the level's first block changes it).
        widths = [denoiser.base_channels * m for m in (1, *denoiser.channel_mults[:-1])]
        self.nets = nn.ModuleList([ScaleNet(config.channels, config.num_blocks, widths[k]) for k in self.levels])

    def forward(self, y: torch.Tensor, noise: torch.Tensor | None = None) -> Guidance:
        """y: (B, 3, H, W) in [-1, 1], sides multiples of the largest scale. `noise`: a
        (B, 1, H, W) standard normal draw for training (None at run time: the guidance of
        the noise-free input, so a restore depends on its seed only through the sampler)."""
        grey = to_grey(y)
        biases: list[torch.Tensor | None] = [None] * self.n_levels
        regression = []
        for s, k, net in zip(self.config.scales, self.levels, self.nets, strict=True):
            g = downsample(grey, s)
            if noise is not None and self.config.noise_std > 0:
                g = g + self.config.noise_std * scaled_noise(noise, s).to(g.dtype)
            bias, reg = net(g)
            biases[k] = bias if biases[k] is None else biases[k] + bias
            regression.append(reg)
        return Guidance(biases, regression)


def regression_loss(guidance: Guidance, x0: torch.Tensor, scales: tuple[int, ...]) -> torch.Tensor:
    """Mean over scales of the per-scale MSE to the grey sharp image (MSGD Eq. 3)."""
    targets = grey_targets(x0, scales)
    return torch.stack([(r.float() - t).pow(2).mean() for r, t in zip(guidance.regression, targets, strict=True)]).mean()
