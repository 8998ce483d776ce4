"""The Python API: load a model once, restore many images.

    from deblurkit import Deblurrer

    deblurrer = Deblurrer()                      # the bundled default model, CPU or GPU
    sharp = deblurrer.restore(blurry)            # numpy / PIL / torch in, the same kind out
    result = deblurrer.restore(blurry, preset="distortion", samples=4, return_samples=True, return_std=True)

The CLI is a thin layer over this class: for the same model, settings, seed and `key`
(the CLI uses the input's file name), the API and the CLI produce identical pixels.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from .devices import check_precision, resolve_device, resolve_precision
from .errors import UsageError
from .io.arrays import unpack_image
from .presets import DEFAULT_PRESET, PRESETS, Settings, check_settings, resolve_settings
from .kernel_path import KernelChoice, KernelReport, kernel_choice
from .restorer import Restorer, SamplingOptions, sample_generators
from .weights import ResolvedWeights, load_checkpoint, load_registry, resolve_weights


@dataclass
class Restoration:
    """`restore(..., return_samples=True or return_std=True)`: everything a run made."""

    image: Any  # the result: the samples' mean when averaged, else the first sample; same kind as the input
    samples: list[Any] | None  # every sample, same kind as the input (None unless asked)
    std: np.ndarray | None  # (H, W) float32 per-pixel std over samples, mean over channels
    settings: Settings
    seed: int
    kernel: KernelReport | None = None  # which path the photo took (kernel or blind), and the kernel



def recommended_preset(model: str | None, weights: str | None) -> str:
    """The registry's recommended preset for a model (no weights file is read)."""
    if weights:
        return DEFAULT_PRESET
    reg = load_registry()
    name = model or reg.default
    entry = reg.get(name) if name else None
    if entry is not None and entry.preset is not None:
        if entry.preset not in PRESETS:
            raise UsageError(f"weights.toml: model {name!r} recommends unknown preset {entry.preset!r}")
        return entry.preset
    return DEFAULT_PRESET


class Deblurrer:
    """A model on a device, ready to restore images of any size (tiled).

    model: a name from weights.toml (default: the registry's default model); weights: a
    checkpoint file or hf://OWNER/REPO/FILE[@REV] instead. device: auto, cpu, cuda[:N],
    mps. precision: fp32, bf16 or fp16 (autocast; the sampler arithmetic stays fp32), or
    auto: bf16 where the CPU or GPU runs it natively, else fp32.
    tile / overlap: tile side (default: sized from free memory) and blended overlap.
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        weights: str | Path | None = None,
        device: str | torch.device = "auto",
        precision: str = "auto",
        tile: int | None = None,
        overlap: int = 32,
    ):
        weights = str(weights) if weights is not None else None
        dev = device if isinstance(device, torch.device) else resolve_device(device)
        precision = resolve_precision(precision, dev)
        check_precision(precision, dev)
        if tile is not None and tile < 16:
            raise UsageError(f"--tile {tile}: must be >= 16 pixels")
        if overlap < 0 or (tile is not None and overlap >= tile):
            raise UsageError(f"--overlap {overlap}: must be in [0, tile)" + (f" = [0, {tile})" if tile else ""))
        self.recommended_preset = recommended_preset(model, weights)
        self.weights: ResolvedWeights = resolve_weights(model, weights)
        checkpoint = load_checkpoint(self.weights.path)
        self.model_name = self.weights.entry.name if self.weights.entry else self.weights.path.name
        self.restorer = Restorer(checkpoint.model, dev, precision, tile=tile, overlap=overlap)

    @property
    def device(self) -> torch.device:
        return self.restorer.device

    @property
    def precision(self) -> str:
        """The precision in use (`auto` resolved)."""
        return self.restorer.precision

    def settings(self, preset: str | None = None, *, wants_samples: bool = False, **overrides) -> Settings:
        """The effective settings for a preset (default: the model's) and overrides."""
        return resolve_settings(preset, self.recommended_preset, wants_samples=wants_samples, **overrides)

    def sampling_options(self, settings: Settings, trajectory: bool = False) -> SamplingOptions:
        """What the restorer runs for these settings, in the model family's terms.

        Pixel-diffusion models (dvsr, icdpm, msgd) take the settings as they are. A model
        with a latent prior (hidiff) has no image-space chain: --steps sets its prior
        chain's T (a preset's steps mean the model's own T, and 0 its deterministic
        path), samples and averaging are over prior samples, and the noise ceiling,
        sampler and intermediate estimates do not apply (asking for them is an error).
        """
        if settings.steps == 0 and not self.restorer.model.has_deterministic_path:
            what = "--steps 0" if "--steps" in settings.overridden_by else f"preset {settings.preset!r} (0 steps)"
            raise UsageError(f"{what}: {self.model_name} has no predictor (it samples the image itself); "
                             "give --steps N or a sampled preset (balanced, perception, distortion)")
        if trajectory and settings.steps == 0:
            what = "--steps 0" if "--steps" in settings.overridden_by else f"preset {settings.preset!r} (0 steps)"
            raise UsageError(f"--save-trajectory: {what} runs no reverse chain, so there are no intermediate estimates "
                             "to save; give --steps N or a sampled preset")
        if self.restorer.model.diffuses_pixels:
            return SamplingOptions(settings.steps, settings.noise_ceiling, settings.sampler, settings.samples, settings.flips)
        name = self.model_name
        for flag in ("--noise-ceiling", "--sampler"):
            if flag in settings.overridden_by:
                raise UsageError(f"{flag}: does not apply to {name} (a latent-prior model: --steps sets its prior chain's T)")
        if trajectory:
            raise UsageError(f"--save-trajectory: {name} has no image-space chain to show (its diffusion runs on 16 prior tokens)")
        steps = settings.steps
        if "--steps" not in settings.overridden_by and steps > 0:
            steps = self.restorer.model.config.latent_steps
        return SamplingOptions(steps, settings.noise_ceiling, "ddpm", settings.samples, settings.flips)

    def restore_tensor(
        self,
        x: torch.Tensor,
        settings: Settings,
        seed: int = 0,
        key: str = "",
        on_step: Callable[[int, int], None] | None = None,
        on_estimate: Callable[[int, int, torch.Tensor], None] | None = None,
        estimate_every: set[int] | None = None,
        on_note: Callable[[str], None] | None = None,
        kernel: KernelChoice | None = None,
        on_kernel: Callable[[KernelReport], None] | None = None,
    ) -> torch.Tensor:
        """(1, 3, H, W) float in [0, 1] (or uint8 / uint16 pixels) -> (samples, 3, H, W) in
        [0, 1], on the device. `on_note` hears what the user should know (e.g. samples
        restored in groups to fit in memory). `kernel`: the kernel step (kernel_path; None
        or mode "none": the blind path); `on_kernel` hears the path taken.

        Each sample's noise comes from (seed, key, sample index) alone, so it does not
        depend on the other images or samples of a run.
        """
        sampling = self.sampling_options(settings)
        n = settings.samples if settings.steps > 0 else 1
        gens = sample_generators(seed, key, n, self.device) if settings.steps > 0 else None
        return self.restorer.restore(x, sampling, gens, on_step=on_step, on_estimate=on_estimate,
                                     estimate_every=estimate_every, on_note=on_note, kernel=kernel, on_kernel=on_kernel)

    @property
    def has_guidance(self) -> bool:
        """Whether the model has structure guidance (MSGD) whose maps `guidance_maps` shows."""
        return self.restorer.model.guidance is not None

    def guidance_maps(self, image) -> dict[int, np.ndarray]:
        """The structure guidance's estimate of the grey sharp image at each scale s (MSGD
        Fig. 4): {s: (ceil(H/s), ceil(W/s)) float32 in [0, 1]}. Guided models only."""
        if not self.has_guidance:
            raise UsageError(f"model {self.model_name} has no structure guidance (an msgd model, or dvsr trained with --guidance, has)")
        x = unpack_image(image).rgb if not isinstance(image, torch.Tensor) or image.ndim != 4 else image
        maps = self.restorer.guidance_maps(x)
        scales = self.restorer.model.config.guidance.scales
        return {s: m[0, 0].float().cpu().numpy() for s, m in zip(scales, maps, strict=True)}

    def restore(
        self,
        image,
        preset: str | None = None,
        *,
        steps: int | None = None,
        samples: int | None = None,
        average: bool | None = None,
        noise_ceiling: float | None = None,
        sampler: str | None = None,
        flips: int | None = None,
        seed: int = 0,
        key: str = "",
        return_samples: bool = False,
        return_std: bool = False,
        on_step: Callable[[int, int], None] | None = None,
        kernel: Any = None,
        kernel_size: int | None = None,
        kernel_region: tuple[int, int, int, int] | None = None,
    ):
        """Deblur one image; returns the same kind of image (or a `Restoration`).

        Without return_samples / return_std, several samples need average=True (their
        mean is returned); with either, a `Restoration` holds the result, the samples and
        the std map. `key` names the image for seeding (the CLI passes the file name).

        kernel: "auto" (estimate the blur kernel; where it explains the photo, deconvolve and
        refine that: the kernel path), "none" (the blind predictor alone; the default, or
        "auto" where kernel_size or kernel_region is given), a kernel array or a kernel
        image's path (a known PSF). kernel_size: the largest kernel looked for, px;
        kernel_region: x, y, w, h to estimate it on. The `Restoration` says which path.
        """
        if not 0 <= seed < 2**64:
            raise UsageError(f"seed {seed}: must be in [0, 2^64)")
        s = self.settings(preset, steps=steps, samples=samples, average=average, noise_ceiling=noise_ceiling,
                          sampler=sampler, flips=flips, wants_samples=return_std)
        check_settings(s, std=return_std)
        if s.samples > 1 and not s.average and not (return_samples or return_std):
            raise UsageError(f"samples={s.samples} without average=True: pass average=True for their mean, "
                             "or return_samples=True for each of them")
        if kernel is None:
            kernel = "auto" if kernel_size is not None or kernel_region is not None else "none"
        choice = self.kernel_choice(kernel, kernel_size, kernel_region)
        unpacked = unpack_image(image)
        reports: list[KernelReport] = []
        out = self.restore_tensor(unpacked.rgb, s, seed, key, on_step=on_step, kernel=choice, on_kernel=reports.append)
        result = unpacked.repack(out.mean(dim=0) if (s.average or out.shape[0] == 1) else out[0])
        if not (return_samples or return_std):
            return result
        std = out.std(dim=0, unbiased=False).mean(dim=0).float().cpu().numpy() if return_std else None
        listed = [unpacked.repack(o) for o in out] if return_samples else None
        return Restoration(result, listed, std, s, seed, reports[0] if reports else None)

    @staticmethod
    def kernel_choice(kernel: Any = "auto", size: int | None = None, region=None) -> KernelChoice:
        """The kernel options as the restorer takes them (UsageError where they are wrong)."""
        try:
            return kernel_choice(kernel, size, region)
        except ValueError as e:
            raise UsageError(str(e)) from None

    def estimate_kernel(self, image, size: int | None = None, region: tuple[int, int, int, int] | None = None):
        """The photo's blur kernel as the kernel path estimates it (deconv.photo.KernelEstimate:
        the kernel at full resolution, sum 1, and whether the guard accepts it; `streaks` > 0
        where it was read from the photo's light streaks instead, which the guard does not
        judge). `restore`
        may still take the blind path for an accepted kernel, where the predictor recognises
        the blur (kernel_path.predictor_check); its `Restoration.kernel` says which path."""
        from .deconv.photo import estimate_photo_kernel

        self.kernel_choice("auto", size, region)
        x = unpack_image(image).rgb
        try:
            return estimate_photo_kernel(x[0].cpu().permute(1, 2, 0).numpy(), size, region)
        except ValueError as e:
            raise UsageError(str(e)) from None
