"""`Restorer`: the reusable deblurring engine behind the CLI.

It owns a model on a device and runs, over overlapping tiles, the initial predictor
once and then the reverse diffusion of the residual *step-synchronously*: at each
step every tile of the current full-image z_t is denoised, the tile outputs are
blended into one full-image noise estimate, and the sampler update and the noise draw
happen on the full image. Overlapping tiles therefore always agree and no seams form.

Every model family answers the same few questions (DvSR in models/dvsr.py, HI-Diff in
models/hidiff.py): `diffuses_pixels` (is there an image-space chain), `has_deterministic_path`
(do 0 steps restore anything), `predict(y, prior)` (the deterministic image estimate of a tile), `denoise(...)` (one step of that chain),
`refiner` / `refine(y, d, k)` (the kernel path's estimate from a tile, its deconvolution and the kernel; DvSR),
`guide(y)` / `guidance` (per-tile conditioning computed once, MSGD), `image_prior(y, noise,
steps)` (a per-image prior shared by all tiles, HI-Diff), and the memory estimates
`activation_bytes_per_pixel()` and `cached_bytes_per_pixel()`.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass, replace
from typing import Callable, NamedTuple

import numpy as np
import torch
from torch.nn import functional as F

from .devices import autocast, available_memory
from .diffusion import SAMPLERS, NoiseSchedule, StepInfo, initial_state
from .errors import OutOfMemoryError
from .kernel_path import KernelChoice, KernelReport, decide, deconvolution
from .models import DvSR, HIDiff
from .models.guidance import Guidance
from .tiling import TileGrid, pad_amounts, pad_image

MIN_TILE = 64
# On a CPU, a photo over this many pixels gets tiles whose estimated activations stay
# under LARGE_PHOTO_TILE_BUDGET (~512 px for the medium model instead of 1024): there the
# full-image buffers dominate memory, and 1024 px tiles would add ~0.5-0.7 GB of
# activations (and allocator fragmentation) for ~7% more speed.
LARGE_PHOTO = 4_000_000
LARGE_PHOTO_TILE_BUDGET = 256 << 20


@dataclass(frozen=True)
class SamplingOptions:
    steps: int = 20
    noise_ceiling: float = 0.2
    sampler: str = "ddpm"
    samples: int = 1
    # Geometric self-ensemble: sample i is restored from the input mirrored by flip
    # i mod `flips` (none, left-right, up-down, both) and mirrored back, so an average
    # of samples also averages the networks over mirror images (1, 2 or 4).
    flips: int = 1

    def schedule(self) -> NoiseSchedule | None:
        return NoiseSchedule(self.steps, self.noise_ceiling) if self.steps > 0 else None


FLIP_DIMS = ((), (-1,), (-2,), (-2, -1))  # none, left-right, up-down, both (each its own inverse)


def _flipped(x: torch.Tensor, flip: int) -> torch.Tensor:
    return torch.flip(x, FLIP_DIMS[flip]) if flip else x


class Deconvolved(NamedTuple):
    """The kernel path's deconvolution of a photo, (1, 3, H, W) float32 in [0, 1], and the
    (k, k) kernel it was made with (the refiner's condition)."""

    pixels: torch.Tensor
    kernel: torch.Tensor

    def flipped(self, flip: int) -> "Deconvolved":
        # A mirrored photo was blurred by the mirrored kernel.
        return Deconvolved(_flipped(self.pixels, flip), _flipped(self.kernel, flip))


def key_bytes(key: str) -> bytes:
    """A seed key's bytes: a file name's own bytes (os.fsencode: a name that is not valid
    UTF-8 reaches Python with surrogate escapes), the same as UTF-8 for every valid name, so
    seeds stay as they were; any other lone surrogate is kept as its code point's bytes."""
    try:
        return key.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return key.encode("utf-8", "surrogatepass")


def sample_generators(seed: int, key: str, n: int, device: torch.device) -> list[torch.Generator]:
    """One generator per sample, derived from (seed, image key, sample index) only.

    So a sample's noise does not depend on how many samples or which other images are
    in the run. The key is the input's file name.
    """
    seq = np.random.SeedSequence([seed & 0xFFFFFFFFFFFFFFFF, zlib.crc32(key_bytes(key))])
    gens = []
    for child in seq.spawn(n):
        g = torch.Generator(device=device)
        g.manual_seed(int(child.generate_state(1, dtype=np.uint64)[0] >> 1))
        gens.append(g)
    return gens


def estimate_bytes_per_pixel(model) -> float:
    """Rough peak activation bytes per input pixel of one network pass (the family knows)."""
    return model.activation_bytes_per_pixel()


def guidance_bytes_per_pixel(model) -> float:
    """Bytes per input pixel that the model keeps from the first step to the last (MSGD's
    structure guidance; 0 for models without): the family knows."""
    return model.cached_bytes_per_pixel()


# A per-image prior (HI-Diff) is computed from the whole photo, area-downscaled to at
# most this many pixels: its encoder pools the image into 16 tokens anyway, and a 24 MP
# photo at full size would cost its encoder ~1 GB of activations for the same tokens.
PRIOR_MAX_PIXELS = 1 << 20


class Restorer:
    def __init__(
        self,
        model: DvSR | HIDiff,
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
        # Jobs that may run on this restorer at once (a server's workers): each sizes its
        # tiles from its share of the memory, so together they fit.
        self.concurrent_jobs = 1

    # ---- tile sizing -------------------------------------------------------------
    def auto_tile(self, batch: int, pixels: int = 0) -> int:
        """Largest tile whose activations fit a share of the available memory (and, on a
        CPU, a small fixed budget for photos over LARGE_PHOTO pixels)."""
        share = 0.5 if self.device.type == "cuda" else 0.25
        budget = available_memory(self.device) * share / max(1, self.concurrent_jobs)
        if self.device.type == "cpu":
            budget = min(budget, 3 << 30)  # beyond this, bigger tiles buy no CPU speed
            if pixels > LARGE_PHOTO:
                budget = min(budget, LARGE_PHOTO_TILE_BUDGET)
        side = math.sqrt(budget / (estimate_bytes_per_pixel(self.model) * max(1, batch)))
        cap = 2048 if self.device.type == "cuda" else 1024
        side = int(min(max(side, MIN_TILE), cap))
        step = max(self.multiple, 32)
        return max(step, side // step * step)

    def _tile_size(self, batch: int, pixels: int = 0) -> int:
        tile = self.tile or self.auto_tile(batch, pixels)
        m = self.multiple
        return max(m, tile // m * m)

    # ---- network calls -------------------------------------------------------------
    def _cl(self, x: torch.Tensor) -> torch.Tensor:
        return x.contiguous(memory_format=self.memory_format)

    @staticmethod
    def _unit(pixels: torch.Tensor) -> torch.Tensor:
        """Input pixels as float32 in [0, 1] (the same division as the image reader's)."""
        if pixels.dtype == torch.uint8:
            return pixels.float() / 255.0
        if pixels.dtype == torch.uint16:
            return pixels.float() / 65535.0
        return pixels.to(torch.float32)

    @staticmethod
    def _signed(pixels: torch.Tensor) -> torch.Tensor:
        """A tile of the input in the networks' [-1, 1] range.

        The full image stays in its compact source form (uint8 / uint16 / float in
        [0, 1]); each tile is converted when it is used, with the same arithmetic as
        converting the whole image first, so the values are the same.
        """
        return Restorer._unit(pixels) * 2.0 - 1.0

    def _predict_tiles(self, crops: list[torch.Tensor]) -> torch.Tensor:
        y = self._signed(crops[0])
        with autocast(self.device, self.precision):
            return self.model.predict(self._cl(y))

    def _refine_tiles(self, crops: list[torch.Tensor], kernel: torch.Tensor) -> torch.Tensor:
        """The refiner on tiles of the input and of its deconvolution (float32 in [0, 1]),
        with the (k, k) kernel the photo was deconvolved with."""
        y, d = self._signed(crops[0]), crops[1] * 2.0 - 1.0
        with autocast(self.device, self.precision):
            return self.model.refine(self._cl(y), self._cl(d), kernel)

    @torch.inference_mode()
    def _predict_whole(self, pixels: torch.Tensor) -> torch.Tensor:
        """(1, 3, h, w) float32 in [0, 1] (a small crop, one pass) -> the predictor's estimate,
        the same in [0, 1], on the CPU (the kernel path's recognised-blur check)."""
        h, w = pixels.shape[-2:]
        ph, pw = -h % self.multiple, -w % self.multiple
        x = pad_image(pixels.to(self.device), ph, pw)
        out = self._predict_tiles([x]).float()[..., :h, :w]
        return out.add(1.0).div(2.0).clamp(0.0, 1.0).cpu()

    def _guide_tiles(self, pixels: torch.Tensor) -> Guidance:
        y = self._signed(pixels)
        with autocast(self.device, self.precision):
            return self.model.guide(self._cl(y))

    def _denoise_tiles(self, level: float):
        def fn(crops: list[torch.Tensor], guidance: Guidance | None = None) -> torch.Tensor:
            z, pixels, x_init = crops
            lv = torch.full((z.shape[0],), level, device=z.device)
            y = self._signed(pixels)
            if guidance is not None:  # one per tile; the crops hold each tile's samples in a row
                guidance = guidance.repeat(z.shape[0] // guidance.batch)
            with autocast(self.device, self.precision):
                return self.model.denoise(self._cl(z), lv, self._cl(y), self._cl(x_init), guidance)

        return fn

    def samples_at_once(self, h: int, w: int, samples: int, total: int | None = None) -> int:
        """How many samples to run together on an h x w image so that the full-image
        buffers fit in memory (tiles bound only the networks' activations).

        All at once when they fit; otherwise a smaller group at a time, the finished
        samples held apart; an `OutOfMemoryError` up front, before anything is allocated,
        when not even one at a time fits. `total`: the samples of the whole image when
        these are one part of them (mirrored runs), all of whose results are held.
        """
        if self.device.type != "cpu":
            return samples  # CUDA out-of-memory is retried with smaller tiles instead
        px = h * w * 12  # one float32 RGB buffer
        have = available_memory(self.device)
        per_px = estimate_bytes_per_pixel(self.model)

        def activations(n: int) -> float:  # n samples of one tile go through the networks together
            t = self._tile_size(n, h * w)
            return per_px * min(t, h) * min(t, w) * n

        # The input (at most float32), g(y), the output and its encoding, plus per sample
        # z_t and the x0 / noise buffer; in groups, the finished samples come on top.
        total = samples if total is None else total

        guide = guidance_bytes_per_pixel(self.model) * h * w

        def need(n: int, grouped: bool) -> float:
            return px * (4 + 2 * n + (total if grouped else 0)) + activations(n) + guide

        if need(samples, samples < total) <= have:
            return samples
        group = samples - 1
        while group >= 1 and need(group, True) > have:
            group = group // 2 if group > 16 else group - 1
        if group < 1:
            raise OutOfMemoryError(
                f"needs about {need(total, False) / 2**30:.1f} GiB for {total} sample(s) at {w}x{h} "
                f"({need(1, True) / 2**30:.1f} GiB even one at a time), {have / 2**30:.1f} GiB available; "
                "use fewer --samples (or a smaller image or --region)"
            )
        return group

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
        on_note: Callable[[str], None] | None = None,
        kernel: KernelChoice | None = None,
        on_kernel: Callable[[KernelReport], None] | None = None,
    ) -> torch.Tensor:
        """Deblur `image` (1, 3, H, W): float in [0, 1], or uint8 / uint16 pixels (kept in
        that compact form; tiles are converted as they are used). Returns (samples, 3, H, W)
        float32 in [0, 1].

        `kernel` (kernel_path.KernelChoice): "auto" estimates the photo's blur kernel and,
        where the guard finds that it explains the photo, deconvolves the photo with it and
        starts the networks from that deconvolution instead of the predictor's estimate (the
        kernel path); "given" does so with the caller's kernel; "none" or None is the blind
        path. `on_kernel` hears which path was taken and why.

        Samples that do not fit in memory together run in groups (`samples_at_once`;
        `on_note` hears about it), and mirrored samples (`options.flips`) in a run of their
        own: each sample keeps its own noise, so grouping changes only the float rounding
        of batched convolutions. On CUDA out-of-memory the whole image
        is retried with half the tile size.
        """
        if options.steps == 0 and not self.model.has_deterministic_path:
            # icDPM / MSGD: `predict` is 0, so 0 steps would return a flat grey image.
            raise ValueError("this model has no predictor (it samples the image itself): 0 steps restore nothing")
        S = options.samples if options.steps > 0 else 1
        H, W = image.shape[-2:]
        m = self.multiple
        if not 1 <= options.flips <= len(FLIP_DIMS):
            raise ValueError(f"flips must be 1 to {len(FLIP_DIMS)}, got {options.flips}")
        n_flips = min(options.flips, S)
        deconv = None
        if kernel is not None:
            report = decide(image, kernel, supported=self.model.diffuses_pixels and self.model.has_deterministic_path,
                            predictor=self._predict_whole)
            if on_kernel is not None:
                on_kernel(report)
            if report.path == "kernel":
                deconv = Deconvolved(deconvolution(image, report.kernel, report.estimated),
                                     torch.from_numpy(np.ascontiguousarray(report.kernel, np.float32)))
        passes = []  # (flip, sample indices) of each run of the networks over the image
        grouped = None
        for flip in range(n_flips):
            idx = list(range(flip, S, n_flips))
            group = self.samples_at_once(-(-H // m) * m, -(-W // m) * m, len(idx), S)
            if group < len(idx):
                grouped = group
            passes += [(flip, idx[i : i + group]) for i in range(0, len(idx), group)]
        if len(passes) == 1:
            return self._retrying(image, options, generators, on_step, on_estimate, estimate_every, deconv)
        if grouped is not None and on_note is not None:
            need = H * W * 12 * (4 + 2 * -(-S // n_flips))
            on_note(f"{S} samples at {W}x{H} need about {need / 2**30:.1f} GiB at once, more than is available: "
                    f"restoring them {grouped} at a time (the initial prediction is repeated for each group)")
        if generators is None:
            generators = self._default_generators(S)
        out = None
        for k, (flip, idx) in enumerate(passes):
            step = None if on_step is None else (lambda i, t, k=k: on_step(k * t + i, t * len(passes)))
            part = self._retrying(_flipped(image, flip), replace(options, samples=len(idx), flips=1),
                                  [generators[i] for i in idx], step, on_estimate if k == 0 else None, estimate_every,
                                  None if deconv is None else deconv.flipped(flip))
            if out is None:
                out = torch.empty((S, *part.shape[1:]), device=part.device)
            out[idx] = _flipped(part, flip)
            del part
        return out

    def _default_generators(self, n: int) -> list[torch.Generator]:
        generators = [torch.Generator(device=self.device) for _ in range(n)]
        for i, g in enumerate(generators):
            g.manual_seed(i)
        return generators

    def _retrying(self, image, options, generators, on_step, on_estimate, estimate_every, deconv=None):
        while True:
            try:
                return self._restore(image, options, generators, on_step, on_estimate, estimate_every, deconv)
            except torch.cuda.OutOfMemoryError:  # (an alias of torch.OutOfMemoryError in newer releases)
                if self.device.type != "cuda":
                    raise
                current = self._tile_size(options.samples, image.shape[-2] * image.shape[-1])
                if current // 2 < MIN_TILE:
                    raise
                torch.cuda.empty_cache()
                self.tile = current // 2

    def _tiled(self, image: torch.Tensor, samples: int) -> tuple[torch.Tensor, TileGrid, int, bool]:
        """The image on the device, padded as the tiles need, its tile grid, the tiles per
        network batch, and whether it was padded."""
        H, W = image.shape[-2:]
        tile = self._tile_size(samples, H * W)
        overlap = min(self.overlap, tile // 2)
        ph, pw = pad_amounts(H, W, tile, self.multiple)
        pixels = image.to(self.device)
        if ph or pw:  # (padding copies the image anyway; integer pads are not all implemented)
            pixels = pad_image(self._unit(pixels), ph, pw)
        grid = TileGrid.build(pixels.shape[-2], pixels.shape[-1], tile, overlap, device=self.device, multiple=self.multiple)
        # Tiles and samples go through the network together. The tile size was chosen
        # for S samples of one full tile; smaller (edge-clipped) tiles batch up to that.
        per_batch = max(1, (tile * tile) // (grid.tile_h * grid.tile_w))
        return pixels, grid, per_batch, bool(ph or pw)

    @torch.inference_mode()
    def guidance_maps(self, image: torch.Tensor) -> list[torch.Tensor]:
        """The structure guidance's regression outputs -- its estimate of the grey sharp
        image at 1/s for each scale s (MSGD Fig. 4) -- for `image` (1, 3, H, W) as in
        `restore`: a list of (1, 1, ceil(H/s), ceil(W/s)) float32 in [0, 1], tiled like
        a restore (each tile's maps blended across the overlaps)."""
        if self.model.guidance is None:
            raise ValueError("this model has no structure guidance")
        H, W = image.shape[-2:]
        pixels, grid, per_batch, _ = self._tiled(image, 1)
        scales = self.model.config.guidance.scales

        def fn(crops: list[torch.Tensor]) -> torch.Tensor:
            # Each scale's map is held at full tile resolution (each value repeated s x s)
            # so the tiles blend like any other output; the mean over each s x s block
            # then gives the map back exactly where a single tile covers it.
            g = self._guide_tiles(crops[0])
            return torch.cat([F.interpolate(r.float(), scale_factor=s, mode="nearest") if s > 1 else r.float()
                              for r, s in zip(g.regression, scales, strict=True)], dim=1)

        full = grid.apply(fn, [pixels], per_batch)[..., :H, :W]
        maps = []
        for i, s in enumerate(scales):
            m = full[:, i : i + 1]
            if s > 1:  # sides that are not a multiple of s: the last row / column is repeated
                m = F.avg_pool2d(F.pad(m, (0, -W % s, 0, -H % s), mode="replicate"), s)
            maps.append(((m + 1.0) / 2.0).clamp(0.0, 1.0).contiguous())
        return maps

    def _prior_input(self, image: torch.Tensor) -> torch.Tensor:
        """The whole image for the per-image prior, signed, area-downscaled to at most
        PRIOR_MAX_PIXELS (in bands, so no full-size float copy is made) and padded to
        the prior encoder's multiple."""
        H, W = image.shape[-2:]
        f = max(1, math.ceil(math.sqrt(H * W / PRIOR_MAX_PIXELS)))
        band = f * max(1, 1024 // f)
        parts = []
        for top in range(0, H, band):
            x = self._signed(image[..., top : top + band, :].to(self.device))
            parts.append(F.avg_pool2d(x, f, ceil_mode=True) if f > 1 else x)
        x = torch.cat(parts, dim=-2)
        m = self.multiple
        return pad_image(x, -x.shape[-2] % m, -x.shape[-1] % m)

    def _restore_by_prior(self, image, options, generators, on_step):
        """Families with a per-image prior (HI-Diff): S prior samples of the whole image,
        then every tile restored under each of them. `options.steps` is the prior chain's T
        (0: the model's own T on its deterministic path, one result)."""
        S = options.samples if options.steps > 0 else 1
        H, W = image.shape[-2:]
        pixels, grid, per_batch, padded = self._tiled(image, S)
        y = self._cl(self._prior_input(image))
        noise = None
        if options.steps > 0:
            if generators is None:
                generators = self._default_generators(S)
            if len(generators) != S:
                raise ValueError(f"need one generator per sample ({S}), got {len(generators)}")
            shape = self.model.noise_shape(1)[1:]
            draws = [torch.randn((options.steps, *shape), generator=g, device=self.device) for g in generators]
            noise = [torch.stack([d[t] for d in draws]) for t in range(options.steps)]
        with autocast(self.device, self.precision):
            priors = self.model.image_prior(y, noise, options.steps or None)
        if on_step is not None:
            on_step(1, 1)

        def fn(crops: list[torch.Tensor]) -> torch.Tensor:
            # The crops hold each tile's S samples in a row: prior s goes with sample s.
            y_tile = self._signed(crops[0])
            with autocast(self.device, self.precision):
                return self.model.predict(self._cl(y_tile), priors.repeat(y_tile.shape[0] // S, 1, 1))

        out = grid.apply(fn, [pixels.expand(S, -1, -1, -1)], per_batch)
        out = out[..., :H, :W].add_(1.0).div_(2.0).clamp_(0.0, 1.0)
        return out.contiguous() if padded else out

    def _restore(self, image, options, generators, on_step, on_estimate, estimate_every, deconv=None):
        if not self.model.diffuses_pixels:
            if on_estimate is not None:
                raise ValueError("this model has no image-space chain to show intermediate estimates of")
            return self._restore_by_prior(image, options, generators, on_step)
        S = options.samples if options.steps > 0 else 1
        H, W = image.shape[-2:]
        pixels, grid, per_batch, padded = self._tiled(image, S)
        if deconv is None:
            x_init = grid.apply(self._predict_tiles, [pixels], per_batch)
        else:  # the kernel path: the deconvolution, refined where the model has a refiner, is the initial estimate
            d = deconv.pixels.to(self.device, torch.float32)
            if padded:
                d = pad_image(d, pixels.shape[-2] - H, pixels.shape[-1] - W)
            if self.model.refiner is None:
                x_init = d.mul(2.0).sub_(1.0)
            else:
                kernel = deconv.kernel.to(self.device)
                x_init = grid.apply(lambda crops: self._refine_tiles(crops, kernel), [pixels, d], per_batch)
            del d
        schedule = options.schedule()
        if schedule is None:
            out = x_init[..., :H, :W].add_(1.0).div_(2.0).clamp_(0.0, 1.0)
            return out.contiguous() if padded else out

        if generators is None:
            generators = self._default_generators(S)
        if len(generators) != S:
            raise ValueError(f"need one generator per sample ({S}), got {len(generators)}")

        def noise(buffer: torch.Tensor) -> torch.Tensor:
            # Each sample's draws fill its slice in place: the same numbers as
            # torch.randn(slice shape, generator=g), without a second buffer.
            for b, g in zip(buffer, generators, strict=True):
                b.normal_(generator=g)
            return buffer

        # The structure guidance depends on the input only: computed once per tile here and
        # reused at every step (None for unguided models).
        guides = None
        if self.model.guidance is not None:
            guides = [self._guide_tiles(grid.crops(pixels, start, per_batch)).for_sampling()
                      for start in grid.chunk_starts(per_batch)]

        def denoise(z: torch.Tensor, level: float) -> torch.Tensor:
            return grid.apply(self._denoise_tiles(level), [z, pixels, x_init], per_batch, guides)

        def clip(x0: torch.Tensor) -> torch.Tensor:
            # Keep g(y) + x0 inside the valid image range (in place).
            return x0.add_(x_init).clamp_(-1.0, 1.0).sub_(x_init)

        def callback(info: StepInfo) -> None:
            if on_step is not None:
                on_step(info.index, info.total)
            if on_estimate is not None and estimate_every and info.index in estimate_every:
                est = ((x_init + info.x0)[..., :H, :W] + 1.0) / 2.0
                on_estimate(info.index, info.total, est.clamp(0.0, 1.0))

        if on_estimate is not None and estimate_every and 0 in estimate_every:
            on_estimate(0, schedule.steps, ((x_init[..., :H, :W] + 1.0) / 2.0).clamp(0.0, 1.0))
        z = initial_state(schedule, noise(torch.empty((S, *pixels.shape[1:]), device=self.device)))
        sampler = SAMPLERS[options.sampler]
        z0 = sampler(denoise, schedule, z, noise, clip=clip, callback=callback)
        del z
        out = z0.add_(x_init)[..., :H, :W].add_(1.0).div_(2.0).clamp_(0.0, 1.0)
        return out.contiguous() if padded else out
