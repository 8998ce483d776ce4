"""Distortion metrics of the blurry input and of presets along the P-D curve."""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass, field, replace
from typing import Callable, Iterable

import numpy as np
import torch

from .. import __version__
from ..metrics import psnr, ssim
from ..metrics.align import aligned
from ..metrics.gmsd import gmsd
from ..metrics.niqe import has_enough_blocks, niqe
from ..presets import PRESETS, default_noise_ceiling
from ..kernel_path import KernelChoice
from ..restorer import Restorer, SamplingOptions, sample_generators
from .classical import CLASSICAL, restore_classical


BASELINES = ("wiener", "richardson-lucy")


@dataclass(frozen=True)
class Method:
    name: str
    steps: int  # -1: the blurry input itself, or a classical baseline named by `name`
    samples: int = 1
    average: bool = False
    noise_ceiling: float | None = None  # None: the default 10 / T rule
    sampler: str = "ddpm"
    flips: int = 1  # samples cycle through this many mirror images of the input

    def options(self) -> SamplingOptions:
        ceiling = default_noise_ceiling(self.steps) if self.noise_ceiling is None else self.noise_ceiling
        return SamplingOptions(self.steps, ceiling, self.sampler, self.samples, self.flips)


def sweep_methods(steps=(1, 2, 5, 10, 20, 50, 200), averaged=((1, 4), (1, 8), (1, 16), (5, 8), (10, 8)),
                  ceilings=(0.05, 0.2), ddim_steps=(5, 10, 20), ddim_averaged=((10, 4),)) -> list[Method]:
    """A perception-distortion sweep: ancestral step counts, averaged samples (steps, n),
    noise ceilings at T = 20, the deterministic DDIM sampler, plus the predictor-only and
    blurry-input points."""
    out = [Method("blurry", -1), Method("predictor", 0)]
    out += [Method(f"ddpm T={t}", t) for t in steps]
    out += [Method(f"ddpm T={t} avg{n}", t, n, True) for t, n in averaged]
    out += [Method(f"ddpm T=20 B={b:g}", 20, 1, False, b) for b in ceilings]
    out += [Method(f"ddim T={t}", t, 1, False, None, "ddim") for t in ddim_steps]
    out += [Method(f"ddim T={t} avg{n}", t, n, True, None, "ddim") for t, n in ddim_averaged]
    out += [Method(f"ddpm T=1 B=0.999 avg8 flips{f}", 1, 8, True, 0.999, "ddpm", f) for f in (1, 4)]
    return out


def grid_methods(steps: Iterable[int], ceilings: Iterable[float], predictor: bool = True,
                 pixel_chain: bool = True) -> list[Method]:
    """Every (steps T, noise ceiling B) pair as one ancestral single-sample method, plus
    the blurry input and (for models with a predictor) the predictor alone. A latent-prior
    model (no pixel chain) has no ceiling: one method per T, plus its deterministic path."""
    out = [Method("blurry", -1)] + ([Method("predictor", 0)] if predictor else [])
    if not pixel_chain:
        return out + [Method("deterministic", 0)] + [Method(f"T={t}", t) for t in steps]
    return out + [Method(f"T={t} B={b:g}", t, 1, False, b) for t in steps for b in ceilings]


def for_model(methods: list[Method], model) -> list[Method]:
    """Presets in the model family's terms (as `Deblurrer.sampling_options`): for a latent-
    prior model a preset's steps mean the model's own T; a model without a deterministic
    path (icDPM, MSGD) has no 0-step preset (the runner says which it left out)."""
    if not model.has_deterministic_path:
        methods = [m for m in methods if m.steps != 0]
    if model.diffuses_pixels:
        return methods
    T = model.config.latent_steps
    return [replace(m, steps=T) if m.steps > 0 and m.name in PRESETS else m for m in methods]


def preset_methods(names: Iterable[str]) -> list[Method]:
    out = []
    for n in names:
        if n == "blurry":
            out.append(Method("blurry", -1))
        else:
            p = PRESETS[n]
            out.append(Method(n, p.steps, p.samples, p.average, p.noise_ceiling, p.sampler, p.flips))
    return out


@dataclass
class Scores:
    psnr: list[float] = field(default_factory=list)
    ssim: list[float] = field(default_factory=list)
    seconds: list[float] = field(default_factory=list)
    niqe: list[float] = field(default_factory=list)
    lpips: list[float] = field(default_factory=list)
    gmsd: list[float] = field(default_factory=list)
    kernel_similarity: list[float] = field(default_factory=list)  # methods that estimate a kernel
    fell_back: int = 0  # pairs where the guard kept the input
    kernel_path: int = 0  # pairs a model restored on the kernel path

    def summary(self) -> dict:
        out = {"psnr": round(float(np.mean(self.psnr)), 3), "ssim": round(float(np.mean(self.ssim)), 4),
               "seconds_per_image": round(float(np.mean(self.seconds)), 3), "n": len(self.psnr)}
        # NIQE needs two 96x96 blocks; smaller crops get no value rather than a made-up one.
        out["niqe"] = round(float(np.mean(self.niqe)), 3) if self.niqe else None
        out["lpips"] = round(float(np.mean(self.lpips)), 4) if self.lpips else None
        out["gmsd"] = round(float(np.mean(self.gmsd)), 4) if self.gmsd else None
        if self.kernel_similarity:
            out["kernel_similarity"] = round(float(np.mean(self.kernel_similarity)), 4)
            out["fell_back"] = self.fell_back
        if self.kernel_path:
            out["kernel_path"] = self.kernel_path
        return out

    def group_summary(self) -> dict:
        out = {"psnr": round(float(np.mean(self.psnr)), 3), "ssim": round(float(np.mean(self.ssim)), 4), "n": len(self.psnr)}
        if self.kernel_similarity:
            out["kernel_similarity"] = round(float(np.mean(self.kernel_similarity)), 4)
        return out


def evaluate(
    restorer: Restorer | None,
    pairs: list[tuple[str, torch.Tensor, torch.Tensor]],
    methods: list[Method],
    seed: int,
    on_result: Callable[[str, str, float, float], None] | None = None,
    y_channel: bool = False,
    lpips_metric: Callable[[torch.Tensor, torch.Tensor], float] | None = None,
    kernels: dict[str, np.ndarray] | None = None,
    groups: dict[str, str] | None = None,
    align: int | None = None,
    kernel: KernelChoice | None = None,
) -> dict[str, dict]:
    """`pairs`: (name, blurry, sharp) as (1, 3, H, W) tensors in [0, 1]; `kernels`: the
    true blur kernel per pair name, for the classical rows and the kernel similarity of
    methods that estimate one; `groups`: a label per pair name (e.g. its blur kernel),
    which adds per-label PSNR/SSIM under "by_group"; `align`: score after the best shift
    within this window (metrics.align); `kernel`: the restorer's kernel step (the model
    rows' kernel path; their estimated kernels are scored like the estimate row's).
    `restorer` may be None when every method is model-free."""
    scores = {m.name: Scores() for m in methods}
    by_group: dict[str, dict[str, Scores]] = {m.name: {} for m in methods}
    for name, blurry, sharp in pairs:
        for m in methods:
            t0 = time.perf_counter()
            estimated = None
            if m.name in CLASSICAL:
                res = restore_classical(m.name, blurry[0].permute(1, 2, 0).numpy(), (kernels or {}).get(name))
                out = torch.from_numpy(res.image).float().permute(2, 0, 1)[None]
                estimated = res.kernel
                scores[m.name].fell_back += int(res.fell_back)
            elif m.name in BASELINES:
                from .baselines import deconvolve

                rgb = deconvolve(blurry[0].permute(1, 2, 0).numpy(), kernels[name], m.name)
                out = torch.from_numpy(rgb).permute(2, 0, 1)[None]
            elif m.steps < 0:
                out = blurry
            else:
                gens = sample_generators(seed, name, m.samples, restorer.device) if m.steps > 0 else None
                reports = []
                samples = restorer.restore(blurry, m.options(), gens, kernel=kernel, on_kernel=reports.append).cpu()
                if reports:
                    scores[m.name].kernel_path += int(reports[0].path == "kernel")
                    estimated = reports[0].kernel if kernel.mode == "auto" else None
                out = samples.mean(0, keepdim=True) if m.average else samples[:1]
            dt = time.perf_counter() - t0
            # NIQE needs no reference: it scores the whole output; the rest after alignment.
            if has_enough_blocks(*out.shape[-2:]):
                scores[m.name].niqe.append(niqe(out[0].permute(1, 2, 0).numpy()))
            ref = sharp
            if align:
                out, ref, _ = aligned(out, sharp, align)
            p, s = psnr(out, ref, y_channel), ssim(out, ref, y_channel)
            scores[m.name].gmsd.append(gmsd(out, ref))
            if lpips_metric is not None:
                scores[m.name].lpips.append(lpips_metric(out, ref))
            similarity = None
            if estimated is not None and kernels is not None and name in kernels:
                from ..deconv import kernel_similarity

                similarity = kernel_similarity(estimated, kernels[name])
                scores[m.name].kernel_similarity.append(similarity)
            scores[m.name].psnr.append(p)
            scores[m.name].ssim.append(s)
            scores[m.name].seconds.append(dt)
            if groups is not None:
                g = by_group[m.name].setdefault(groups[name], Scores())
                g.psnr.append(p)
                g.ssim.append(s)
                if similarity is not None:
                    g.kernel_similarity.append(similarity)
            if on_result:
                on_result(name, m.name, p, s)
    out = {k: v.summary() for k, v in scores.items()}
    if groups is not None:
        for k, gs in by_group.items():
            out[k]["by_group"] = {g: v.group_summary() for g, v in gs.items()}
    return out


def environment(device: torch.device) -> dict:
    env = {"deblur": __version__, "torch": torch.__version__, "python": platform.python_version(),
           "platform": platform.platform(), "device": str(device), "cpu_threads": torch.get_num_threads()}
    if device.type == "cuda":
        env["gpu"] = torch.cuda.get_device_name(device)
    return env
