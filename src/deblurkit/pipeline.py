"""One image through the restorer: read, deblur, and write every requested output."""

from __future__ import annotations

import time
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import cv2
import numpy as np
import torch

from .errors import DeblurError, ImageReadError, OutOfMemoryError
from .io import InputItem, LoadedImage, OutputPlan, Region, crop_image, encode_image, format_for, read_image, write_atomic
from .io.compare import DEFAULT_MAX_SIDE, compose
from .io.discover import VIDEO_EXTENSIONS, sniff_image
from .io.write import ALPHA_FORMATS, FORMATS
from .kernel_path import KernelChoice, KernelReport
from .presets import Settings

if TYPE_CHECKING:
    from .api import Deblurrer

# The uncertainty map saturates at a per-pixel standard deviation of 0.1 (10% of the
# full intensity range), so maps of different photos share one colour scale.
STD_MAP_MAX = 0.1
TRAJECTORY_FRAMES = 10
THUMB_WIDTH = 320


@dataclass
class RunOptions:
    settings: Settings  # preset + overrides: steps, samples, averaging, ceiling, sampler
    std: bool = False
    seed: int = 0
    format: str | None = None
    quality: int = 95
    overwrite: bool = False
    trajectory_dir: Path | None = None
    guidance_dir: Path | None = None  # --save-guidance: the structure guidance's maps (guided models)
    max_pixels: int = 200_000_000
    region: Region | None = None  # restore only this crop (--region / --preview)
    side_by_side: bool = False
    result_label: str = "deblurred"  # the result's label in the side-by-side picture
    kernel: KernelChoice | None = None  # the kernel step (kernel_path): auto, none or a given kernel


def files_per_image(settings: Settings) -> int:
    """Result files per input: one (averaged or a single sample), else one per sample."""
    return 1 if (settings.average or settings.samples == 1) else settings.samples


def output_tag(settings: Settings, cropped: bool) -> str:
    """The result's name tag: a crop gets its own name per preset (`preview_balanced`,
    `preview_custom` when flags override it), so trying presets on it never blocks the full run."""
    if not cropped:
        return "deblurred"
    return f"preview_{'custom' if settings.overridden_by else settings.preset}"


@dataclass
class ImageResult:
    input: str
    status: str  # done / skipped / failed ("writing" only while a deferred write runs, see finish)
    outputs: list[str] = field(default_factory=list)
    seconds: float = 0.0
    size: tuple[int, int] | None = None
    error: str | None = None
    std_mean: float | None = None
    notes: list[str] | None = None
    path: str | None = None  # "kernel" (deconvolved with a kernel, then refined) or "blind" (the predictor alone)
    path_reason: str | None = None  # why that path (kernel_path.KernelReport.reason)
    pending: Future | None = None  # a deferred write still running (see finish)

    def to_dict(self) -> dict:
        return {k: v for k, v in self.__dict__.items() if v is not None and k != "pending"}


def std_heatmap(samples: torch.Tensor) -> tuple[np.ndarray, float]:
    """Colour-mapped per-pixel std across samples (RGB uint8) and its mean value."""
    std = samples.std(dim=0, unbiased=False).mean(dim=0).cpu().numpy()
    scaled = np.clip(std / STD_MAP_MAX * 255.0 + 0.5, 0, 255).astype(np.uint8)
    bgr = cv2.applyColorMap(scaled, cv2.COLORMAP_INFERNO)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), float(std.mean())


def _mean(samples: torch.Tensor) -> torch.Tensor:
    """The average of the samples; one sample is itself (no full-image copy)."""
    return samples[0] if samples.shape[0] == 1 else samples.mean(dim=0)


def _to_hwc(x: torch.Tensor) -> np.ndarray:
    return x.permute(1, 2, 0).float().cpu().numpy()


class Trajectory:
    """Writes the x0 estimate at ~10 evenly spaced steps, then one contact sheet."""

    def __init__(self, directory: Path, stem: str, steps: int):
        self.directory, self.stem = directory, stem
        # Step 0 is the initial prediction g(y), before any refinement.
        self.steps = sorted({0} | {max(1, round(k * steps / TRAJECTORY_FRAMES)) for k in range(1, TRAJECTORY_FRAMES + 1)})
        self.thumbs: list[tuple[int, np.ndarray]] = []

    def __call__(self, step: int, total: int, estimate: torch.Tensor) -> None:
        rgb = _to_hwc(estimate[0])
        write_atomic(self.directory / f"{self.stem}_step{step:04d}.png", encode_image(rgb, "PNG"))
        h, w = rgb.shape[:2]
        tw = min(THUMB_WIDTH, w)
        th = max(1, round(h * tw / w))
        thumb = cv2.resize(rgb, (tw, th), interpolation=cv2.INTER_AREA)
        self.thumbs.append((step, thumb))

    def write_sheet(self) -> Path:
        th, tw = self.thumbs[0][1].shape[:2]
        frames = [("g(y)" if s == 0 else f"step {s}", t) for s, t in self.thumbs]
        cols = min(4, len(frames))
        rows = -(-len(frames) // cols)
        label_h = 18
        sheet = np.full((rows * (th + label_h), cols * tw, 3), 255, np.uint8)
        for i, (label, img) in enumerate(frames):
            r, c = divmod(i, cols)
            y0 = r * (th + label_h)
            sheet[y0 + label_h : y0 + label_h + th, c * tw : (c + 1) * tw] = np.round(np.clip(img, 0, 1) * 255)
            cv2.putText(sheet, label, (c * tw + 4, y0 + 13), cv2.FONT_HERSHEY_SIMPLEX, 0.45, (0, 0, 0), 1, cv2.LINE_AA)
        path = self.directory / f"{self.stem}_trajectory.png"
        write_atomic(path, encode_image(sheet.astype(np.float32) / 255.0, "PNG"))
        return path


def write_guidance(deblurrer: "Deblurrer", x: torch.Tensor, directory: Path, stem: str) -> list[Path]:
    """One 8-bit grey PNG per guidance scale: STEM_guidance_xS.png at 1/S of the input."""
    paths = []
    for s, m in deblurrer.guidance_maps(x).items():
        path = directory / f"{stem}_guidance_x{s}.png"
        write_atomic(path, encode_image(np.repeat(m[:, :, None], 3, axis=2), "PNG", grayscale=True))
        paths.append(path)
    return paths


def _write(path: Path, rgb: np.ndarray, image: LoadedImage, fmt: str, quality: int) -> None:
    data = encode_image(
        rgb,
        fmt,
        bit_depth=image.bit_depth,
        grayscale=image.grayscale,
        alpha=image.alpha,
        icc_profile=image.icc_profile,
        exif=image.exif,
        quality=quality,
    )
    write_atomic(path, data)


def _failed(e: BaseException, result: ImageResult, item: InputItem, opts: RunOptions) -> bool:
    """Turn an expected failure into the result's one-line error; False: not ours to handle."""
    if isinstance(e, OutOfMemoryError):
        result.error = f"{item.path}: {e}"
    elif isinstance(e, DeblurError):
        result.error = str(e)
    elif isinstance(e, MemoryError) or (isinstance(e, RuntimeError) and "memory" in str(e).lower()):
        # The CPU allocator's message is a paragraph; the user needs what to reduce.
        n = opts.settings.samples if opts.settings.steps > 0 else 1
        result.error = (f"{item.path}: out of memory with {n} sample(s) at {result.size[0]}x{result.size[1]}"
                        if result.size else f"{item.path}: out of memory") + "; use fewer --samples or a smaller --tile"
    else:
        return False
    result.status = "failed"
    return True


def process_image(
    deblurrer: "Deblurrer",
    item: InputItem,
    plan: OutputPlan,
    opts: RunOptions,
    on_step: Callable[[int, int], None] | None = None,
    load: Callable[[], LoadedImage] | None = None,
    defer: Callable[[Callable[[], None]], Future] | None = None,
) -> ImageResult:
    """Read, restore and write one image.

    load: returns the decoded input (e.g. a read started earlier in a thread); default:
    read it now. defer: runs the encoding and writing later (e.g. in a thread, while the
    next image is restored) and returns its future, kept in `result.pending`; the result
    is final once `finish(result)` has returned. Without it, everything happens here.
    """
    start = time.perf_counter()
    result = ImageResult(str(item.path), "failed")
    try:
        if not opts.overwrite and all(p.exists() for p in plan.all):
            result.status = "skipped"
            result.outputs = [str(p) for p in plan.all]
            result.error = "outputs exist (use --overwrite to redo)"
            return result
        image = load() if load is not None else read_image(item.path, opts.max_pixels)
        result.size = image.size
        notes = list(image.notes)
        if item.path.suffix.lower() in VIDEO_EXTENSIONS:
            notes.append(f"{item.path.name}: named like a video but holds a {sniff_image(item.path)} image; restored as a photo")
        if opts.region is not None:
            try:
                image, (x, y, w, h) = crop_image(image, opts.region)
            except ValueError as e:
                raise ImageReadError(f"{item.path}: {e}") from None
            notes.append(f"restored only the region {x},{y},{w},{h} (X,Y,W,H) of the {result.size[0]}x{result.size[1]} photo")
        if opts.kernel is not None and opts.kernel.region is not None:
            from .deconv.photo import check_region

            try:
                check_region(opts.kernel.region, image.size[1], image.size[0])
            except ValueError as e:
                raise ImageReadError(f"{item.path}: --kernel-region: {e}") from None
        out_format = FORMATS.get(plan.main[0].suffix.lstrip(".").lower() or "png")
        if image.alpha is not None and out_format is not None and out_format not in ALPHA_FORMATS:
            notes.append(f"the alpha channel is dropped: {plan.main[0].suffix.lstrip('.').upper()} has none "
                         "(write png, tif or webp to keep it)")
        result.notes = notes or None
        # The source pixels (uint8 / uint16 / float), not a float copy: the restorer
        # converts tile by tile, so the full image is held once, compactly.
        x = torch.from_numpy(image.pixels).permute(2, 0, 1)[None]
        settings = opts.settings

        reports: list[KernelReport] = []
        trajectory = None
        if opts.trajectory_dir is not None and settings.steps > 0:
            trajectory = Trajectory(opts.trajectory_dir, item.path.stem, settings.steps)
        # Seeded by (seed, file name): the same pixels as Deblurrer.restore(..., key=name).
        samples = deblurrer.restore_tensor(
            x,
            settings,
            opts.seed,
            item.path.name,
            on_step=on_step,
            on_estimate=trajectory,
            estimate_every=set(trajectory.steps) if trajectory else None,
            on_note=notes.append,
            kernel=opts.kernel,
            on_kernel=reports.append,
        ).cpu()
        if reports and opts.kernel is not None and opts.kernel.mode != "none":
            result.path, result.path_reason = reports[0].path, reports[0].reason
            notes.append(f"{reports[0].path} path: {reports[0].reason}")
        result.notes = notes or None
        if trajectory is not None:
            trajectory.write_sheet()
        if opts.guidance_dir is not None:
            write_guidance(deblurrer, x, opts.guidance_dir, item.path.stem)
    except BaseException as e:
        result.seconds = round(time.perf_counter() - start, 3)
        if _failed(e, result, item, opts):
            return result
        raise

    def write() -> None:
        try:
            _write_outputs(samples, image, plan, opts, result, reports[0] if reports else None)
            result.status = "done"
            result.outputs = [str(p) for p in plan.all]
        except BaseException as e:
            if not _failed(e, result, item, opts):
                raise
        finally:
            result.seconds = round(time.perf_counter() - start, 3)

    if defer is None:
        write()
    else:
        result.status = "writing"
        result.pending = defer(write)
    return result


def finish(result: ImageResult) -> ImageResult:
    """Wait for a deferred write (its errors, if any, are in the result by then)."""
    if result.pending is not None:
        pending, result.pending = result.pending, None
        pending.result()
    return result


def _write_outputs(samples: torch.Tensor, image: LoadedImage, plan: OutputPlan, opts: RunOptions, result: ImageResult,
                   kernel: KernelReport | None = None) -> None:
    settings = opts.settings
    if plan.kernel is not None and (opts.overwrite or not plan.kernel.exists()):
        if kernel is not None and kernel.kernel is not None:
            from .deconv.photo import kernel_image

            # 16-bit grey, its maximum white: `--kernel` reads it back as the same kernel (to 16 bits).
            write_atomic(plan.kernel, encode_image(kernel_image(kernel.kernel), "PNG", bit_depth=16, grayscale=True))
        else:
            result.notes = (result.notes or []) + ["no kernel to save: " + (kernel.reason if kernel else "the kernel path is off")]
    n = samples.shape[0]
    fmt = format_for(plan.main[0], None)
    # After an interrupted run some sample files may exist already: keep them.
    fresh = lambda path: opts.overwrite or not path.exists()  # noqa: E731
    if settings.average or n == 1:
        if fresh(plan.main[0]):
            _write(plan.main[0], _to_hwc(_mean(samples)), image, fmt, opts.quality)
    else:
        for path, s in zip(plan.main, samples, strict=True):
            if fresh(path):
                _write(path, _to_hwc(s), image, fmt, opts.quality)
    heat = None
    if plan.std is not None and (fresh(plan.std) or (plan.compare is not None and fresh(plan.compare))):
        heat, result.std_mean = std_heatmap(samples)
        if fresh(plan.std):
            write_atomic(plan.std, encode_image(heat.astype(np.float32) / 255.0, "PNG"))
    if plan.compare is not None and fresh(plan.compare):
        panels = [("input", image.rgb)]
        if settings.average or n == 1:
            panels.append((opts.result_label, _to_hwc(_mean(samples))))
        else:
            panels += [(f"sample {i}", _to_hwc(s)) for i, s in enumerate(samples)]
        if heat is not None:
            panels.append((f"std (0 to {STD_MAP_MAX:g})", heat))
        sheet = compose(panels, max_side=DEFAULT_MAX_SIDE)
        write_atomic(plan.compare, encode_image(sheet.astype(np.float32) / 255.0, "PNG"))
