"""HI-Diff (Chen et al., 2023): a regression transformer guided by a latent diffusion prior.

The image comes from a Restormer-style encoder-decoder (`Restormer`); diffusion runs only
over N = 16 prior tokens. Hierarchical integration modules (`HIM`) in front of every
encoder and decoder level let the image features (queries) attend to the prior tokens
(keys, values), the prior shortened to fewer tokens at the deeper levels.

Stage one: LE encodes [blurry, sharp] into the prior z; LE and the transformer train
together with L1 on the output. Stage two: LE_DM encodes the blurry image alone into the
condition c; the latent denoiser runs all T reverse steps from z_T (z noised to step T)
to z_hat, which guides the transformer; loss = L1(output) + L1(z_hat, z).
Inference: c = LE_DM(y), z_T ~ N(0, I), T reverse steps (Eq. 6), then the transformer.

Images are in [-1, 1]. Everything here is plain 3x3 / 1x1 / depthwise convolutions,
per-pixel LayerNorm and small matrix products.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .config import check_number, check_whole, frozen_from_dict
from .unet import ResBlock, _zero, sinusoidal_embedding

# The paper's latent schedule: T = 8, betas linear from 0.1 to 0.99.
LATENT_BETA_START, LATENT_BETA_END = 0.1, 0.99


@dataclass(frozen=True)
class HIDiffConfig:
    """Sizes of every part (the paper's values in comments)."""

    arch: str = "hidiff"
    dim: int = 24  # 48: width of level 1 (levels double it)
    blocks: tuple[int, ...] = (1, 2, 2, 3)  # (3, 5, 5, 6) transformer blocks per level
    heads: tuple[int, ...] = (1, 2, 4, 8)
    refinement_blocks: int = 1  # 4
    ffn_expansion: float = 2.66
    # Space-to-depth stem (as our U-Nets): the transformer runs at 1/s resolution. The
    # paper has none (1); at 2 the full-resolution level -- the dominant CPU cost -- is gone.
    pixel_shuffle: int = 2
    tokens: int = 16  # N
    latent_dim: int = 64  # C' = 256
    encoder_width: int = 32  # latent encoders' feature width
    encoder_blocks: int = 2  # L = 6 residual blocks
    denoiser_blocks: int = 3  # residual MLP blocks of the latent denoiser
    latent_steps: int = 8  # T

    def __post_init__(self):
        # Checkpoint metadata is untrusted: every field is checked before anything is built.
        if self.arch != "hidiff":
            raise ValueError(f"a HIDiffConfig has arch 'hidiff', got {self.arch!r}")
        for name, lo, hi in (("dim", 4, 512), ("refinement_blocks", 0, 16), ("pixel_shuffle", 1, 8), ("tokens", 1, 256),
                             ("latent_dim", 4, 2048), ("encoder_width", 4, 512), ("encoder_blocks", 1, 16),
                             ("denoiser_blocks", 1, 16), ("latent_steps", 1, 1000)):
            check_whole(self, name, lo, hi)
        for name in ("blocks", "heads"):
            v = getattr(self, name)
            if (not isinstance(v, tuple) or len(v) != 4
                    or any(isinstance(x, bool) or not isinstance(x, int) or not 1 <= x <= 64 for x in v)):
                raise ValueError(f"{name} must be 4 integers in [1, 64] (one per level), got {v!r}")
        for k, h in enumerate(self.heads):
            if (self.dim * 2**k) % h:
                raise ValueError(f"level {k + 1}: width {self.dim * 2**k} is not divisible by {h} heads")
        if self.pixel_shuffle & (self.pixel_shuffle - 1):
            raise ValueError(f"pixel_shuffle must be a power of two, got {self.pixel_shuffle}")
        side = math.isqrt(self.tokens)
        if side * side != self.tokens or side & (side - 1):
            raise ValueError(f"tokens must be a square of a power of two (4, 16, 64, ...), got {self.tokens}")
        check_number(self, "ffn_expansion", 1.0, 8.0)

    @property
    def multiple(self) -> int:
        """Input sides must be multiples of this (three halvings after the stem, and the
        latent encoders' 4x space-to-depth)."""
        return max(self.pixel_shuffle * 8, 4)

    def to_dict(self) -> dict:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @classmethod
    def from_dict(cls, d: dict) -> "HIDiffConfig":
        return frozen_from_dict(cls, d, ("blocks", "heads"), "the model config")


def tiny_hidiff_config() -> HIDiffConfig:
    """A very small HI-Diff for tests and smoke runs."""
    return HIDiffConfig(dim=8, blocks=(1, 1, 1, 1), heads=(1, 1, 2, 2), refinement_blocks=1, pixel_shuffle=1,
                        tokens=16, latent_dim=16, encoder_width=8, encoder_blocks=1, denoiser_blocks=1, latent_steps=4)


# ---- Restormer parts ---------------------------------------------------------------
class LayerNorm2d(nn.Module):
    """LayerNorm over the channels of each pixel (Restormer's WithBias_LayerNorm)."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = nn.LayerNorm(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class ChannelAttention(nn.Module):
    """MDTA: multi-Dconv-head transposed attention -- attention across channels (a C/h x C/h
    map per head), so the cost is linear in the number of pixels."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.qkv = nn.Conv2d(dim, dim * 3, 1, bias=False)
        self.qkv_dw = nn.Conv2d(dim * 3, dim * 3, 3, padding=1, groups=dim * 3, bias=False)
        self.project = nn.Conv2d(dim, dim, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv_dw(self.qkv(x)).chunk(3, dim=1)
        q, k, v = (t.reshape(b, self.heads, c // self.heads, h * w) for t in (q, k, v))
        q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
        attn = (q @ k.transpose(-2, -1) * self.temperature).softmax(dim=-1)
        return self.project((attn @ v).reshape(b, c, h, w))


class GatedFeedForward(nn.Module):
    """GDFN: 1x1 expansion, depthwise 3x3, a GELU gate, 1x1 back."""

    def __init__(self, dim: int, expansion: float):
        super().__init__()
        hidden = int(dim * expansion)
        self.expand = nn.Conv2d(dim, hidden * 2, 1, bias=False)
        self.dw = nn.Conv2d(hidden * 2, hidden * 2, 3, padding=1, groups=hidden * 2, bias=False)
        self.project = nn.Conv2d(hidden, dim, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, g = self.dw(self.expand(x)).chunk(2, dim=1)
        return self.project(F.gelu(a) * g)


class TransformerBlock(nn.Module):
    def __init__(self, dim: int, heads: int, expansion: float):
        super().__init__()
        self.norm1, self.attn = LayerNorm2d(dim), ChannelAttention(dim, heads)
        self.norm2, self.ffn = LayerNorm2d(dim), GatedFeedForward(dim, expansion)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x + self.attn(self.norm1(x))
        return x + self.ffn(self.norm2(x))


class HIM(nn.Module):
    """Hierarchical integration: cross-attention from every pixel's features (queries) to
    the prior tokens (keys, values), projected and added back to the features."""

    def __init__(self, dim: int, latent_dim: int, heads: int):
        super().__init__()
        self.heads = heads
        self.norm = LayerNorm2d(dim)
        self.prior_norm = nn.LayerNorm(latent_dim)
        self.q = nn.Conv2d(dim, dim, 1, bias=False)
        self.kv = nn.Linear(latent_dim, dim * 2, bias=False)
        # Zero at the start: a fresh model is the plain transformer, the prior opened up by training.
        self.project = _zero(nn.Conv2d(dim, dim, 1, bias=False))

    def forward(self, x: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        d = c // self.heads
        q = self.q(self.norm(x)).reshape(b, self.heads, d, h * w).transpose(-2, -1)  # (b, heads, hw, d)
        k, v = self.kv(self.prior_norm(prior)).chunk(2, dim=-1)  # (b, n, c) each
        k, v = (t.reshape(b, -1, self.heads, d).transpose(1, 2) for t in (k, v))  # (b, heads, n, d)
        out = F.scaled_dot_product_attention(q, k, v)  # softmax(q k^T / sqrt(d)) v
        return x + self.project(out.transpose(-2, -1).reshape(b, c, h, w))


class PriorPyramid(nn.Module):
    """The multiscale prior (Fig. 1c): each deeper level sees half as many tokens, each a
    learned merge of two neighbours."""

    def __init__(self, tokens: int, latent_dim: int, levels: int):
        super().__init__()
        self.merges = nn.ModuleList()
        n = tokens
        for _ in range(levels - 1):
            self.merges.append(nn.Sequential(nn.Linear(2 * latent_dim, latent_dim), nn.LeakyReLU(0.1)) if n > 1 else nn.Identity())
            n = max(1, n // 2)

    def forward(self, z: torch.Tensor) -> list[torch.Tensor]:
        out = [z]
        for merge in self.merges:
            if not isinstance(merge, nn.Identity):
                b, n, c = z.shape
                z = merge(z.reshape(b, n // 2, 2 * c))
            out.append(z)
        return out


class Restormer(nn.Module):
    """The 4-level encoder-decoder transformer with an HIM in front of every encoder and
    decoder level, a refinement stage, and a global residual (output = y + correction)."""

    def __init__(self, cfg: HIDiffConfig):
        super().__init__()
        self.cfg = cfg
        p, dims = cfg.pixel_shuffle, [cfg.dim * 2**k for k in range(4)]
        self.unshuffle = nn.PixelUnshuffle(p) if p > 1 else nn.Identity()
        self.shuffle = nn.PixelShuffle(p) if p > 1 else nn.Identity()
        self.embed = nn.Conv2d(3 * p * p, dims[0], 3, padding=1, bias=False)

        def stage(dim, n, heads):
            return nn.Sequential(*[TransformerBlock(dim, heads, cfg.ffn_expansion) for _ in range(n)])

        self.enc_him = nn.ModuleList([HIM(dims[k], cfg.latent_dim, cfg.heads[k]) for k in range(4)])
        self.enc = nn.ModuleList([stage(dims[k], cfg.blocks[k], cfg.heads[k]) for k in range(4)])
        # Down: conv to half the width, then 2x space-to-depth (twice the width, half the side).
        self.down = nn.ModuleList([nn.Sequential(nn.Conv2d(dims[k], dims[k] // 2, 3, padding=1, bias=False), nn.PixelUnshuffle(2))
                                   for k in range(3)])
        self.up = nn.ModuleList([nn.Sequential(nn.Conv2d(dims[k + 1], dims[k + 1] * 2, 3, padding=1, bias=False), nn.PixelShuffle(2))
                                 for k in range(3)])
        # Decoder level k sees [upsampled, skip]: reduced to its width at levels 2-3; level 1
        # keeps both (twice the width), as in Restormer.
        self.reduce = nn.ModuleList([nn.Identity()] + [nn.Conv2d(dims[k] * 2, dims[k], 1, bias=False) for k in (1, 2)])
        dec_dims = [dims[0] * 2, dims[1], dims[2]]
        self.dec_him = nn.ModuleList([HIM(dec_dims[k], cfg.latent_dim, cfg.heads[k]) for k in range(3)])
        self.dec = nn.ModuleList([stage(dec_dims[k], cfg.blocks[k], cfg.heads[k]) for k in range(3)])
        self.refine = stage(dec_dims[0], cfg.refinement_blocks, cfg.heads[0])
        self.output = _zero(nn.Conv2d(dec_dims[0], 3 * p * p, 3, padding=1, bias=False))
        self.pyramid = PriorPyramid(cfg.tokens, cfg.latent_dim, 4)

    def forward(self, y: torch.Tensor, prior: torch.Tensor) -> torch.Tensor:
        m = self.cfg.multiple
        if y.shape[-1] % m or y.shape[-2] % m:
            raise ValueError(f"HI-Diff input sides must be multiples of {m}, got {tuple(y.shape[-2:])}")
        priors = self.pyramid(prior)
        h = self.embed(self.unshuffle(y))
        skips = []
        for k in range(4):
            h = self.enc[k](self.enc_him[k](h, priors[k]))
            if k < 3:
                skips.append(h)
                h = self.down[k](h)
        for k in (2, 1, 0):
            h = self.reduce[k](torch.cat([self.up[k](h), skips[k]], dim=1))
            h = self.dec[k](self.dec_him[k](h, priors[k]))
        return y + self.shuffle(self.output(self.refine(h)))


# ---- the latent side -----------------------------------------------------------------
class LatentEncoder(nn.Module):
    """LE / LE_DM (Fig. 1e): 4x space-to-depth, L residual blocks, pooled to a
    sqrt(N) x sqrt(N) grid of N tokens, an MLP to C' channels."""

    def __init__(self, in_channels: int, cfg: HIDiffConfig):
        super().__init__()
        w = cfg.encoder_width
        self.side = math.isqrt(cfg.tokens)
        self.stem = nn.Sequential(nn.PixelUnshuffle(4), nn.Conv2d(in_channels * 16, w, 3, padding=1))
        self.blocks = nn.ModuleList([ResBlock(w, w, None, 0.0) for _ in range(cfg.encoder_blocks)])
        self.mlp = nn.Sequential(nn.Linear(w, cfg.latent_dim), nn.LeakyReLU(0.1), nn.Linear(cfg.latent_dim, cfg.latent_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.stem(x)
        for block in self.blocks:
            h = block(h, None)
        tokens = F.adaptive_avg_pool2d(F.silu(h), self.side).flatten(2).transpose(1, 2)  # (b, N, w)
        return self.mlp(tokens)


class LatentDenoiser(nn.Module):
    """The latent denoiser (z_t, c, t) -> z0_hat: residual MLP blocks over the tokens, each with a token-mixing
    step (the N tokens are few, so a dense N x N mix is cheap) and the step embedding."""

    def __init__(self, cfg: HIDiffConfig):
        super().__init__()
        c, n = cfg.latent_dim, cfg.tokens
        self.inp = nn.Linear(2 * c, c)
        self.time = nn.Sequential(nn.Linear(c, c), nn.SiLU(), nn.Linear(c, c))
        self.blocks = nn.ModuleList([
            nn.ModuleDict({"norm": nn.LayerNorm(c), "mix": nn.Linear(n, n),
                           "mlp": nn.Sequential(nn.LayerNorm(c), nn.Linear(c, 2 * c), nn.GELU(), nn.Linear(2 * c, c))})
            for _ in range(cfg.denoiser_blocks)])
        self.out = nn.Linear(c, c)

    def forward(self, z: torch.Tensor, c: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        # t: (b,) the step as a fraction t / T in (0, 1], so one denoiser serves any T.
        emb = self.time(sinusoidal_embedding(t, z.shape[-1], 1000.0))[:, None, :]
        h = self.inp(torch.cat([z, c], dim=-1)) + emb
        for blk in self.blocks:
            h = h + blk["mix"](blk["norm"](h).transpose(1, 2)).transpose(1, 2)
            h = h + blk["mlp"](h)
        return self.out(h)


def latent_schedule(steps: int) -> torch.Tensor:
    """Betas of the latent chain: linear from 0.1 to 0.99 over `steps` (re-interpolated for
    other T, as in the paper's ablation), float64."""
    if steps == 1:
        return torch.tensor([LATENT_BETA_END], dtype=torch.float64)
    return torch.linspace(LATENT_BETA_START, LATENT_BETA_END, steps, dtype=torch.float64)


def reverse_chain(denoiser: LatentDenoiser, c: torch.Tensor, z: torch.Tensor, steps: int,
                  noise: list[torch.Tensor] | None) -> torch.Tensor:
    """T steps of Eq. 6 from z = z_T:
        z_{t-1} = (z_t - beta_t / sqrt(1 - ab_t) * eps) / sqrt(alpha_t) + sqrt(beta_t) * eps_t,
    with no noise on the last step. The denoiser estimates the clean prior z_0 and eps is
    taken from it, eps = (z_t - sqrt(ab_t) z0_hat) / sqrt(1 - ab_t): the same update, but
    well conditioned -- with betas up to 0.99 an eps network's error would be multiplied by
    1 / sqrt(alpha_t) = 10 at each step, while this way z_{t-1} mixes z0_hat and z_t with
    weights at most 1 (and the last step returns z0_hat itself). `noise[i]` is the draw of
    the i-th step taken (None: the mean path)."""
    betas = latent_schedule(steps)
    abars = torch.cumprod(1.0 - betas, 0)
    for n, i in enumerate(reversed(range(steps))):
        beta, ab = float(betas[i]), float(abars[i])
        t = torch.full((z.shape[0],), (i + 1) / steps, device=z.device)
        z0_hat = denoiser(z, c, t)
        if i == 0:
            return z0_hat
        eps = (z - math.sqrt(ab) * z0_hat) / math.sqrt(1.0 - ab)
        z = (z - beta / math.sqrt(1.0 - ab) * eps) / math.sqrt(1.0 - beta)
        if noise is not None:
            z = z + math.sqrt(beta) * noise[n].to(z.dtype)
    return z


class HIDiff(nn.Module):
    # What the restorer asks every family (see restorer.py): no image-space diffusion; a
    # per-image prior sampled once (`image_prior`) and the image from `predict(y, prior)`.
    diffuses_pixels = False
    # 0 prior steps: the transformer on LE_DM's prior alone (its deterministic path).
    has_deterministic_path = True
    guidance = None  # (MSGD's structure guidance belongs to the DvSR family)
    predictor = None

    def __init__(self, config: HIDiffConfig):
        super().__init__()
        self.config = config
        self.transformer = Restormer(config)
        self.encoder = LatentEncoder(6, config)  # LE: [blurry, sharp] -> z (stage one)
        self.condition_encoder = LatentEncoder(3, config)  # LE_DM: blurry -> c (stage two)
        self.latent_denoiser = LatentDenoiser(config)

    @property
    def multiple(self) -> int:
        return self.config.multiple

    def encode(self, y: torch.Tensor, x0: torch.Tensor) -> torch.Tensor:
        """The stage-one prior z from the blurry and the sharp image."""
        return self.encoder(torch.cat([y, x0], dim=1))

    def sample_prior(self, y: torch.Tensor, noise: list[torch.Tensor], steps: int | None = None) -> torch.Tensor:
        """A prior sample for each image of y: `noise` holds T standard normal draws of
        shape (b, N, C') -- z_T, then one for each step but the last (which adds none)."""
        steps = steps or self.config.latent_steps
        if len(noise) < steps:
            raise ValueError(f"need {steps} noise draws (z_T and {steps - 1} steps), got {len(noise)}")
        c = self._condition(y, noise[0].shape[0])
        return reverse_chain(self.latent_denoiser, c, noise[0].to(c.dtype), steps, noise[1:])

    def _condition(self, y: torch.Tensor, batch: int) -> torch.Tensor:
        """c = LE_DM(y); one image's c is shared by all its samples (computed once)."""
        c = self.condition_encoder(y)
        return c.expand(batch, -1, -1) if c.shape[0] == 1 and batch > 1 else c

    def forward(self, x0: torch.Tensor, y: torch.Tensor, stage: int = 1, generator: torch.Generator | None = None) -> torch.Tensor:
        """Training pass: the loss of `stage` (one forward, so DDP sees every trained parameter)."""
        return stage_one_loss(self, x0, y) if stage == 1 else stage_two_loss(self, x0, y, generator)

    # ---- the restorer's protocol ----
    def predict(self, y: torch.Tensor, prior: torch.Tensor | None = None) -> torch.Tensor:
        """The deblurred image of y (a tile of it) under `prior` (its image's prior)."""
        if prior is None:
            raise ValueError("HI-Diff needs its image prior: predict(y, image_prior(...))")
        return self.transformer(y, prior)

    def image_prior(self, y: torch.Tensor, noise: list[torch.Tensor] | None, steps: int | None = None) -> torch.Tensor:
        """The prior of each image of y: T reverse steps from `noise` (see sample_prior), or
        with noise None the deterministic path (z_T = 0, no noise added on the way)."""
        steps = steps or self.config.latent_steps
        if noise is None:
            c = self._condition(y, y.shape[0])
            return reverse_chain(self.latent_denoiser, c, torch.zeros_like(c), steps, None)
        return self.sample_prior(y, noise, steps)

    def noise_shape(self, batch: int) -> tuple[int, int, int]:
        return (batch, self.config.tokens, self.config.latent_dim)

    def cached_bytes_per_pixel(self) -> float:
        return 0.0  # the prior is a few kB per image, not per pixel

    def activation_bytes_per_pixel(self) -> float:
        """Rough peak activation bytes per input pixel of one transformer pass: the widest
        level's blocks (attention q/k/v and the gated FFN's 2 x expansion) at each level's
        resolution, plus the full-resolution in/out maps."""
        c = self.config
        per = sum(c.dim * 2**k * (3 + 2 * c.ffn_expansion + 2) / 4**k for k in range(4))
        return 2.0 * (4.0 * per / c.pixel_shuffle**2 + 4.0 * 3 * 4)


def stage_one_loss(model: HIDiff, x0: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """LE and the transformer together: L1 of the output, LE seeing the sharp image."""
    return (model.predict(y, model.encode(y, x0)) - x0).abs().float().mean()


def stage_two_loss(model: HIDiff, x0: torch.Tensor, y: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """The latent DM and the transformer together, all T reverse steps in the graph:
    L1(output) + L1(z_hat, z), z from the frozen stage-one LE noised to step T."""
    steps = model.config.latent_steps
    with torch.no_grad():
        z = model.encode(y, x0).float()
    gdev = generator.device if generator is not None else z.device
    draws = [torch.randn(z.shape, generator=generator, device=gdev).to(z.device) for _ in range(steps)]
    ab_T = float(torch.cumprod(1.0 - latent_schedule(steps), 0)[-1])
    z_T = math.sqrt(ab_T) * z + math.sqrt(1.0 - ab_T) * draws[0]
    c = model.condition_encoder(y)
    z_hat = reverse_chain(model.latent_denoiser, c, z_T, steps, draws[1:])
    out = model.predict(y, z_hat)
    return (out - x0).abs().float().mean() + (z_hat.float() - z).abs().mean()
