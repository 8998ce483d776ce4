"""`deblur run PATHS...` (the default command): deblur photos and folders."""

from __future__ import annotations

import json
import signal
import time
from enum import Enum
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from .. import __version__
from ..errors import DeblurError, UsageError
from ..io import DEFAULT_MAX_PIXELS, discover, distinct_names, is_video, output_is_directory, parse_region, plan_outputs, preview_region
from ..presets import DEFAULT_PRESET, PRESETS, check_settings, resolve_settings
from ..video import TEMPORAL_NOISE, WRITABLE_VIDEO, output_extension

if TYPE_CHECKING:
    from ..pipeline import ImageResult
from .app import app
from .common import ADVANCED_PANEL, EXIT_INTERRUPTED, EXIT_OK, EXIT_SOME_FAILED, check_seed, err_console, fail, raise_interrupt, report, shown

PresetName = Enum("PresetName", {k: k for k in PRESETS}, type=str)
SamplerName = Enum("SamplerName", {"ddpm": "ddpm", "ddim": "ddim"}, type=str)
DeviceName = Enum("DeviceName", {k: k for k in ("auto", "cpu", "cuda", "mps")}, type=str)
TemporalNoise = Enum("TemporalNoise", {k: k for k in TEMPORAL_NOISE}, type=str)
PrecisionName = Enum("PrecisionName", {k: k for k in ("auto", "fp32", "bf16", "fp16")}, type=str)
_PRECISION_HELP = "Speed vs exactness: auto (the default: bf16 where native, else fp32), fp32, bf16, fp16 (GPU)."

def _validate_output(quality, max_pixels):
    if not 1 <= quality <= 100:
        raise UsageError(f"--quality {quality}: must be in 1..100")
    if max_pixels < 1:
        raise UsageError(f"--max-pixels {max_pixels}: must be >= 1")


def _check_video_flags(s, std, side_by_side, trajectory, crop, output, out_is_dir, guidance=None, kernel_flags=False) -> None:
    """Photo-only flags are refused for videos rather than silently ignored."""
    photo_only = [f for f, v in (("--std", std), ("--side-by-side", side_by_side), ("--save-trajectory", trajectory),
                                 ("--save-guidance", guidance), ("--region/--preview", crop),
                                 ("--save-kernel", kernel_flags)) if v]
    if photo_only:
        raise UsageError(f"{', '.join(photo_only)}: not available for videos (photos only)")
    if s.samples > 1 and not s.average:
        raise UsageError(f"--samples {s.samples} on a video needs --average: one output frame per input frame")
    if output is not None and not out_is_dir and output.suffix.lower() not in WRITABLE_VIDEO:
        # webm/avi would need other codecs; writing MP4 bytes under their name would mislead.
        raise UsageError(f"-o {output}: videos are written as {', '.join(e.lstrip('.') for e in WRITABLE_VIDEO)} "
                         f"(H.264); {output.suffix or 'no extension'} is not one of them")


def _result_label(s) -> str:
    """How the side-by-side picture names the result: the preset, or what overrode it."""
    if not s.overridden_by:
        return f"deblurred: {s.preset}"
    if s.steps == 0:
        return "deblurred: predictor"
    return f"deblurred: {s.steps} {s.sampler} steps" + (f", {s.samples} samples averaged" if s.average else "")


def _summary_table(results: list[ImageResult]) -> Table:
    table = Table(title="deblur summary", show_lines=False)
    for col in ("input", "status", "size", "seconds", "outputs / reason"):
        table.add_column(col, overflow="fold")
    for r in results:
        style = {"done": "green", "skipped": "yellow", "failed": "red"}.get(r.status, "")
        detail = r.error if r.status != "done" else ", ".join(Path(o).name for o in r.outputs)
        size = f"{r.size[0]}x{r.size[1]}" if r.size else ""
        table.add_row(shown(r.input), f"[{style}]{r.status}[/]", size, f"{r.seconds:.1f}", shown(detail or ""))
    return table


_WHAT, _OUT, _PERF, _ADV = "What to run", "Output", "Performance and limits", ADVANCED_PANEL
_FLAG = ""  # no "<bool>" type column for on/off flags: they take no value


def _preset_cost(p) -> str:
    """A preset's time, in network passes (the sampler terms stay out of the default help)."""
    fewest, most = min(q.passes for q in PRESETS.values()), max(q.passes for q in PRESETS.values())
    tag = ", quickest" if p.passes == fewest else ", slowest" if p.passes == most else ""
    return f"({p.passes} pass{tag})" if p.passes == 1 else f"({p.passes} passes{tag})"


def _run_help() -> str:
    presets = "\n".join(f"  {name}: {p.help} {_preset_cost(p)}" for name, p in PRESETS.items())
    return (
        "Deblur photos and videos (files, folders). The default: `deblur photo.jpg`.\n\n"
        f"Presets (flags override; default: the model's in weights.toml, else {DEFAULT_PRESET}):\n{presets}\n\n"
        "Camera shake: --kernel auto (see the README)."
    )


@app.command("run", short_help="Deblur photos and videos (the default command).", help=_run_help())
def run(
    # readable=False: an unreadable input is a per-file failure later, not a usage error that stops the batch.
    paths: list[Path] = typer.Argument(..., help="Photos, videos and/or folders.", show_default=False, readable=False),
    preset: Optional[PresetName] = typer.Option(None, "--preset", help="The look: one of the presets above.",
                                                show_default=False, metavar="NAME", rich_help_panel=_WHAT),
    model: Optional[str] = typer.Option(None, "--model", "-m", help="Model name from weights.toml.",
                                        rich_help_panel=_WHAT),
    weights: Optional[str] = typer.Option(None, "--weights", help="Checkpoint file or hf:// URI.",
                                          rich_help_panel=_WHAT),
    recursive: bool = typer.Option(False, "--recursive", "-r", help="Descend into sub-folders of folder inputs.",
                                   metavar=_FLAG, rich_help_panel=_WHAT),
    region: Optional[str] = typer.Option(None, "--region", help="Restore only this crop (px): quick trials.",
                                         metavar="X,Y,W,H", rich_help_panel=_WHAT),
    preview: bool = typer.Option(False, "--preview", help="Restore a 512 px centre crop: seconds.",
                                 metavar=_FLAG, rich_help_panel=_WHAT),
    seed: Optional[int] = typer.Option(None, "--seed", help="Same seed, same result. [default: random]",
                                       show_default=False, rich_help_panel=_WHAT),
    kernel: Optional[str] = typer.Option(None, "--kernel", help="Shake: auto, none (default) or a PSF file.",
                                         show_default=False, metavar="MODE", rich_help_panel=_WHAT),
    kernel_size: Optional[int] = typer.Option(None, "--kernel-size", help="Longest shake looked for (px).",
                                              show_default=False, metavar="PX", rich_help_panel=_WHAT),
    kernel_region: Optional[str] = typer.Option(None, "--kernel-region", help="Estimate the shake on this crop.",
                                                show_default=False, metavar="X,Y,W,H", rich_help_panel=_WHAT),
    save_kernel: bool = typer.Option(False, "--save-kernel", help="Also write the shake found (PNG).",
                                     metavar=_FLAG, rich_help_panel=_WHAT),
    output: Optional[Path] = typer.Option(None, "-o", "--output", help="Output file (one input) or folder.", rich_help_panel=_OUT),
    fmt: Optional[str] = typer.Option(None, "--format", "-f", help="png, jpg, tif, webp, bmp. [default: png or -o's]",
                                      show_default=False, rich_help_panel=_OUT),
    quality: int = typer.Option(95, "--quality", help="JPEG/WebP quality 1..100.", rich_help_panel=_OUT),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace existing outputs (never inputs).", metavar=_FLAG,
                                   rich_help_panel=_OUT),
    side_by_side: bool = typer.Option(False, "--side-by-side", help="Also write before | after in one image.",
                                      metavar=_FLAG, rich_help_panel=_OUT),
    temporal_noise: TemporalNoise = typer.Option("fixed", "--temporal-noise", help="Videos: fixed (less flicker), per-frame.",
                                                 metavar="MODE", show_default=False, rich_help_panel=_OUT),
    allow_truncated: bool = typer.Option(False, "--allow-truncated", help="Videos: write a cut-short clip.",
                                         metavar=_FLAG, rich_help_panel=_OUT),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable summary on stdout.", metavar=_FLAG,
                                  rich_help_panel=_OUT),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress or summary table.", metavar=_FLAG, rich_help_panel=_OUT),
    device: DeviceName = typer.Option("auto", "--device", help="auto, cpu, cuda or mps.",
                                      metavar="NAME", rich_help_panel=_PERF),
    precision: PrecisionName = typer.Option("auto", "--precision", help=_PRECISION_HELP,
                                            metavar="NAME", show_default=False, rich_help_panel=_PERF),
    tile: Optional[int] = typer.Option(None, "--tile", help="Tile side. [default: from free memory]",
                                       show_default=False, rich_help_panel=_PERF),
    overlap: int = typer.Option(32, "--overlap", help="Tile overlap (blended).", rich_help_panel=_PERF),
    max_pixels: int = typer.Option(DEFAULT_MAX_PIXELS, "--max-pixels", help="Refuse larger images.",
                                   rich_help_panel=_PERF),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks.", metavar=_FLAG, rich_help_panel=_PERF),
    # The research flags: each overrides the preset's value; their own panel, last.
    steps: Optional[int] = typer.Option(None, "--steps", help="Steps T; 0 = predictor only.",
                                        show_default=False, rich_help_panel=_ADV),
    noise_ceiling: Optional[float] = typer.Option(None, "--noise-ceiling", help="Last beta B. [default: preset's or min(0.9, 10/T)]",
                                                  show_default=False, rich_help_panel=_ADV),
    sampler: Optional[SamplerName] = typer.Option(None, "--sampler", help="ddpm (ancestral) or ddim.",
                                                  show_default=False, metavar="NAME", rich_help_panel=_ADV),
    samples: Optional[int] = typer.Option(None, "--samples", "-n", help="Samples per image.",
                                          show_default=False, rich_help_panel=_ADV),
    average: Optional[bool] = typer.Option(None, "--average/--no-average", help="Write the samples' mean.",
                                           show_default=False, rich_help_panel=_ADV),
    flips: Optional[int] = typer.Option(None, "--flips", help="Mirror images: 1, 2 or 4.",
                                        show_default=False, rich_help_panel=_ADV),
    std: bool = typer.Option(False, "--std", help="Also write a per-pixel std.",
                             metavar=_FLAG, rich_help_panel=_ADV),
    save_trajectory: Optional[Path] = typer.Option(None, "--save-trajectory", help="Folder: ~10 partial results.",
                                                   rich_help_panel=_ADV),
    save_guidance: Optional[Path] = typer.Option(None, "--save-guidance", help="Folder: msgd guidance maps.",
                                                 rich_help_panel=_ADV),
):
    # The model stack is imported here, not at start-up: `deblur --help` stays instant.
    import torch

    from ..api import Deblurrer, recommended_preset
    from ..io import FORMATS
    from ..io.read import library_chatter
    from ..weights import sha256_of

    if debug:
        library_chatter(True)
    seed_given = seed is not None
    seed = int(torch.randint(0, 2**31 - 1, ()).item()) if seed is None else seed
    try:
        settings = resolve_settings(
            preset.value if preset is not None else None,
            recommended_preset(model, weights) if preset is None else DEFAULT_PRESET,
            steps=steps, samples=samples, average=average, noise_ceiling=noise_ceiling,
            sampler=sampler.value if sampler is not None else None, flips=flips,
            wants_samples=std or save_trajectory is not None,
        )
        check_settings(settings, std)
        _validate_output(quality, max_pixels)
        check_seed(seed)
        if region is not None and preview:
            raise UsageError("--region and --preview: give one (--preview is a centre crop)")
        crop = parse_region(region) if region is not None else (preview_region() if preview else None)
        if fmt is not None and fmt.lower() not in FORMATS:
            raise UsageError(f"--format {fmt}: expected one of {', '.join(sorted(set(FORMATS)))}")
        out_is_dir = output_is_directory(output, paths)
        if fmt is not None and output is not None and not out_is_dir and output.suffix \
                and FORMATS.get(output.suffix.lstrip(".").lower()) != FORMATS[fmt.lower()]:
            raise UsageError(f"--format {fmt} and -o {output}: they name different formats; give one")
        items = discover(paths, recursive)
        if not items:
            raise UsageError(f"no images or videos found in {', '.join(str(p) for p in paths)} "
                             "(extensions: jpg, jpeg, png, tif, tiff, webp, bmp; mp4, m4v, mov, mkv, avi, webm)")
        if fmt is not None and items and all(is_video(i.path) for i in items):
            raise UsageError(f"--format {fmt}: for photos; videos are written as H.264 (mp4, m4v, mov, mkv)")
        kregion = None
        if kernel_region is not None:
            r = parse_region(kernel_region, "--kernel-region")
            kregion = (r.x, r.y, r.width, r.height)
        if kernel is None:  # the kernel flags imply the kernel step
            kernel = "auto" if (kernel_size is not None or kernel_region is not None or save_kernel) else "none"
        if kernel_size is not None and kernel_size < 3:
            raise UsageError(f"--kernel-size {kernel_size}: must be at least 3 px")
        try:
            kernel_opts = Deblurrer.kernel_choice(kernel, kernel_size, kregion)
        except UsageError as e:  # a kernel file that is not one: "--kernel FILE: why"
            raise UsageError(f"--kernel {e}") from None
        if kregion is not None and crop is not None:
            raise UsageError("--kernel-region with --region/--preview: the kernel is estimated on the restored crop; "
                             "give one of them")
        if kernel == "none" and (kernel_size is not None or kernel_region is not None or save_kernel):
            raise UsageError("--kernel none: --kernel-size, --kernel-region and --save-kernel need the kernel step (auto)")
        if any(is_video(i.path) for i in items):
            _check_video_flags(settings, std, side_by_side, save_trajectory, crop, output, out_is_dir, save_guidance,
                               kernel_flags=save_kernel)
        deblurrer = Deblurrer(model, weights=weights, device=device.value, precision=precision.value, tile=tile, overlap=overlap)
        deblurrer.sampling_options(settings, trajectory=save_trajectory is not None)  # flags this model cannot honour
        if save_guidance is not None and not deblurrer.has_guidance:
            raise UsageError(f"--save-guidance: model {deblurrer.model_name} has no structure guidance "
                             "(msgd models, or dvsr trained with --guidance, have)")
    except DeblurError as e:
        raise report(e, debug)

    preset_name, implied = settings.preset, settings.implied
    steps, samples, average = settings.steps, settings.samples, settings.average
    ceiling, sampler_name = settings.noise_ceiling, settings.sampler
    resolved, dev = deblurrer.weights, deblurrer.device
    from ..pipeline import RunOptions, files_per_image, output_tag

    opts = RunOptions(
        settings=settings, std=std, seed=seed, format=fmt, quality=quality,
        overwrite=overwrite, trajectory_dir=save_trajectory, guidance_dir=save_guidance, max_pixels=max_pixels, region=crop,
        side_by_side=side_by_side, result_label=_result_label(settings), kernel=kernel_opts,
    )
    ext = (fmt or "png").lower()
    n_files = files_per_image(settings)

    console = Console(stderr=True, quiet=quiet, emoji=False)
    sampling_flags = list(settings.overridden_by)
    renamed = distinct_names([i for i in items if i.error is None], out_is_dir, output)
    tag = output_tag(settings, crop is not None)
    if not quiet:
        # The effective settings only: a preset overridden by flags says so, and a
        # predictor-only run has no seed, ceiling or sampler to report.
        label = f"preset {preset_name}" + (" (implied by the sampling flags)" if implied else "")
        if sampling_flags:
            label += f" with {', '.join(sampling_flags)}"
        console.print(
            f"deblur {__version__}: {len(items)} image(s), model {shown(resolved.entry.name if resolved.entry else resolved.path.name)}, "
            f"device {dev} ({deblurrer.precision}), {label}, "
            + (f"steps {steps}, ceiling {ceiling:g}, {sampler_name}, samples {samples}" + (" averaged" if average else "")
               + (f" over {settings.flips} mirror images" if settings.flips > 1 and samples > 1 else "")
               + f", seed {seed}" if steps > 0 else "initial predictor only"),
            highlight=False, soft_wrap=True,
        )
    previous_term = signal.signal(signal.SIGTERM, raise_interrupt)
    progress = Progress(
        TextColumn("{task.description}", markup=False), BarColumn(), MofNCompleteColumn(),  # names as they are
        TimeElapsedColumn(), TextColumn("eta"), TimeRemainingColumn(), console=console, transient=False,
    )
    # A log file gets no live bars: plain lines per image, and every ~10% of a long chain.
    plain = not quiet and not console.is_terminal
    every = max(1, -(-steps // 10)) if steps >= 20 else 0

    def plan_for(item):
        if is_video(item.path):
            return plan_outputs(item, output, out_is_dir, output_extension(item.path), 1, False, tag=tag,
                                name=renamed.get(item.path))
        return plan_outputs(item, output, out_is_dir, ext, n_files, std, tag=tag, name=renamed.get(item.path),
                            with_compare=side_by_side, with_kernel=save_kernel)

    plans = {item.path: plan_for(item) for item in items if item.error is None}
    started: dict[Path, float] = {}
    frames: dict[Path, int] = {}  # a clip's frame bar
    done_count = 0

    def on_start(item) -> None:
        started[item.path] = time.perf_counter()
        progress.reset(steps_task, total=max(steps, 1))
        progress.update(steps_task, description=f"steps [{item.path.name}]")
        if is_video(item.path):
            frames[item.path] = progress.add_task(f"frames [{item.path.name}]", total=None)

    def on_step(item, n: int, total: int) -> None:
        progress.update(steps_task, completed=n)
        if plain and every and (n % every == 0 or n == total):
            console.print(f"  {shown(item.path.name)}: step {n}/{total}", highlight=False, soft_wrap=True)

    def on_frame(item, done: int, total) -> None:
        progress.update(frames[item.path], completed=done, total=total)
        if plain and (done % 10 == 0 or done == total):
            rate = done / max(time.perf_counter() - started[item.path], 1e-9)
            eta = f", eta {(total - done) / rate:.0f} s" if total else ""
            console.print(f"  {shown(item.path.name)}: frame {done}/{total or '?'}{eta}", highlight=False, soft_wrap=True)

    def on_result(item, plan, result) -> None:
        nonlocal done_count
        done_count += 1
        if item.path in frames:
            progress.remove_task(frames.pop(item.path))
        if result.error is not None and item.path not in started:  # failed before it began
            err_console.print(f"[red]error:[/] {shown(result.error)}", highlight=False, soft_wrap=True)
            progress.advance(images_task)
            return
        if plan is not None and item.path in renamed:
            result.notes = [*(result.notes or []), f"another input has the same name stem: written as "
                            f"{plan.main[0].name} to keep both"]
        if plain:
            console.print(f"\\[{done_count}/{len(items)}] {shown(item.path)}: {result.status} "
                          f"({time.perf_counter() - started[item.path]:.1f} s)", highlight=False, soft_wrap=True)
        for note in result.notes or []:
            console.print(f"[yellow]note:[/] {shown(note)}", highlight=False, soft_wrap=True)
        if result.status == "failed":  # reported even with --quiet
            err_console.print(f"[red]error:[/] {shown(result.error)}", highlight=False, soft_wrap=True)
        progress.advance(images_task)

    from ..batch import BatchEvents, VideoOptions, run_batch

    try:
        with progress:
            images_task = progress.add_task("images", total=len(items))
            steps_task = progress.add_task("steps", total=max(steps, 1), visible=steps > 0)
            outcome = run_batch(deblurrer, items, plans, opts, BatchEvents(on_start, on_step, on_frame, on_result),
                                VideoOptions(temporal_noise.value, allow_truncated, seed_given))
    finally:
        signal.signal(signal.SIGTERM, previous_term)
    results, interrupted = outcome.results, outcome.interrupted

    elapsed = outcome.seconds
    counts = {s: sum(r.status == s for r in results) for s in ("done", "skipped", "failed")}
    if not quiet:
        console.print(_summary_table(results))
        console.print(f"{counts['done']} done, {counts['skipped']} skipped, {counts['failed']} failed in {elapsed:.1f} s", highlight=False)
    if json_out:
        summary = {
            "version": __version__,
            "model": resolved.entry.name if resolved.entry else None,
            "weights": str(resolved.path),
            "weights_sha256": sha256_of(resolved.path),
            "device": str(dev),
            "precision": deblurrer.precision,
            "seed": seed if steps > 0 else None,
            "preset": preset_name,
            "preset_overridden_by": sampling_flags,
            "steps": steps,
            "noise_ceiling": ceiling if steps > 0 else None,
            "sampler": sampler_name if steps > 0 else None,
            "samples": samples,
            "average": average,
            "flips": settings.flips if steps > 0 and samples > 1 else 1,
            "kernel": kernel,
            "interrupted": interrupted,
            "seconds": round(elapsed, 3),
            "counts": counts,
            "images": [r.to_dict() for r in results],
        }
        typer.echo(json.dumps(summary, indent=2))
    if interrupted:
        raise fail(f"interrupted after {counts['done']} of {len(items)} image(s); rerun the same command to resume", EXIT_INTERRUPTED)
    raise typer.Exit(EXIT_SOME_FAILED if counts["failed"] else EXIT_OK)


