"""`deblur train`: train a DvSR / icDPM / MSGD model on sharp photos (synthetic blur) and real pairs."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..errors import DeblurError, UsageError
from .app import app
from .common import EXIT_INTERRUPTED, check_seed, err_console, fail, report


# TrainConfig's defaults, spelled out so that help needs no torch import (a test keeps them in sync).
TRAIN_DEFAULTS = {"steps": 10000, "batch": 8, "crop": 128, "lr": 2e-4, "seed": 0, "val_every": 500, "ckpt_every": 250, "log_every": 10}


def _default(name: str) -> str:
    return f"[default: {TRAIN_DEFAULTS[name]:g}]" if isinstance(TRAIN_DEFAULTS[name], float) else f"[default: {TRAIN_DEFAULTS[name]}]"


def _levels(text: str) -> list[int]:
    """`--fourier-levels 1,2,3` -> [1, 2, 3] ("" or "none": no Fourier branch)."""
    if text.strip().lower() in ("", "none"):
        return []
    try:
        return [int(x) for x in text.split(",")]
    except ValueError:
        raise UsageError(f"--fourier-levels {text!r}: expected comma-separated level numbers, e.g. 1,2,3") from None


def _spec(text: str, kind: str) -> dict:
    path, weight = text, 1.0
    if ":" in text:
        head, tail = text.rsplit(":", 1)
        try:
            path, weight = head, float(tail)
        except ValueError:
            pass
    if kind == "pack":
        if not Path(path).is_file():
            raise UsageError(f"{path}: training pack not found (build one with `deblur pack`)")
    elif not Path(path).is_dir():
        raise UsageError(f"{path}: training data folder not found")
    if not (weight > 0 and weight < float("inf")):
        raise UsageError(f"{text}: the mixing weight after ':' must be a positive number")
    return {"path": path, "kind": kind, "weight": weight}


# Research knobs of the networks and the loss: a panel of their own, after the everyday options.
_MODEL = "Advanced (model and loss)"


@app.command("train", short_help="Train a model on sharp photos and/or blurry/sharp pairs.",
             help="Train a model. Data: --sharp DIR[:WEIGHT] (synthetic blur) and/or --pairs DIR[:WEIGHT] "
             "(GoPro layout or blur/ + sharp/). Multi-GPU / multi-node: launch with `torchrun ... -m deblurkit train ...`.")
def train_cmd(
    sharp: list[str] = typer.Option([], "--sharp", help="Folder of sharp photos, blurred on the fly (repeatable, DIR[:WEIGHT])."),
    pairs: list[str] = typer.Option([], "--pairs", help="Folder of real blurry/sharp pairs (repeatable, DIR[:WEIGHT])."),
    pack: list[str] = typer.Option([], "--pack", help="Packed training-data file from `deblur pack` (FILE[:WEIGHT]); carries its own sources and weights."),
    deconv: list[str] = typer.Option([], "--deconv", help="Folder of precomputed crops with their deconvolution (DIR[:WEIGHT], from `deblur deconv-pack`), for --deconv-input or --phase refiner."),
    val: Optional[Path] = typer.Option(None, "--val", help="Held-out sharp photos for validation (synthetic blur at a fixed seed)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Run folder: checkpoints, log.jsonl, config.json."),
    config: Optional[Path] = typer.Option(None, "--config", help="TOML file with any TrainConfig fields; flags override it."),
    arch: Optional[str] = typer.Option(None, "--arch", help="dvsr (predict-and-refine), icdpm (denoiser only), msgd (icdpm + structure guidance) or hidiff (transformer + latent prior)."),
    stage: Optional[int] = typer.Option(None, "--stage", help="hidiff: 1 (latent encoder + transformer) or 2 (latent DM + transformer; needs --init STAGE1)."),
    guidance: bool = typer.Option(False, "--guidance", help="dvsr: add MSGD's multiscale structure guidance to the denoiser."),
    guidance_ramp: Optional[int] = typer.Option(
        None, "--guidance-ramp", help="Guided models: steps over which the denoising loss ramps in from 0 (regression-only warm start). [default: 6% of --steps]", rich_help_panel=_MODEL),
    objective: Optional[str] = typer.Option(
        None, "--objective", help="Denoising objective: eps (DDPM noise estimate) or edm (preconditioned image estimate). [default: the size's]", rich_help_panel=_MODEL),
    blur_model: Optional[str] = typer.Option(
        None, "--blur-model", help="Synthetic blur for --sharp: handheld (real hand shake: variable-speed rotation paths up to 120 px), handheld-large (the same, a third of the paths 60-120 px), handheld-values (handheld-large blurring the stored values, noise on every photo), handheld-iso (handheld-large with its noise set by one sensor gain per photo, ISO 100-25600), handheld-plain (our kernels convolving the stored values, 0-2% Gaussian noise, as the standard benchmarks blur) or legacy (v1-v6's). [default: handheld]"),
    blur_max_extent: Optional[float] = typer.Option(
        None, "--blur-max-extent", help="handheld: largest shake in px (a curriculum: small shakes first). [default: 120]"),
    fourier_levels: Optional[str] = typer.Option(
        None, "--fourier-levels", help="dvsr: predictor levels with a Fourier branch (global receptive field), e.g. 1,2,3 (0 = the stem's resolution). [default: none]", rich_help_panel=_MODEL),
    predictor_scales: Optional[int] = typer.Option(
        None, "--predictor-scales", help="dvsr: coarse-to-fine prediction over N scales (the input halved N-1 times; 1 = plain). [default: 1]", rich_help_panel=_MODEL),
    separate_scales: bool = typer.Option(
        False, "--separate-scales", help="dvsr, with --predictor-scales: a network of its own per scale instead of one shared (3x the predictor's weights, same cost per pixel).", rich_help_panel=_MODEL),
    deconv_input: bool = typer.Option(
        False, "--deconv-input", help="dvsr: a kernel-aware predictor that also sees the input's classical blind deconvolution (trains on --deconv data)."),
    deconv_gate: bool = typer.Option(
        False, "--deconv-gate", help="dvsr, with --deconv-input: the predictor also outputs a per-pixel weight a, g(y) = y + U + a (deconvolution - y).", rich_help_panel=_MODEL),
    deconv_gate_start: Optional[float] = typer.Option(
        None, "--deconv-gate-start", help="dvsr, with --deconv-gate: the gate's value when a run starts (0: the --init network unchanged; 1: the deconvolution plus its correction). [default: 0]", rich_help_panel=_MODEL),
    deconv_wiener: Optional[str] = typer.Option(
        None, "--deconv-wiener", help="dvsr, with --deconv-input: the deconvolution's Wiener rule, fixed, noise or guarded (as the --deconv shards were made). [default: fixed]", rich_help_panel=_MODEL),
    refiner: bool = typer.Option(
        False, "--refiner", help="dvsr: the model has the kernel path's refiner (implied by --phase refiner; give it to train other phases of a model that has one).", rich_help_panel=_MODEL),
    refiner_kernel: bool = typer.Option(
        False, "--refiner-kernel", help="dvsr, with --phase refiner or --refiner: the refiner is also told the kernel the photo was deconvolved with, U(y, d, k) (on this CPU's data it lost to the refiner without it; docs/training.md).", rich_help_panel=_MODEL),
    size: Optional[str] = typer.Option(None, "--size", help="tiny, small (CPU, v1), medium (CPU, edm denoiser) or base (GPU)."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Total optimiser steps. " + _default("steps")),
    batch: Optional[int] = typer.Option(None, "--batch", help="Crops per step (per process). " + _default("batch")),
    crop: Optional[int] = typer.Option(None, "--crop", help="Crop side in pixels (DvSR: 128). " + _default("crop")),
    lr: Optional[float] = typer.Option(None, "--lr", help="Peak learning rate (AdamW). " + _default("lr")),
    seed: Optional[int] = typer.Option(None, "--seed", help="Seed for weights, data order and noise. " + _default("seed")),
    predictor_loss_weight: Optional[float] = typer.Option(
        None, "--predictor-loss-weight", help="Direct L1 loss on g(y) (default 1.0; 0 = pure DvSR Eq. 6).", rich_help_panel=_MODEL),
    phase: Optional[str] = typer.Option(None, "--phase", help="What to train: joint (default), predictor (alone), denoiser (predictor frozen) or refiner (the kernel path's, alone; on `deblur deconv-pack --estimate photo` data)."),
    init: Optional[Path] = typer.Option(None, "--init", help="Start from this checkpoint's weights (tensors whose names and shapes match)."),
    fft_loss_weight: Optional[float] = typer.Option(
        None, "--fft-loss-weight", help="Frequency-domain L1 on g(y) (default 0; edm objective or --phase predictor).", rich_help_panel=_MODEL),
    val_every: Optional[int] = typer.Option(None, "--val-every", help="Validate (PSNR, NIQE) every N steps. " + _default("val_every")),
    ckpt_every: Optional[int] = typer.Option(None, "--ckpt-every", help="Checkpoint every N steps (what a stop can lose). " + _default("ckpt_every")),
    log_every: Optional[int] = typer.Option(None, "--log-every", help="Log loss and speed every N steps. " + _default("log_every")),
    data_limit: Optional[int] = typer.Option(None, "--data-limit", help="Use at most this many images per source."),
    device: Optional[str] = typer.Option(None, "--device", help="auto, cpu, cuda, mps."),
    precision: Optional[str] = typer.Option(None, "--precision", help="fp32, bf16 (autocast; CPUs with native bf16 and GPUs) or fp16 (GPU)."),
    threads: Optional[int] = typer.Option(None, "--threads", help="CPU threads for torch (0 = default)."),
    workers: Optional[int] = typer.Option(None, "--workers", help="Data worker processes (0 = in the training process; use several on a GPU)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in --out exactly where it stopped."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Start over in an --out that holds a run (its checkpoints and log are replaced)."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks."),
):
    from ..diffusion import PHASES
    from ..train import NonFiniteLoss, TrainConfig, train

    try:
        cfg = TrainConfig.from_toml(config) if config else TrainConfig()
        overrides = dict(arch=arch, size=size, steps=steps, batch=batch, crop=crop, lr=lr, seed=seed, predictor_loss_weight=predictor_loss_weight, fft_loss_weight=fft_loss_weight,
                         phase=phase, init=str(init) if init is not None else None, val_every=val_every,
                         ckpt_every=ckpt_every, log_every=log_every, data_limit=data_limit, device=device,
                         precision=precision, threads=threads, workers=workers, guidance_ramp=guidance_ramp,
                         guidance=guidance or None, stage=stage, objective=objective, blur_model=blur_model, blur_max_extent=blur_max_extent,
                         fourier_levels=_levels(fourier_levels) if fourier_levels is not None else None,
                         predictor_scales=predictor_scales, separate_scales=separate_scales or None,
                         deconv_input=deconv_input or None, deconv_gate=deconv_gate or None, deconv_gate_start=deconv_gate_start,
                         deconv_wiener=deconv_wiener, refiner=refiner or None,
                         refiner_kernel=refiner_kernel or None)
        d = cfg.to_dict()
        d.update({k: v for k, v in overrides.items() if v is not None})
        if out is not None:
            d["out"] = str(out)
        if val is not None:
            d["val"] = str(val)
        data = [_spec(s, "sharp") for s in sharp] + [_spec(p, "pairs") for p in pairs] + [_spec(p, "pack") for p in pack] + [_spec(p, "deconv") for p in deconv]
        if data:
            d["data"] = data
        cfg = TrainConfig.from_dict(d)
        if not cfg.data:
            raise UsageError("no training data: give --sharp DIR, --pairs DIR or --pack FILE (or `data` in --config)")
        check_seed(cfg.seed)
        if cfg.steps < 1 or cfg.batch < 1 or cfg.crop < 16:
            raise UsageError("--steps and --batch must be >= 1 and --crop >= 16")
        if cfg.stage not in (1, 2):
            raise UsageError(f"--stage {cfg.stage}: expected 1 or 2")
        if cfg.arch == "hidiff":
            if cfg.stage == 2 and cfg.init is None and not resume:
                raise UsageError("--stage 2 starts from a stage-one checkpoint: give it with --init")
            if cfg.phase != "joint" or cfg.fft_loss_weight:
                raise UsageError("--phase and --fft-loss-weight are DvSR options (hidiff trains by --stage)")
        elif stage is not None:
            raise UsageError("--stage is for --arch hidiff (DvSR models train by --phase)")
        if cfg.guidance_ramp is not None and cfg.guidance_ramp < 0:
            raise UsageError(f"--guidance-ramp {cfg.guidance_ramp}: must be >= 0 steps")
        cfg.model_config()  # validates arch/size before any data is loaded
        cfg.blur_config()
        if cfg.phase not in PHASES:
            raise UsageError(f"--phase {cfg.phase}: expected {', '.join(PHASES)}")
        if cfg.phase == "refiner" and cfg.val is not None:
            raise UsageError("--val scores the blind path, which the refiner never sees; measure a refiner with "
                             "`deblur bench kernels --kernel auto`")
        if cfg.val is not None and not Path(cfg.val).is_dir():
            raise UsageError(f"{cfg.val}: --val folder of sharp photos not found")
        if cfg.init is not None and not Path(cfg.init).is_file():
            raise UsageError(f"{cfg.init}: --init checkpoint not found")
        if resume and overwrite:
            raise UsageError("--resume and --overwrite: give one (continue the run, or start it over)")
        result = train(cfg, resume=resume, console=err_console, overwrite=overwrite)
    except NonFiniteLoss as e:
        raise fail(str(e), 1)
    except DeblurError as e:
        raise report(e, debug)
    except (ValueError, OSError) as e:
        if debug:
            raise
        raise fail(str(e), 1)
    err_console.print(f"{'stopped' if result.stopped_early else 'finished'} at step {result.steps_done}; "
                      f"EMA weights: {result.out / 'ema.safetensors'} (slim copy: deblur export)", highlight=False, markup=False)
    if result.stopped_early:  # Ctrl-C or SIGTERM: scripts tell a stopped run from a finished one
        raise typer.Exit(EXIT_INTERRUPTED)
