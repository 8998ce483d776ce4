"""`deblur bench`: quality on paired benchmarks along the P-D curve, and speed."""

from __future__ import annotations

import functools
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import typer

from ..errors import DeblurError, UsageError
from ..presets import PRESETS
from .app import app
from .common import ADVANCED_PANEL, check_new_output, check_seed, report

# The work (torch, OpenCV, metrics) lives in deblurkit.bench.runner, imported by each
# command when it runs: `deblur --help` must stay instant.
bench_app = typer.Typer(help="Measure quality on paired benchmarks (PSNR/SSIM/NIQE per preset) and speed.", no_args_is_help=True)
app.add_typer(bench_app, name="bench", short_help="Quality (PSNR/SSIM/NIQE per preset) and speed benchmarks.")


@dataclass
class Common:
    model: Optional[str]
    weights: Optional[str]
    device: str
    precision: str
    tile: Optional[int]
    limit: Optional[int]
    skip: int
    files: Optional[str]
    crop: Optional[int]
    presets: Optional[str]
    seed: int
    crops: Optional[str]
    y_channel: bool
    sweep: bool
    grid: Optional[str]
    plot: Optional[Path]
    output: Optional[Path]
    json_out: bool
    overwrite: bool
    debug: bool
    align: Optional[bool] = None
    align_window: int = 10
    kernel: str = "none"


_P = inspect.Parameter
COMMON_OPTIONS = [
    _P("model", _P.KEYWORD_ONLY, annotation=Optional[str], default=typer.Option(None, "--model", "-m", help="Model name from weights.toml.")),
    _P("weights", _P.KEYWORD_ONLY, annotation=Optional[str], default=typer.Option(None, "--weights", help="Checkpoint file or hf:// URI.")),
    _P("device", _P.KEYWORD_ONLY, annotation=str, default=typer.Option("auto", "--device")),
    _P("precision", _P.KEYWORD_ONLY, annotation=str, default=typer.Option(
        "fp32", "--precision", help="fp32 (the reference the records use), bf16, fp16 (GPU) or auto.")),
    _P("tile", _P.KEYWORD_ONLY, annotation=Optional[int], default=typer.Option(None, "--tile")),
    _P("limit", _P.KEYWORD_ONLY, annotation=Optional[int], default=typer.Option(None, "--limit", help="Use the first N pairs only.")),
    _P("skip", _P.KEYWORD_ONLY, annotation=int, default=typer.Option(0, "--skip", help="Skip the first N pairs (after --files).")),
    _P("files", _P.KEYWORD_ONLY, annotation=Optional[str], default=typer.Option(
        None, "--files", help="Only pairs whose names match one of these comma-separated globs, e.g. 'GOPR0372_07_00/0001*'.")),
    _P("crop", _P.KEYWORD_ONLY, annotation=Optional[int], default=typer.Option(
        None, "--crop", help="Centre-crop each pair to this side (0: whole photos, the default).")),
    _P("presets", _P.KEYWORD_ONLY, annotation=Optional[str], default=typer.Option(
        None, "--presets", show_default=False, help=f"Comma list of: blurry, {', '.join(PRESETS)}; bench kernels also true-kernel "
        "(the project's deconvolution given the true kernel: the ceiling) and estimate (given its own blind kernel estimate). "
        "Default: blurry and every preset, and for bench kernels true-kernel and estimate too.")),
    _P("align", _P.KEYWORD_ONLY, annotation=Optional[bool], default=typer.Option(
        None, "--align/--no-align", show_default=False, help="Score after the best whole-pixel shift within --align-window, on "
        "the inside of the photo, as the deblurring benchmarks do (default: on for bench kernels, off elsewhere).")),
    _P("align_window", _P.KEYWORD_ONLY, annotation=int, default=typer.Option(
        10, "--align-window", help="Largest shift looked for by --align, px (also the margin left out).")),
    _P("kernel", _P.KEYWORD_ONLY, annotation=str, default=typer.Option(
        "none", "--kernel", help="The model rows' kernel step, as `deblur --kernel`: none (the blind predictor alone, "
        "the default) or auto (estimate the blur kernel, deconvolve where it explains the photo, the networks start there).")),
    _P("seed", _P.KEYWORD_ONLY, annotation=int, default=typer.Option(0, "--seed")),
    _P("crops", _P.KEYWORD_ONLY, annotation=Optional[str], default=typer.Option(
        None, "--crops", help="Resolution study: evaluate at these centre-crop sizes, e.g. 64,128,256,full.")),
    _P("y_channel", _P.KEYWORD_ONLY, annotation=bool, default=typer.Option(
        False, "--y-channel", help="PSNR/SSIM on the BT.601 Y channel (as most papers) instead of RGB.")),
    _P("sweep", _P.KEYWORD_ONLY, annotation=bool, default=typer.Option(
        False, "--sweep", help="Perception-distortion sweep (steps, averaging, ceilings, DDIM) instead of --presets.",
        rich_help_panel=ADVANCED_PANEL)),
    _P("grid", _P.KEYWORD_ONLY, annotation=Optional[str], default=typer.Option(
        None, "--grid", help="Steps x noise-ceiling grid instead of --presets: STEPS:CEILINGS (e.g. 20,50,200:0.02,0.1,0.5) "
        "or table12 (MSGD's Table 12: 20-1000 steps x 0.01-0.5).", rich_help_panel=ADVANCED_PANEL)),
    _P("plot", _P.KEYWORD_ONLY, annotation=Optional[Path], default=typer.Option(
        None, "--plot", help="Write the P-D plane (PSNR vs NIQE, each point labelled) as a PNG.",
        rich_help_panel=ADVANCED_PANEL)),
    _P("output", _P.KEYWORD_ONLY, annotation=Optional[Path], default=typer.Option(None, "--output", "-o", help="Write the JSON record here.")),
    _P("json_out", _P.KEYWORD_ONLY, annotation=bool, default=typer.Option(False, "--json", help="Print the JSON record on stdout.")),
    _P("overwrite", _P.KEYWORD_ONLY, annotation=bool, default=typer.Option(False, "--overwrite", help="Replace an existing -o file.")),
    _P("debug", _P.KEYWORD_ONLY, annotation=bool, default=typer.Option(False, "--debug", help="Show tracebacks.")),
]


def with_common_options(f):
    """Give a bench command the shared options; it receives them as one `Common`."""
    sig = inspect.signature(f)
    own = [p for p in sig.parameters.values() if p.name != "c"]

    @functools.wraps(f)
    def wrapper(**kwargs):
        c = Common(**{p.name: kwargs.pop(p.name) for p in COMMON_OPTIONS})
        try:
            _check_common(c)
            return f(c=c, **kwargs)
        except DeblurError as e:
            raise report(e, c.debug)

    wrapper.__signature__ = sig.replace(parameters=own + COMMON_OPTIONS)
    return wrapper


def _check_common(c: Common) -> None:
    """Flag checks every bench shares, before any work (minutes of it, for some)."""
    for flag, value, low in (("--limit", c.limit, 1), ("--skip", c.skip, 0), ("--tile", c.tile, 16), ("--align-window", c.align_window, 1)):
        if value is not None and value < low:
            raise UsageError(f"{flag} {value}: must be >= {low}")
    if c.crop is not None and c.crop != 0 and c.crop < 16:
        raise UsageError(f"--crop {c.crop}: must be >= 16, or 0 for whole photos")
    c.crop = c.crop or None  # 0 and no --crop both mean the whole photo
    if c.kernel not in ("auto", "none"):
        raise UsageError(f"--kernel {c.kernel!r}: must be auto or none (a bench estimates each pair's kernel or none)")
    check_seed(c.seed)
    if c.sweep and c.grid is not None:
        raise UsageError("--sweep and --grid: give one (each replaces --presets)")
    if c.grid is not None:
        from ..bench.grid import parse_grid

        try:
            parse_grid(c.grid)
        except ValueError as e:
            raise UsageError(str(e)) from None
    if c.output is not None:
        check_new_output(c.output, c.overwrite, "-o")
    if c.plot is not None:
        check_new_output(c.plot, c.overwrite, "--plot")


@bench_app.command("gopro", help="GoPro test set: <root>/test/<seq>/blur|sharp, or test/input + test/target.")
@with_common_options
def gopro(
    root: Path = typer.Option(..., "--root", help="GoPro root (containing test/) or the test folder itself."),
    gamma: bool = typer.Option(False, "--gamma", help="Use the blur_gamma/ variant."),
    c: Common = None,
):
    from ..bench import runner as r

    r._run(c, "gopro", r._read_pairs(r.gopro_pairs(root, gamma), c), {"root": str(root), "gamma": gamma})


@bench_app.command("hide", help="HIDE test set (test-close-ups + test-long-shot against GT/, or test/input + target).")
@with_common_options
def hide(root: Path = typer.Option(..., "--root", help="HIDE root (containing test/ and GT/)."), c: Common = None):
    from ..bench import runner as r

    r._run(c, "hide", r._read_pairs(r.hide_pairs(root), c), {"root": str(root)})


@bench_app.command("realblur-j", help="RealBlur-J test set (RealBlur_J_test_list.txt).")
@with_common_options
def realblur_j(root: Path = typer.Option(..., "--root", help="RealBlur root (containing the test list)."), c: Common = None):
    from ..bench import runner as r

    r._run(c, "realblur-j", r._read_pairs(r.realblur_pairs(root, "J"), c), {"root": str(root)})


@bench_app.command("realblur-r", help="RealBlur-R test set (RealBlur_R_test_list.txt).")
@with_common_options
def realblur_r(root: Path = typer.Option(..., "--root", help="RealBlur root (containing the test list)."), c: Common = None):
    from ..bench import runner as r

    r._run(c, "realblur-r", r._read_pairs(r.realblur_pairs(root, "R"), c), {"root": str(root)})


@bench_app.command("pairs", help="Any paired folders: files with the same name in --blur and --sharp.")
@with_common_options
def pairs(
    blur: Path = typer.Option(..., "--blur", help="Folder of blurry images."),
    sharp: Path = typer.Option(..., "--sharp", help="Folder of sharp references (same file names)."),
    c: Common = None,
):
    from ..bench import runner as r

    note = lambda text: r.err_console.print(text, highlight=False, markup=False, soft_wrap=True)  # noqa: E731
    r._run(c, "pairs", r._read_pairs(r.folder_pairs(blur, sharp, note), c), {"blur": str(blur), "sharp": str(sharp)})


@bench_app.command("synthetic", help="Sharp photos blurred by the project's blur model at a fixed seed.")
@with_common_options
def synthetic(
    sharp: Path = typer.Option(..., "--sharp", help="Folder of sharp photos (searched recursively)."),
    blur_seed: int = typer.Option(1234, "--blur-seed", help="Seed of the synthetic blur (image i uses [seed, i])."),
    baselines: bool = typer.Option(False, "--baselines", help="Add Wiener and Richardson-Lucy with the true kernel (needs scikit-image)."),
    blur_model: str = typer.Option("legacy", "--blur-model", help="legacy (v1-v6's model; the records compare on it), handheld (real hand shake), handheld-large (more large shakes), handheld-values (handheld-large blurring the stored values), handheld-iso (handheld-large, noise from one sensor gain per photo, ISO 100-25600) or handheld-plain (our kernels convolving the values, Gaussian noise, as the standard benchmarks blur)."),
    c: Common = None,
):
    from ..bench import runner

    check_seed(blur_seed, "--blur-seed")
    runner.synthetic(c, sharp, blur_seed, baselines, blur_model)


@bench_app.command("kernels", help="Sharp photos blurred by real measured kernels (photo i by kernel i mod K), "
                   "as the Levin / Sun / Lai benchmarks make theirs; per-kernel rows and the mean.")
@with_common_options
def kernels(
    kernel_dir: Path = typer.Option(..., "--kernels", help="Folder of kernels: PNG, .npy or .mat (one 2-D array each)."),
    sharp: Path = typer.Option(..., "--sharp", help="Folder of sharp photos (searched recursively)."),
    noise: float = typer.Option(0.01, "--noise", help="Std of the Gaussian noise added after the blur (in [0, 1] units)."),
    linear: bool = typer.Option(False, "--linear", help="Blur in linear light instead of the stored 8-bit values."),
    threshold: float = typer.Option(0.05, "--kernel-threshold", help="Zero kernel values below this fraction of its maximum (estimation noise), then normalise."),
    keep_offset: bool = typer.Option(False, "--keep-offset", help="Convolve with the kernels as stored (default: centred on their centroid)."),
    blur_seed: int = typer.Option(1234, "--blur-seed", help="Seed of the noise (photo i uses [seed, i])."),
    baselines: bool = typer.Option(False, "--baselines", help="Add Wiener and Richardson-Lucy with the true kernel (needs scikit-image)."),
    c: Common = None,
):
    from ..bench import runner

    check_seed(blur_seed, "--blur-seed")
    runner.kernels_bench(c, kernel_dir, sharp, noise, linear, threshold, not keep_offset, blur_seed, baselines)




@bench_app.command("speed", help="Seconds per predictor pass and denoiser step, GFLOP/s, per-preset time, peak memory.")
@with_common_options
def speed(
    sizes: str = typer.Option("512x512,1280x720,3840x2160", "--sizes", help="Comma list of WIDTHxHEIGHT."),
    steps: int = typer.Option(3, "--steps", help="Denoiser steps timed per size."),
    preset_size: Optional[str] = typer.Option(
        None, "--preset-size", help="Image size for the per-preset timings (default: 1280x720 if --sizes has it, else the first of --sizes).",
        show_default=False,
    ),
    c: Common = None,
):
    from ..bench import runner

    runner.speed(c, sizes, steps, preset_size)
