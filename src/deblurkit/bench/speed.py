"""Speed and memory: seconds per predictor pass and per denoiser step, GFLOP, GFLOP/s."""

from __future__ import annotations

import resource
import time

import numpy as np
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


def preset_options(restorer: Restorer, name: str) -> SamplingOptions:
    """A preset's sampling options as `deblur --preset NAME` runs them on this model."""
    p = PRESETS[name]
    steps = p.steps
    if not restorer.model.diffuses_pixels and steps > 0:
        steps = restorer.model.config.latent_steps  # a preset's steps mean a latent-prior model's own T
    return SamplingOptions(steps, p.noise_ceiling or default_noise_ceiling(p.steps), p.sampler, p.samples, p.flips)


def preset_seconds(restorer: Restorer, height: int, width: int, presets: list[str]) -> dict:
    x = torch.rand(1, 3, height, width)
    _timed(restorer, x, SamplingOptions(steps=1, noise_ceiling=0.5, samples=1))
    out = {}
    for name in presets:
        s = _timed(restorer, x, preset_options(restorer, name))
        out[name] = {"seconds_per_image": round(s, 2), "images_per_hour": round(3600 / s, 1)}
    return out


# A shake long enough to matter and short enough for the first window at every size:
# about 2% of the long side (25 px on 1280x720, 80 px on 4000x3000).
SHAKE_FRACTION = 0.02


def shake_scene(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """A sharp made-up scene, (H, W, 3) uint8: flat shapes and lines (edges in every
    direction, as the kernel estimator needs) over a gradient, with fine grain."""
    import cv2

    yy, xx = np.mgrid[:height, :width].astype(np.float32)
    base = 0.3 + 0.4 * (xx / max(width - 1, 1))[..., None] * rng.uniform(0.5, 1, 3) + 0.2 * (yy / max(height - 1, 1))[..., None]
    scene = (np.clip(base, 0, 1) * 255).astype(np.uint8)
    side = min(height, width)
    for _ in range(int(60 * height * width / 1e6) + 40):  # shapes per megapixel, at least 40
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        cx, cy = int(rng.integers(0, width)), int(rng.integers(0, height))
        r = int(rng.uniform(0.01, 0.08) * side) + 2
        kind = rng.integers(0, 3)
        if kind == 0:
            cv2.circle(scene, (cx, cy), r, colour, -1, cv2.LINE_AA)
        elif kind == 1:
            box = cv2.boxPoints(((cx, cy), (2 * r, r), float(rng.uniform(0, 180)))).astype(np.int32)
            cv2.fillPoly(scene, [box], colour, cv2.LINE_AA)
        else:
            end = (cx + int(rng.integers(-3 * r, 3 * r)), cy + int(rng.integers(-3 * r, 3 * r)))
            cv2.line(scene, (cx, cy), end, colour, max(1, r // 6), cv2.LINE_AA)
    return np.clip(scene + rng.normal(0, 4, scene.shape), 0, 255).astype(np.uint8)


def shake_photo(height: int, width: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A made-up camera-shake photo of this size: a shake_scene blurred by one of the
    project's own hand-shake kernels (SHAKE_FRACTION of the long side), 1% noise, 8 bits.
    Returns the (H, W, 3) uint8 photo and its kernel. Made here so the bench needs no photo
    and is the same everywhere."""
    from ..data.shake import handheld_kernel
    from .kernels import blur_with_kernel

    rng = np.random.default_rng([seed, height, width])
    scene = shake_scene(height, width, rng)
    kernel = handheld_kernel(rng, extent=max(9.0, SHAKE_FRACTION * max(height, width))).astype(np.float32)
    blurry = blur_with_kernel(scene, kernel, 0.01, rng)
    return np.round(np.clip(blurry, 0, 1) * 255).astype(np.uint8), kernel


def measure_kernel_path(restorer: Restorer, height: int, width: int, preset: str = "fast") -> dict:
    """The kernel path's time on a shake_photo of this size against the blind path's on the
    same photo, both with `preset`; how long the kernel step took to decide (estimation and
    checks); each path's peak memory (see reset_peak_memory: where the counter cannot be
    reset, both read the process's peak so far; on CUDA, GPU memory only)."""
    from ..kernel_path import KernelChoice

    photo, kernel = shake_photo(height, width)
    x = torch.from_numpy(photo).permute(2, 0, 1)[None].contiguous()  # uint8: kept compact, as the CLI keeps photos
    del photo
    opts = preset_options(restorer, preset)
    gens = sample_generators(0, "speed", opts.samples, restorer.device) if opts.steps > 0 else None
    small = x[..., : min(height, 96), : min(width, 96)].contiguous()
    restorer.restore(small, opts, gens, kernel=KernelChoice("auto"))  # warm-up: the kernel step's imports and first calls
    per_path = reset_peak_memory(restorer.device)
    t_blind = _timed(restorer, x, opts)
    peak_blind = peak_memory_mb(restorer.device)
    decided = []
    per_path = reset_peak_memory(restorer.device) and per_path
    _sync(restorer.device)
    t0 = time.perf_counter()
    restorer.restore(x, opts, gens, kernel=KernelChoice("auto"),
                     on_kernel=lambda report: decided.append((time.perf_counter() - t0, report)))
    _sync(restorer.device)
    t_kernel = time.perf_counter() - t0
    peak_kernel = peak_memory_mb(restorer.device)
    t_decide, report = decided[0]
    return {
        "size": f"{width}x{height}",
        "preset": preset,
        "true_kernel_px": int(kernel.shape[0]),
        "path": report.path,
        "reason": report.reason,
        "blind_s": round(t_blind, 2),
        "kernel_path_s": round(t_kernel, 2),
        "decide_s": round(t_decide, 2),
        "ratio_to_blind": round(t_kernel / t_blind, 2),
        "peak_memory_mb_blind": round(peak_blind, 1),
        "peak_memory_mb_kernel": round(peak_kernel, 1),
        "peak_memory_per_path": per_path,
        "peak_memory_of": "gpu" if restorer.device.type == "cuda" else "process",
    }


_STATUS, _CLEAR_REFS = "/proc/self/status", "/proc/self/clear_refs"


def reset_peak_memory(device: torch.device) -> bool:
    """Start peak_memory_mb counting afresh; True where that worked. CUDA: the allocator's
    peak. Linux: the process's peak resident size (VmHWM), which writing 5 to
    /proc/self/clear_refs resets to what is resident now; memory freed by earlier work is
    first handed back to the system (glibc's malloc_trim), as a fresh process would not
    hold it. Elsewhere, or where the kernel refuses: False, and the peak runs on."""
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        return True
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc: the peak may include freed memory
        pass
    try:
        with open(_CLEAR_REFS, "w") as f:
            f.write("5")
        return True
    except OSError:  # not Linux, a kernel before 4.0, or a sandbox that refuses it
        return False


def peak_memory_mb(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    try:
        with open(_STATUS) as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024  # kB
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB
