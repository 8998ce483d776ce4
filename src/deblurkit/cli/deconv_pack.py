"""`deblur deconv-pack`: training crops with their blind deconvolution, for `deblur train --deconv`."""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import DeblurError, UsageError
from .app import app
from .common import check_seed, err_console, report
from .train import _spec


@app.command("deconv-pack", short_help="Training crops with their classical deconvolution (resumable).",
             help="Draw training crops (synthetic blur on --sharp, real --pairs), deconvolve each with the "
             "classical blind estimator (--estimate crop, for a kernel-aware predictor: `deblur train --deconv OUT "
             "--deconv-input`) or as the kernel path does (--estimate photo, for its refiner: `deblur train --deconv OUT "
             "--phase refiner`), and write them as shards in OUT. Resumable; shards made in parallel with --shard agree.")
def deconv_pack_cmd(
    out: Path = typer.Argument(..., help="Folder for the shards (deconv-*.npz)."),
    count: int = typer.Option(..., "--count", help="Crops in all (over every shard)."),
    sharp: list[str] = typer.Option([], "--sharp", help="Folder of sharp photos, synthetically blurred (repeatable, DIR[:WEIGHT])."),
    pairs: list[str] = typer.Option([], "--pairs", help="Folder of real blurry/sharp pairs (repeatable, DIR[:WEIGHT])."),
    crop: int = typer.Option(256, "--crop", help="Crop side in pixels (train with --crop at most this)."),
    blur_model: str = typer.Option("handheld", "--blur-model", help="Synthetic blur for --sharp (as `deblur train --blur-model`)."),
    seed: int = typer.Option(0, "--seed", help="Crop i depends only on (seed, i)."),
    shard: str = typer.Option("0/1", "--shard", help="I/N: this process makes crops I, I+N, I+2N, ... (run N at once, one per core)."),
    chunk: int = typer.Option(50, "--chunk", help="Crops per shard file (what an interruption can lose)."),
    estimate: str = typer.Option("crop", "--estimate", help="crop: each crop by the classical blind estimate and Wiener (for --deconv-input); photo: each crop as `deblur --kernel auto` deconvolves a photo, the crops that would take the blind path left out, the sharp crop shifted onto the deconvolution (for --phase refiner; stored 24 px smaller a side)."),
    wiener: str = typer.Option("fixed", "--wiener", help="The deconvolution's Wiener rule: fixed, noise (the weight follows each crop's estimated noise) or guarded (noise, and the blurry crop itself where its kernel does not explain it); train with the same --deconv-wiener."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks."),
):
    from ..data.blur import blur_model as named_blur
    from ..data.datasets import PairedFolder, SharpFolder, Source

    from ..data.deconv_pack import (ESTIMATES, PHOTO_ALIGN_WINDOW, load_shard, shard_crop, shard_estimate, shard_rule,
                                    write_photo_shard, write_shard)
    from ..deconv.blind import WIENER_RULES

    try:
        try:
            index, shards = (int(v) for v in shard.split("/"))
        except ValueError:
            raise UsageError(f"--shard {shard!r}: expected I/N, e.g. 0/2") from None
        if not (shards >= 1 and 0 <= index < shards):
            raise UsageError(f"--shard {shard}: expected 0 <= I < N")
        if wiener not in WIENER_RULES:
            raise UsageError(f"--wiener {wiener}: expected {' or '.join(WIENER_RULES)}")
        if estimate not in ESTIMATES:
            raise UsageError(f"--estimate {estimate}: expected {' or '.join(ESTIMATES)}")
        if estimate == "photo" and wiener != "fixed":
            raise UsageError("--wiener is the crop estimate's rule: --estimate photo deconvolves as the kernel path does")
        smallest = 16 + (2 * PHOTO_ALIGN_WINDOW if estimate == "photo" else 0)
        if count < 1 or chunk < 1 or crop < smallest:
            raise UsageError(f"--count and --chunk must be >= 1 and --crop >= {smallest}")
        check_seed(seed)
        try:
            blur = named_blur(blur_model)
        except ValueError as e:
            raise UsageError(f"--blur-model: {e}") from None
        specs = [_spec(s, "sharp") for s in sharp] + [_spec(p, "pairs") for p in pairs]
        if not specs:
            raise UsageError("no training data: give --sharp DIR and/or --pairs DIR")
        sources = [Source(SharpFolder(s["path"], crop, blur) if s["kind"] == "sharp" else PairedFolder(s["path"], crop), s["weight"])
                   for s in specs]
        mine = list(range(index, count, shards))
        made = kept = 0
        for start in range(0, len(mine), chunk):
            part = mine[start:start + chunk]
            path = out / f"deconv-{part[0]:06d}-of-{count}-seed{seed}.npz"
            if path.exists():  # an earlier run made it: the same crops
                with load_shard(path) as made_before:
                    if shard_estimate(made_before) != estimate:
                        raise UsageError(f"{path}: made with --estimate {shard_estimate(made_before)}; "
                                         f"use another folder for --estimate {estimate}")
                    if shard_rule(made_before) != wiener:
                        raise UsageError(f"{path}: made with --wiener {shard_rule(made_before)}; "
                                         f"use another folder for --wiener {wiener}")
                    trimmed = 2 * PHOTO_ALIGN_WINDOW if estimate == "photo" else 0  # photo crops are stored smaller
                    if shard_crop(made_before) + trimmed != crop:
                        raise UsageError(f"{path}: made with --crop {shard_crop(made_before) + trimmed}; "
                                         f"use another folder for --crop {crop}")
                kept += 1
                continue
            if estimate == "photo":
                note = f"{write_photo_shard(path, sources, seed, part)} of {len(part)} crops on the kernel path"
            else:
                write_shard(path, sources, seed, part, wiener)
                note = f"{len(part)} crops"
            made += 1
            err_console.print(f"{path}: {note}", highlight=False, markup=False, soft_wrap=True)
    except DeblurError as e:
        raise report(e, debug)
    err_console.print(f"{out}: {made} shard(s) written, {kept} already there ({len(mine)} crops of shard {shard})",
                      highlight=False, markup=False, soft_wrap=True)
