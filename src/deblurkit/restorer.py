"""`Restorer`: the reusable deblurring engine behind the CLI.

It owns a model on a device and runs, over overlapping tiles, the initial predictor
once and then the reverse diffusion of the residual *step-synchronously*: at each
step every tile of the current full-image z_t is denoised, the tile outputs are
blended into one full-image noise estimate, and the sampler update and the noise draw
happen on the full image. Overlapping tiles therefore always agree and no seams form.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch

from .devices import autocast, available_memory
from .diffusion import SAMPLERS, NoiseSchedule, StepInfo, initial_state
from .errors import OutOfMemoryError
from .models import DvSR
from .tiling import TileGrid, pad_amounts, pad_image

MIN_TILE = 64


@dataclass(frozen=True)
class SamplingOptions:
    steps: int = 20
    noise_ceiling: float = 0.2
    sampler: str = "ddpm"
    samples: int = 1

    def schedule(self) -> NoiseSchedule | None:
        return NoiseSchedule(self.steps, self.noise_ceiling) if self.steps > 0 else None


def sample_generators(seed: int, key: str, n: int, device: torch.device) -> list[torch.Generator]:
    """One generator per sample, derived from (seed, image key, sample index) only.

    So a sample's noise does not depend on how many samples or which other images are
    in the run. The key is the input's file name.
    """
    seq = np.random.SeedSequence([seed & 0xFFFFFFFFFFFFFFFF, zlib.crc32(key.encode("utf-8"))])
    gens = []
    for child in seq.spawn(n):
        g = torch.Generator(device=device)
        g.manual_seed(int(child.generate_state(1, dtype=np.uint64)[0] >> 1))
        gens.append(g)
    return gens


def estimate_bytes_per_pixel(model: DvSR) -> float:
    """Rough peak activation bytes per input pixel of one U-Net inference pass."""
    worst = 0.0
    for unet in (model.predictor, model.denoiser):
        if unet is None:
            continue
        c = unet.config
        per = sum(c.base_channels * m * (c.num_res_blocks + 6) / 4**i for i, m in enumerate(c.channel_mults))
        worst = max(worst, 4.0 * per / c.pixel_shuffle**2 + 4.0 * 3 * 4)  # + the full-resolution in/out maps
    return 2.0 * worst  # concatenations and allocator slack


class Restorer:
    def __init__(
        self,
        model: DvSR,
        device: torch.device | str = "cpu",
        precision: str = "fp32",
        tile: int | None = None,
        overlap: int = 32,
    ):
        self.device = torch.device(device)
        self.precision = precision
        self.model = model.eval().to(self.device)
        # Channels-last convolutions run markedly faster on x86 CPUs (oneDNN) and on
        # tensor-core GPUs.
        self.memory_format = torch.channels_last if self.device.type in ("cpu", "cuda") else torch.contiguous_format
        self.model.to(memory_format=self.memory_format)
        self.multiple = model.multiple
        self.tile = tile
        self.overlap = overlap

    # ---- tile sizing -------------------------------------------------------------
    def auto_tile(self, batch: int) -> int:
        """Largest tile whose activations fit a share of the available memory."""
        share = 0.5 if self.device.type == "cuda" else 0.25
        budget = available_memory(self.device) * share
        if self.device.type == "cpu":
            budget = min(budget, 3 << 30)  # beyond this, bigger tiles buy no CPU speed
        side = math.sqrt(budget / (estimate_bytes_per_pixel(self.model) * max(1, batch)))
        cap = 2048 if self.device.type == "cuda" else 1024
        side = int(min(max(side, MIN_TILE), cap))
        step = max(self.multiple, 32)
        return max(step, side // step * step)

    def _tile_size(self, batch: int) -> int:
        tile = self.tile or self.auto_tile(batch)
        m = self.multiple
        return max(m, tile // m * m)

    # ---- network calls -------------------------------------------------------------
    def _cl(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=self.memory_format)

    def _predict_tiles(self, crops: list[torch.Tensor]) -> torch.Tensor:
        with autocast(self.device, self.precision):
            return self.model.predict(self._cl(crops[0]))

    def _denoise_tiles(self, level: float):
        def fn(crops: list[torch.Tensor]) -> torch.Tensor:
            z, y, x_init = crops
            lv = torch.full((z.shape[0],), level, device=z.device)
            with autocast(self.device, self.precision):
                return self.model.denoise(self._cl(z), lv, self._cl(y), self._cl(x_init))

        return fn

    def _check_full_image_memory(self, h: int, w: int, samples: int) -> None:
        """Full-image buffers grow with the photo and the sample count (tiles bound only the
        networks' activations): refuse up front what cannot fit, instead of failing, or
        being killed, half-way."""
        if self.device.type != "cpu":
            return  # CUDA out-of-memory is retried with smaller tiles
        # input, g(y), the output; per sample z_t, x0, fresh noise, the blended estimate, the result
        need = h * w * 12 * (3 + 5 * samples)
        have = available_memory(self.device)
        if need > have:
            raise OutOfMemoryError(
                f"needs about {need / 2**30:.1f} GiB for {max(samples, 1)} sample(s) at {w}x{h}, "
                f"{have / 2**30:.1f} GiB available; use fewer --samples (or a smaller image or --region)"
            )

    # ---- public API -----------------------------------------------------------------
    @torch.inference_mode()
    def restore(
        self,
        image: torch.Tensor,
        options: SamplingOptions,
        generators: list[torch.Generator] | None = None,
        on_step: Callable[[int, int], None] | None = None,
        on_estimate: Callable[[int, int, torch.Tensor], None] | None = None,
        estimate_every: set[int] | None = None,
    ) -> torch.Tensor:
        """Deblur `image` (1, 3, H, W) in [0, 1]; returns (samples, 3, H, W) in [0, 1].

        On CUDA out-of-memory the whole image is retried with half the tile size.
        """
        while True:
            try:
                return self._restore(image, options, generators, on_step, on_estimate, estimate_every)
            except torch.cuda.OutOfMemoryError:  # (an alias of torch.OutOfMemoryError in newer releases)
                if self.device.type != "cuda":
                    raise
                current = self._tile_size(options.samples)
                if current // 2 < MIN_TILE:
                    raise
                torch.cuda.empty_cache()
                self.tile = current // 2

    def _restore(self, image, options, generators, on_step, on_estimate, estimate_every):
        S = options.samples if options.steps > 0 else 1
        H, W = image.shape[-2:]
        tile = self._tile_size(S)
        overlap = min(self.overlap, tile // 2)
        ph, pw = pad_amounts(H, W, tile, self.multiple)
        self._check_full_image_memory(H + ph, W + pw, S if options.steps > 0 else 0)
        y = pad_image(image.to(self.device, torch.float32) * 2.0 - 1.0, ph, pw)
        grid = TileGrid.build(y.shape[-2], y.shape[-1], tile, overlap, device=self.device, multiple=self.multiple)

        # Tiles and samples go through the network together. The tile size was chosen
        # for S samples of one full tile; smaller (edge-clipped) tiles batch up to that.
        per_batch = max(1, (tile * tile) // (grid.tile_h * grid.tile_w))
        x_init = grid.apply(self._predict_tiles, [y], per_batch)
        schedule = options.schedule()
        if schedule is None:
            return ((x_init[..., :H, :W] + 1.0) / 2.0).clamp(0.0, 1.0)

        if generators is None:
            generators = [torch.Generator(device=self.device) for _ in range(S)]
            for i, g in enumerate(generators):
                g.manual_seed(i)
        if len(generators) != S:
            raise ValueError(f"need one generator per sample ({S}), got {len(generators)}")

        shape = y.shape[1:]

        def noise(_like: torch.Tensor) -> torch.Tensor:
            return torch.stack([torch.randn(shape, generator=g, device=self.device) for g in generators])

        def denoise(z: torch.Tensor, level: float) -> torch.Tensor:
            return grid.apply(self._denoise_tiles(level), [z, y, x_init], per_batch)

        def clip(x0: torch.Tensor) -> torch.Tensor:
            # Keep g(y) + x0 inside the valid image range.
            return (x_init + x0).clamp(-1.0, 1.0) - x_init

        def callback(info: StepInfo) -> None:
            if on_step is not None:
                on_step(info.index, info.total)
            if on_estimate is not None and estimate_every and info.index in estimate_every:
                est = ((x_init + info.x0)[..., :H, :W] + 1.0) / 2.0
                on_estimate(info.index, info.total, est.clamp(0.0, 1.0))

        if on_estimate is not None and estimate_every and 0 in estimate_every:
            on_estimate(0, schedule.steps, ((x_init[..., :H, :W] + 1.0) / 2.0).clamp(0.0, 1.0))
        z = initial_state(schedule, noise(y))
        sampler = SAMPLERS[options.sampler]
        z0 = sampler(denoise, schedule, z, noise, clip=clip, callback=callback)
        return ((x_init + z0)[..., :H, :W] + 1.0).div(2.0).clamp(0.0, 1.0)
