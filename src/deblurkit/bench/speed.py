"""Speed and memory: seconds per predictor pass and per denoiser step, GFLOP, GFLOP/s."""

from __future__ import annotations

import resource
import time

import torch
from torch.utils.flop_counter import FlopCounterMode

from ..presets import PRESETS, default_noise_ceiling
from ..restorer import Restorer, SamplingOptions, sample_generators


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def network_gflop(restorer: Restorer, height: int, width: int) -> tuple[float, float]:
    """GFLOP of one predictor pass and one denoiser step on an image of this size (no tiling)."""
    m = restorer.multiple
    h, w = -(-height // m) * m, -(-width // m) * m
    # FLOPs scale with pixels; count on a small proxy and scale up to avoid a huge pass.
    ph, pw = min(h, 256), min(w, 256)
    scale = (h * w) / (ph * pw)
    x = torch.zeros(1, 3, ph, pw, device=restorer.device)
    lv = torch.full((1,), 0.5, device=restorer.device)
    model = restorer.model
    with torch.inference_mode():
        if not model.diffuses_pixels:
            # A latent-prior model: the image network under a prior, and one step of the
            # prior's chain (16 tokens: the same cost at every image size).
            prior = torch.zeros(model.noise_shape(1), device=restorer.device)
            with FlopCounterMode(display=False) as fc:
                model.predict(x, prior)
            pred = fc.get_total_flops()
            with FlopCounterMode(display=False) as fc:
                model.latent_denoiser(prior, prior, torch.full((1,), 0.5, device=restorer.device))
            return pred * scale / 1e9, fc.get_total_flops() / 1e9
        with FlopCounterMode(display=False) as fc:
            model.predict(x)
        pred = fc.get_total_flops()
        with FlopCounterMode(display=False) as fc:
            model.denoise(x, lv, x, x)
        den = fc.get_total_flops()
    return pred * scale / 1e9, den * scale / 1e9


def _timed(restorer: Restorer, x: torch.Tensor, opts: SamplingOptions) -> float:
    gens = sample_generators(0, "speed", opts.samples, restorer.device) if opts.steps > 0 else None
    _sync(restorer.device)
    t0 = time.perf_counter()
    restorer.restore(x, opts, gens)
    _sync(restorer.device)
    return time.perf_counter() - t0


def measure_size(restorer: Restorer, height: int, width: int, steps: int = 3) -> dict:
    x = torch.rand(1, 3, height, width)
    # Warm-up at the measured size: backends build kernels per shape on first use.
    _timed(restorer, x, SamplingOptions(steps=1, noise_ceiling=0.5))
    t_pred = _timed(restorer, x, SamplingOptions(steps=0))
    t_all = _timed(restorer, x, SamplingOptions(steps=steps, noise_ceiling=default_noise_ceiling(steps)))
    per_step = max(0.0, (t_all - t_pred) / steps)
    g_pred, g_step = network_gflop(restorer, height, width)
    return {
        "size": f"{width}x{height}",
        "megapixels": round(height * width / 1e6, 2),
        "predictor_s": round(t_pred, 3),
        "denoiser_step_s": round(per_step, 3),
        "predictor_gflop": round(g_pred, 1),
        "denoiser_step_gflop": round(g_step, 1),
        "predictor_gflops": round(g_pred / t_pred, 1),
        # A step under a millisecond (HI-Diff's 16-token prior) is within the timing noise of
        # the two whole-image runs it is the difference of: no rate rather than a made-up one.
        "denoiser_gflops": round(g_step / per_step, 1) if per_step >= 1e-3 else None,
    }


def preset_seconds(restorer: Restorer, height: int, width: int, presets: list[str]) -> dict:
    x = torch.rand(1, 3, height, width)
    _timed(restorer, x, SamplingOptions(steps=1, noise_ceiling=0.5, samples=1))
    out = {}
    for name in presets:
        p = PRESETS[name]
        steps = p.steps
        if not restorer.model.diffuses_pixels and steps > 0:
            steps = restorer.model.config.latent_steps  # a preset's steps mean a latent-prior model's own T
        opts = SamplingOptions(steps, p.noise_ceiling or default_noise_ceiling(p.steps), p.sampler, p.samples, p.flips)
        s = _timed(restorer, x, opts)
        out[name] = {"seconds_per_image": round(s, 2), "images_per_hour": round(3600 / s, 1)}
    return out


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
