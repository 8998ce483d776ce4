"""Fully convolutional U-Net backbone in the SR3 style DvSR describes (Sec. 4.2).

BigGAN-style residual blocks with the noise-level embedding added per block; no
self-attention, no positional encoding and no group normalisation, so the network
works on any input whose sides are a multiple of `UNetConfig.multiple`.
Without normalisation, the last convolution of every residual branch starts at zero,
so a fresh network is a well-conditioned identity-like map and trains stably.

Optionally, the blocks of chosen levels carry a Fourier branch (DeepRFT's residual
FFT-ReLU block, Mao et al. 2021): 1x1 convolutions with a ReLU between them on the
real and imaginary parts of the feature map's 2-D spectrum. Its receptive field is the
whole image at the cost of two FFTs, which is what a shake of 100+ px needs; it starts at
zero, so adding it to a trained network changes nothing until it is trained.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torch.nn import functional as F

from .config import UNetConfig


def sinusoidal_embedding(level: torch.Tensor, dim: int, scale: float) -> torch.Tensor:
    """Transformer-style features of `scale * level` (level: shape (B,)), shape (B, dim)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=level.device, dtype=torch.float32) / half)
    args = (scale * level.float())[:, None] * freqs[None, :]
    return torch.cat([torch.sin(args), torch.cos(args)], dim=1)


def kernel_features(kernel: torch.Tensor, grid: int, cell: int) -> torch.Tensor:
    """(B, k, k) blur kernels -> (B, grid * grid): each kernel centred in a square of
    grid * cell pixels (cut or zero-padded), summed over cells of cell x cell pixels, scaled
    so that a kernel spread evenly over the square reads 1 per cell. An odd kernel's centre
    pixel lands on the same pixel of the square whether it is padded or cut."""
    side = grid * cell
    k = kernel.float()
    n = k.shape[-1]
    if n > side:  # cut the tails off, centred (the centre where a padded kernel's is)
        a = (n - side + 1) // 2
        k = k[..., a:a + side, a:a + side]
    elif n < side:
        a = (side - n) // 2
        k = F.pad(k, (a, side - n - a, a, side - n - a))
    cells = F.avg_pool2d(k[:, None], cell)[:, 0] * cell * cell  # sums per cell
    return cells.flatten(1) * (grid * grid)


def _zero(module: nn.Module) -> nn.Module:
    for p in module.parameters():
        nn.init.zeros_(p)
    return module


class FourierBranch(nn.Module):
    """x -> irfft2(W2 relu(W1 [Re, Im] rfft2(x))): a global, input-dependent filter.

    The transforms run in fp32 (CPU FFTs have no bf16) and orthonormal, so the spectrum's
    scale does not grow with the tile size; the channel mixing is two linear layers on a
    channels-last view (matrix products, which autocast runs in bf16 where it is on)."""

    def __init__(self, ch: int):
        super().__init__()
        self.mix1 = nn.Linear(2 * ch, 2 * ch)
        self.mix2 = _zero(nn.Linear(2 * ch, 2 * ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        xl = x.permute(0, 2, 3, 1)  # (B, H, W, C): a view when x is channels-last
        with torch.autocast(device_type=x.device.type, enabled=False):
            f = torch.fft.rfft2(xl.float(), dim=(1, 2), norm="ortho")
        z = self.mix2(F.relu(self.mix1(torch.cat([f.real, f.imag], dim=-1))))
        re, im = z.float().chunk(2, dim=-1)
        with torch.autocast(device_type=x.device.type, enabled=False):
            out = torch.fft.irfft2(torch.complex(re, im), s=(h, w), dim=(1, 2), norm="ortho")
        return out.permute(0, 3, 1, 2).to(x.dtype)


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, emb_dim: int | None, dropout: float, fourier: bool = False):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.emb = nn.Linear(emb_dim, cout) if emb_dim else None
        self.dropout = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.conv2 = _zero(nn.Conv2d(cout, cout, 3, padding=1))
        self.skip = nn.Conv2d(cin, cout, 1) if cin != cout else nn.Identity()
        self.fourier = FourierBranch(cout) if fourier else None

    def forward(self, x: torch.Tensor, emb: torch.Tensor | None) -> torch.Tensor:
        h = self.conv1(F.silu(x))
        if self.emb is not None:
            h = h + self.emb(emb)[:, :, None, None]
        h = self.conv2(self.dropout(F.silu(h)))
        y = self.skip(x) + h
        return y + self.fourier(y) if self.fourier is not None else y


class Downsample(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, stride=2, padding=1)

    def forward(self, x, emb=None):
        return self.conv(x)


class Upsample(nn.Module):
    def __init__(self, ch: int):
        super().__init__()
        self.conv = nn.Conv2d(ch, ch, 3, padding=1)

    def forward(self, x, emb=None):
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class UNet(nn.Module):
    def __init__(self, config: UNetConfig):
        super().__init__()
        self.config = config
        ch = config.base_channels
        conditioned = config.embed_scale > 0
        emb_dim = 4 * ch if conditioned or config.kernel_grid else None
        if conditioned:
            self.embed = nn.Sequential(nn.Linear(ch, emb_dim), nn.SiLU(), nn.Linear(emb_dim, emb_dim))
        if config.kernel_grid:
            # zero at its end, like the tail: a new condition changes nothing until it is trained
            self.kernel_embed = nn.Sequential(nn.Linear(config.kernel_grid**2, emb_dim), nn.SiLU(),
                                              _zero(nn.Linear(emb_dim, emb_dim)))
        s2 = config.pixel_shuffle**2
        self.unshuffle = nn.PixelUnshuffle(config.pixel_shuffle) if config.pixel_shuffle > 1 else nn.Identity()
        self.shuffle = nn.PixelShuffle(config.pixel_shuffle) if config.pixel_shuffle > 1 else nn.Identity()
        self.head = nn.Conv2d(config.in_channels * s2, ch, 3, padding=1)

        skip_channels = [ch]
        self.down = nn.ModuleList()
        cur = ch
        n_levels = len(config.channel_mults)
        fourier = set(config.fourier_levels)
        for level, mult in enumerate(config.channel_mults):
            for _ in range(config.num_res_blocks):
                self.down.append(ResBlock(cur, ch * mult, emb_dim, config.dropout, level in fourier))
                cur = ch * mult
                skip_channels.append(cur)
            if level != n_levels - 1:
                self.down.append(Downsample(cur))
                skip_channels.append(cur)

        deepest = n_levels - 1 in fourier
        self.mid = nn.ModuleList(
            [ResBlock(cur, cur, emb_dim, config.dropout, deepest), ResBlock(cur, cur, emb_dim, config.dropout, deepest)]
        )

        self.up = nn.ModuleList()
        for level, mult in reversed(list(enumerate(config.channel_mults))):
            for _ in range(config.num_res_blocks + 1):
                self.up.append(ResBlock(cur + skip_channels.pop(), ch * mult, emb_dim, config.dropout, level in fourier))
                cur = ch * mult
            if level != 0:
                self.up.append(Upsample(cur))
        assert not skip_channels

        self.tail = _zero(nn.Conv2d(cur, config.out_channels * s2, 3, padding=1))

    def forward(self, x: torch.Tensor, level: torch.Tensor | None = None,
                biases: list[torch.Tensor | None] | None = None, kernel: torch.Tensor | None = None) -> torch.Tensor:
        """`biases[k]`, when given, is added to the encoder's features where level k begins
        (after the stem or the downsampling into it): MSGD's structure guidance. `kernel`:
        (B, k, k) or (k, k) blur kernel(s) of a kernel-conditioned U-Net (config.kernel_grid)."""
        m = self.config.multiple
        if x.shape[-1] % m or x.shape[-2] % m:
            raise ValueError(f"U-Net input sides must be multiples of {m}, got {tuple(x.shape[-2:])}")
        emb = None
        if self.config.embed_scale > 0:
            if level is None:
                raise ValueError("this U-Net is noise-level conditioned: pass `level`")
            feats = sinusoidal_embedding(level, self.config.base_channels, self.config.embed_scale)
            emb = self.embed(feats.to(x.dtype) if not torch.is_autocast_enabled() else feats)
        if self.config.kernel_grid:
            if kernel is None:
                raise ValueError("this U-Net is conditioned on a blur kernel: pass `kernel`")
            if kernel.dim() == 2:
                kernel = kernel.expand(x.shape[0], -1, -1)
            if kernel.dim() != 3 or kernel.shape[0] != x.shape[0] or kernel.shape[-1] != kernel.shape[-2]:
                raise ValueError(f"kernel: expected (B, k, k) or (k, k) for a batch of {x.shape[0]}, got {tuple(kernel.shape)}")
            feats = kernel_features(kernel.to(x.device), self.config.kernel_grid, self.config.kernel_cell)
            k_emb = self.kernel_embed(feats.to(x.dtype) if not torch.is_autocast_enabled() else feats)
            emb = k_emb if emb is None else emb + k_emb

        h = self.head(self.unshuffle(x))
        depth = 0
        if biases is not None and biases[0] is not None:
            h = h + biases[0].to(h.dtype)
        skips = [h]
        for layer in self.down:
            h = layer(h, emb)
            if isinstance(layer, Downsample):
                depth += 1
                if biases is not None and biases[depth] is not None:
                    h = h + biases[depth].to(h.dtype)
            skips.append(h)
        for layer in self.mid:
            h = layer(h, emb)
        for layer in self.up:
            if isinstance(layer, ResBlock):
                h = layer(torch.cat([h, skips.pop()], dim=1), emb)
            else:
                h = layer(h, emb)
        return self.shuffle(self.tail(F.silu(h)))
