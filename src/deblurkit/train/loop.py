"""The training loop: AdamW, warm-up + cosine decay, clipping, EMA, validation, checkpoints.

Reproducibility and exact resume: each step's batch and noise come from generators
seeded with (seed, step, rank), so the data order depends only on the seed and the
step, never on when the run was stopped and resumed.

Multi-process training uses PyTorch DDP as launched by `torchrun` (WORLD_SIZE, RANK,
LOCAL_RANK, MASTER_ADDR/PORT in the environment): NCCL on GPUs, gloo on CPUs.
"""

from __future__ import annotations

import copy
import json
import math
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from ..devices import autocast, resolve_device
from ..errors import UsageError, WeightsError
from ..diffusion import guidance_ramp, training_loss, train_schedule
from ..metrics import psnr
from ..metrics.niqe import has_enough_blocks, niqe
from ..models import DvSR, HIDiff, build_model
from ..restorer import Restorer, SamplingOptions, sample_generators
from ..weights import load_checkpoint, save_checkpoint
from ..data.loader import step_batches
from ..data.deconv_pack import ESTIMATES, DeconvSamples
from ..data.pack import read_pack
from ..data.datasets import Mixture, PairedFolder, SharpFolder, Source, validation_pairs
from .config import TrainConfig


class NonFiniteLoss(RuntimeError):
    pass


@dataclass
class TrainResult:
    steps_done: int
    out: Path
    stopped_early: bool
    last_loss: float
    model: DvSR | None = None
    ema: DvSR | None = None


def lr_factor(step: int, cfg: TrainConfig) -> float:
    if step < cfg.warmup:
        return (step + 1) / cfg.warmup
    progress = (step - cfg.warmup) / max(1, cfg.steps - cfg.warmup)
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * min(1.0, progress)))


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, decay: float) -> None:
    for e, p in zip(ema.parameters(), model.parameters(), strict=True):
        e.lerp_(p.detach(), 1.0 - decay)


def _dist_info() -> tuple[int, int, int]:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return world, int(os.environ.get("RANK", "0")), int(os.environ.get("LOCAL_RANK", "0"))


def build_data(cfg: TrainConfig) -> tuple[Mixture, list[str]]:
    sources, notes = [], []
    for spec in cfg.data:
        if spec.kind == "sharp":
            ds = SharpFolder(spec.path, cfg.crop, cfg.blur_config(), limit=cfg.data_limit)
            notes.append(f"{spec.path}: {len(ds)} sharp images ({cfg.blur_model} synthetic blur), {ds.skipped} skipped")
        elif spec.kind == "pairs":
            ds = PairedFolder(spec.path, cfg.crop, limit=cfg.data_limit)
            notes.append(f"{spec.path}: {len(ds)} real pairs, {ds.skipped} skipped")
        elif spec.kind == "deconv":
            ds = DeconvSamples(spec.path, cfg.crop, kernels=cfg.refiner_kernel)
            if (ds.estimate == "photo") != (cfg.phase == "refiner"):
                raise UsageError(f"{spec.path}: crops deconvolved {ESTIMATES[ds.estimate]}: "
                                 + ("for --phase refiner" if ds.estimate == "photo" else
                                    "for --deconv-input (the refiner trains on `deblur deconv-pack --estimate photo`)"))
            if ds.wiener != cfg.deconv_wiener:
                raise UsageError(f"{spec.path}: deconvolved with --wiener {ds.wiener}, but the model would "
                                 f"deconvolve with --deconv-wiener {cfg.deconv_wiener} at run time; use the same")
            notes.append(f"{spec.path}: {len(ds)} precomputed crops with their deconvolution ({ESTIMATES[ds.estimate]})")
        elif spec.kind == "pack":
            # A packed file brings its own sources and mixing weights (scaled by this spec's).
            for ds, weight, note in read_pack(Path(spec.path), cfg.crop, cfg.data_limit, cfg.blur_config()):
                sources.append(Source(ds, weight * spec.weight))
                notes.append(note)
            continue
        else:
            raise ValueError(f"unknown data kind {spec.kind!r}")
        sources.append(Source(ds, spec.weight))
    if not sources:
        raise ValueError("no training data given")
    with_deconv = [isinstance(src.dataset, DeconvSamples) for src in sources]
    if cfg.phase == "refiner":
        if not all(with_deconv):
            raise UsageError("--phase refiner trains on --deconv data only (`deblur deconv-pack --estimate photo`)")
        return Mixture(sources), notes
    if cfg.deconv_input and not all(with_deconv):
        raise UsageError("--deconv-input trains on --deconv data only (crops stored with their deconvolution)")
    if any(with_deconv) and not cfg.deconv_input:
        raise UsageError("--deconv data is for a kernel-aware predictor: add --deconv-input")
    return Mixture(sources), notes


@torch.no_grad()
def validate(model: DvSR, pairs, device, val_steps: int, seed: int) -> dict:
    """PSNR (dB, RGB) and NIQE of the blurry input, the predictor (for models that have a
    deterministic path) and (val_steps > 0) one short sampled run; NIQE only where the
    crops are large enough for it."""
    restorer = Restorer(copy.deepcopy(model), device, tile=512)
    predicts = model.has_deterministic_path
    runs = ["blurry"] + (["predictor"] if predicts else []) + (["sampled"] if val_steps > 0 else [])
    with_niqe = bool(pairs) and has_enough_blocks(*pairs[0][0].shape[:2])
    scores = {f"{m}_{r}": [] for r in runs for m in (("psnr", "niqe") if with_niqe else ("psnr",))}
    for i, (sharp, blurry) in enumerate(pairs):
        x = torch.from_numpy(sharp).permute(2, 0, 1)[None]
        y = torch.from_numpy(blurry).permute(2, 0, 1)[None]
        outputs = {"blurry": y}
        if predicts:
            outputs["predictor"] = restorer.restore(y, SamplingOptions(steps=0)).cpu()
        if val_steps > 0:
            opts = SamplingOptions(steps=val_steps, noise_ceiling=min(0.9, 10.0 / val_steps))
            outputs["sampled"] = restorer.restore(y, opts, sample_generators(seed, f"val{i}", 1, restorer.device)).cpu()
        for run, out in outputs.items():
            scores[f"psnr_{run}"].append(psnr(out, x))
            if with_niqe:
                scores[f"niqe_{run}"].append(niqe(out[0].permute(1, 2, 0).numpy()))
    return {k: round(float(np.mean(v)), 3) for k, v in scores.items()}


def init_from(model: DvSR, path: Path) -> str:
    """Start from another run's weights (e.g. a predictor trained on its own): every tensor
    whose name and shape match is copied; a network whose shapes all differ starts fresh.
    A predictor tensor that gained input or output channels (the coarse-to-fine or
    kernel-aware stem, a gated tail) keeps the old channels' weights and starts the new
    ones at zero."""
    source = load_checkpoint(path).model.state_dict()
    own = model.state_dict()
    if any(k.startswith("refiner.") for k in source) and not any(k.startswith("refiner.") for k in own):
        # a trained refiner must not vanish from the next run without a word
        raise UsageError(f"{path} has a kernel path refiner: add --refiner to keep it")
    told = lambda state: any(k.startswith("refiner.kernel_embed.") for k in state)  # noqa: E731
    if any(k.startswith("refiner.") for k in own) and any(k.startswith("refiner.") for k in source) and told(source) != told(own):
        # a refiner told the kernel would lose its condition (or an untold one gain a random one)
        raise UsageError(f"{path} has a refiner {'told' if told(source) else 'not told'} the kernel: "
                         f"{'add' if told(source) else 'leave out'} --refiner-kernel")
    taken = {k: v for k, v in source.items() if k in own and own[k].shape == v.shape}
    for k, v in source.items():
        # A predictor tensor that gained channels: input channels (the coarse-to-fine or
        # kernel-aware stem) or output channels (the tail of a gated predictor). The old
        # channels keep their weights, the new ones start at zero, so the network starts
        # as the one it came from.
        if k.startswith("predictor.") and k in own and k not in taken and v.dim() == own[k].dim() \
                and all(a >= b for a, b in zip(own[k].shape[:2], v.shape[:2])) and own[k].shape[2:] == v.shape[2:]:
            widened = torch.zeros_like(own[k])
            widened[tuple(slice(0, n) for n in v.shape)] = v
            taken[k] = widened
    # Coarse-scale networks of their own (`separate_scale_predictors`) that the source lacks
    # start as its one shared predictor, so the model starts as the one it came from.
    for k in own:
        if k.startswith("predictor_coarse.") and k not in taken:
            shared = taken.get("predictor." + k.split(".", 2)[2])
            if shared is not None and shared.shape == own[k].shape:
                taken[k] = shared.clone()
    own.update(taken)
    model.load_state_dict(own)
    nets = sorted({k.split(".", 1)[0] for k in taken})
    return f"initialised {len(taken)}/{len(own)} tensors ({', '.join(nets) or 'none'}) from {path}"


def start_gate(model: DvSR, value: float) -> None:
    """Set a gated predictor's gate (its fourth output channel, before any pixel shuffle) to
    `value` everywhere through the tail's bias, at every scale's network."""
    nets = [model.predictor, *(model.predictor_coarse or [])]
    for net in nets:
        per = net.tail.out_channels // net.config.out_channels  # pixel-shuffled sub-channels of one output
        with torch.no_grad():
            net.tail.bias[3 * per:4 * per] = value


# HI-Diff's networks and what each stage trains: stage one LE and the transformer;
# stage two the latent side (LE_DM, the denoiser) and the transformer, LE frozen (its
# prior is the target).
HIDIFF_PARTS = ("transformer", "encoder", "condition_encoder", "latent_denoiser")
HIDIFF_FROZEN = {1: ("condition_encoder", "latent_denoiser"), 2: ("encoder",)}


def set_trainable(model: DvSR, phase: str, stage: int = 1) -> list[list[torch.nn.Parameter]]:
    """Freeze what `phase` (HI-Diff: `stage`) does not train; returns the trained networks'
    parameter lists (each clipped on its own).

    The structure guidance belongs with the denoiser (it conditions it, and its regression
    loss is computed only on denoiser steps)."""
    if isinstance(model, HIDiff):
        names, frozen = HIDIFF_PARTS, HIDIFF_FROZEN[stage]
    else:
        # The refiner learns only in its own phase (the other phases' losses never reach it).
        names = ("predictor", "denoiser", "guidance", "refiner")
        frozen = {"predictor": ("denoiser", "guidance", "refiner"), "denoiser": ("predictor", "refiner"),
                  "refiner": ("predictor", "denoiser", "guidance")}.get(phase, ("refiner",))
    groups = []
    for name in names:
        net = getattr(model, name)
        if net is None:
            continue
        # A coarse-to-fine predictor with a network per scale is one predictor: trained,
        # frozen and clipped together.
        nets = [net] + ([model.predictor_coarse] if name == "predictor" and model.predictor_coarse is not None else [])
        params = []
        for part in nets:
            part.requires_grad_(name not in frozen)
            params += list(part.parameters())
        if name not in frozen:
            groups.append(params)
    return groups


def _paths(out: Path) -> dict[str, Path]:
    return {"model": out / "model.safetensors", "ema": out / "ema.safetensors", "state": out / "state.pt", "log": out / "log.jsonl"}


def existing_run(out: Path) -> list[str]:
    """The files of a training run already in `out` (what a fresh start would replace)."""
    return [p.name for p in _paths(out).values() if p.exists()]


def _load_state(path: Path, device) -> dict:
    """The optimiser/scheduler state of a run, or a one-line error for a damaged file."""
    import pickle

    try:
        state = torch.load(path, map_location=device, weights_only=True)
        int(state["step"]), state["optimizer"], state["scheduler"]
        return state
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, KeyError, TypeError, ValueError, AttributeError) as e:
        raise WeightsError(f"{path}: damaged training state, cannot resume ({type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'unreadable'}); "
                           "the weights next to it are intact: start a new run from them with --init") from None


# What a resumed run must share with the run in --out. The model's shape: the checkpoint
# would not load otherwise (exit 3). What decides each step's batch and noise: --resume
# promises the uninterrupted run exactly, so a changed one is refused (exit 2), not mixed in.
RESUME_SHAPE = ("arch", "size", "predictor_scales", "separate_scales", "fourier_levels", "deconv_input", "deconv_gate",
                "guidance", "objective", "refiner", "refiner_kernel")
RESUME_RUN = ("crop", "batch", "seed", "data", "blur_model", "blur_max_extent", "phase", "stage", "deconv_wiener")
_DATA_FLAGS = "--sharp/--pairs/--pack/--deconv"


def check_resume(cfg: TrainConfig, checkpoint: Path) -> None:
    """Refuse to resume the run whose weights are `checkpoint` with options that differ."""
    from ..weights.checkpoint import read_metadata

    try:
        made = json.loads(read_metadata(checkpoint).get("deblur.info", "{}")).get("train_config") or {}
    except (OSError, ValueError, AttributeError):
        return  # load_checkpoint reports a damaged file
    now = json.loads(json.dumps(cfg.to_dict()))
    for field in RESUME_SHAPE + RESUME_RUN:
        if field not in made or made[field] == now.get(field):
            continue
        flag = _DATA_FLAGS if field == "data" else "--" + field.replace("_", "-")
        shown = "" if field == "data" else f" ({made[field]} there, {now.get(field)} now)"
        message = (f"{checkpoint.parent}: the run was made with other {flag}{shown}; resume with the run's own options, "
                   "or start a new run (another --out, or --init from its weights)")
        raise (WeightsError if field in RESUME_SHAPE else UsageError)(message)


def train(cfg: TrainConfig, resume: bool = False, console: Console | None = None, overwrite: bool = False) -> TrainResult:
    console = console or Console(stderr=True, emoji=False)
    world, rank, local_rank = _dist_info()
    device = resolve_device(cfg.device)
    if world > 1:
        if device.type == "cuda":
            device = torch.device("cuda", local_rank)
            torch.cuda.set_device(device)
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    main = rank == 0
    out = Path(cfg.out)
    paths = _paths(out)
    schedule = train_schedule()
    found = existing_run(out)
    if found and not resume and not overwrite:
        # Hours of training must never be replaced by a mistyped command.
        raise UsageError(f"{out}: a training run is already there ({', '.join(found)}); "
                         "use --resume to continue it or --overwrite to start it over")
    if found and overwrite and not resume and main:
        paths["log"].unlink(missing_ok=True)  # a new run gets a new log, not the old one's lines

    torch.manual_seed(cfg.seed)  # identical initial weights on every rank
    model = build_model(cfg.model_config()).to(device)
    if device.type in ("cpu", "cuda"):
        model = model.to(memory_format=torch.channels_last)
    if cfg.init and not (resume and paths["state"].is_file()):
        note = init_from(model, Path(cfg.init))
        if main:
            console.print(note, highlight=False)
    if cfg.deconv_gate_start and not (resume and paths["state"].is_file()):
        start_gate(model, cfg.deconv_gate_start)
    trained = set_trainable(model, cfg.phase, cfg.stage)
    ema = copy.deepcopy(model).eval().requires_grad_(False)
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=cfg.lr,
                            weight_decay=cfg.weight_decay, betas=(0.9, 0.99))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: lr_factor(s, cfg))
    start = 0
    if resume and paths["state"].is_file():
        state = _load_state(paths["state"], device)  # a damaged run is said first
        check_resume(cfg, paths["model"])
        model.load_state_dict(load_checkpoint(paths["model"]).model.state_dict())
        ema.load_state_dict(load_checkpoint(paths["ema"]).model.state_dict())
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["scheduler"])
        start = int(state["step"])
        if main:
            console.print(f"resumed from {out} at step {start}")
    net = torch.nn.parallel.DistributedDataParallel(model) if world > 1 else model

    data, notes = build_data(cfg)
    val = validation_pairs(cfg.val, cfg.val_crop, limit=cfg.val_limit) if (cfg.val and main) else []
    if main:
        out.mkdir(parents=True, exist_ok=True)
        (out / "config.json").write_text(json.dumps(cfg.to_dict(), indent=2))
        for n in notes:
            console.print(n, highlight=False, markup=False)

    info_base = {"train_config": cfg.to_dict(), "device": str(device), "world_size": world, "torch": torch.__version__}

    def save(step: int, last_loss: float):
        if not main:
            return
        info = {**info_base, "step": step, "last_loss": last_loss}
        save_checkpoint(model, paths["model"], schedule, info)
        save_checkpoint(ema, paths["ema"], schedule, {**info, "ema_decay": cfg.ema_decay})
        tmp = paths["state"].with_suffix(".tmp")
        torch.save({"optimizer": opt.state_dict(), "scheduler": sched.state_dict(), "step": step}, tmp)
        os.replace(tmp, paths["state"])

    stop = {"flag": False}

    def on_signal(signum, frame):
        stop["flag"] = True

    old_int, old_term = signal.signal(signal.SIGINT, on_signal), signal.signal(signal.SIGTERM, on_signal)
    log = open(paths["log"], "a") if main else None
    last_loss, t_last, data_time, step = float("nan"), time.perf_counter(), 0.0, start
    t_start = time.perf_counter()
    # A live bar on a terminal; background runs (nohup, CI) get the plain log lines only.
    progress = Progress(TextColumn("train"), BarColumn(), MofNCompleteColumn(), TextColumn("loss {task.fields[loss]:.4f}"),
                        TextColumn("eta"), TimeRemainingColumn(), console=console, disable=not (main and console.is_terminal))
    task = progress.add_task("train", total=cfg.steps, completed=start, loss=float("nan"))
    progress.start()
    try:
        batches = step_batches(data, cfg.seed, rank, cfg.batch, start, cfg.steps, cfg.workers, pin=device.type == "cuda")
        for step in range(start, cfg.steps):
            t0 = time.perf_counter()
            got, x, y, noise_seed, *kernel = next(batches)  # the refiner's data brings each crop's kernel
            assert got == step, (got, step)
            x = x.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
            y = y.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last)
            gen = torch.Generator(device="cpu").manual_seed(noise_seed)
            data_time += time.perf_counter() - t0

            net.train()
            with autocast(device, cfg.precision):
                loss = training_loss(net, model.config, x, y, schedule, gen, phase=cfg.phase,
                                     predictor_weight=cfg.predictor_loss_weight, fft_weight=cfg.fft_loss_weight,
                                     denoise_weight=guidance_ramp(step, cfg.guidance_ramp_steps()), stage=cfg.stage,
                                     kernel=kernel[0].to(device) if kernel else None)
            if not torch.isfinite(loss):
                kept = (f"last good checkpoint kept in {out}" if paths["state"].is_file()
                        else "no checkpoint was written yet")
                raise NonFiniteLoss(f"non-finite loss at step {step}; stopped, {kept}")
            opt.zero_grad(set_to_none=True)
            loss.backward()
            # Each network is clipped on its own: the denoiser's gradients (an O(1) MSE) would
            # otherwise set the global norm and throttle the predictor's updates.
            for params in trained:
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            opt.step()
            sched.step()
            # EMA warm-up: a short average early on, the configured decay later.
            ema_update(ema, model, min(cfg.ema_decay, (1 + step) / (10 + step)))
            last_loss = float(loss.detach())
            done = step + 1
            progress.update(task, completed=done, loss=last_loss)

            if main and (done % cfg.log_every == 0 or done == cfg.steps):
                now = time.perf_counter()
                rate = cfg.log_every / max(1e-9, now - t_last)
                eta = (cfg.steps - done) / max(rate, 1e-9)
                rec = {"step": done, "loss": round(last_loss, 5), "lr": sched.get_last_lr()[0], "it_s": round(rate, 3),
                       "data_frac": round(data_time / max(1e-9, now - t_last), 3), "eta_s": round(eta), "time": time.time()}
                log.write(json.dumps(rec) + "\n")
                log.flush()
                console.print(f"step {done}/{cfg.steps} loss {last_loss:.4f} lr {rec['lr']:.2e} {rate:.2f} it/s "
                              f"data {100 * rec['data_frac']:.0f}% eta {eta / 60:.1f} min", highlight=False)
                t_last, data_time = now, 0.0
            if main and val and (done % cfg.val_every == 0 or done == cfg.steps):
                val_steps = (ema.config.latent_steps if isinstance(ema, HIDiff)
                             else 0 if cfg.phase in ("predictor", "refiner") else cfg.val_steps)
                scores = validate(ema, val, device, val_steps, cfg.seed)
                log.write(json.dumps({"step": done, "val": scores, "time": time.time()}) + "\n")
                log.flush()
                console.print(f"validation @ {done}: {scores}", highlight=False)
            if done % cfg.ckpt_every == 0 or done == cfg.steps:
                save(done, last_loss)
            if stop["flag"]:
                save(done, last_loss)
                if main:
                    console.print(f"stopped at step {done}; checkpoint saved in {out} (resume with --resume)")
                return TrainResult(done, out, True, last_loss, model, ema)
        step = cfg.steps
        return TrainResult(step, out, False, last_loss, model, ema)
    finally:
        progress.stop()
        signal.signal(signal.SIGINT, old_int)
        signal.signal(signal.SIGTERM, old_term)
        if log:
            log.write(json.dumps({"event": "end", "wall_s": round(time.perf_counter() - t_start, 1)}) + "\n")
            log.close()
        if world > 1 and dist.is_initialized():
            dist.destroy_process_group()
