"""`deblur bench` at work: loading, evaluating, reporting (imported only when a bench runs,
so `deblur --help` stays free of torch and OpenCV)."""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path

import numpy as np
import torch
import typer
from rich.console import Console
from rich.table import Table

from ..devices import check_precision, resolve_device, resolve_precision
from ..errors import DeblurError, UsageError
from ..io import IMAGE_EXTENSIONS, read_image, write_atomic
from ..metrics.lpips import load_lpips
from ..presets import PRESETS
from ..restorer import Restorer
from ..weights import load_checkpoint, load_registry, resolve_weights, sha256_of
from .datasets import Pair, folder_pairs, gopro_pairs, hide_pairs, realblur_pairs  # noqa: F401 (used by the commands)
from ..metrics.align import align_rule
from ..kernel_path import KernelChoice
from .classical import CLASSICAL
from .evaluate import BASELINES, Method, environment, evaluate, for_model, grid_methods, preset_methods, sweep_methods
from .grid import parse_grid
from .plot import pd_plot
from .speed import measure_kernel_path, measure_size, peak_memory_mb, preset_seconds

out_console = Console(highlight=False, emoji=False)

# Progress and notes go to stderr (the record or table to stdout); the bench has its own
# console so that nothing below cli/ imports from it.
err_console = Console(stderr=True, highlight=False, emoji=False)


def _load_model(c):
    dev = resolve_device(c.device)
    c.precision = resolve_precision(c.precision, dev)  # `auto` recorded as what it chose
    check_precision(c.precision, dev)
    resolved = resolve_weights(c.model, c.weights)
    ckpt = load_checkpoint(resolved.path)
    return Restorer(ckpt.model, dev, c.precision, tile=c.tile), resolved


def _centre(a: np.ndarray, crop: int | None) -> np.ndarray:
    if not crop:
        return a
    h, w = a.shape[:2]
    ch, cw = min(crop, h), min(crop, w)
    return a[(h - ch) // 2 : (h - ch) // 2 + ch, (w - cw) // 2 : (w - cw) // 2 + cw]


def _t(a: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None].float()


def _parse_crops(text: str) -> list[int | None]:
    sizes = []
    for t in text.split(","):
        t = t.strip().lower()
        if t == "full":
            sizes.append(None)
        elif t.isdigit() and int(t) >= 16:
            sizes.append(int(t))
        else:
            raise UsageError(f"--crops: {t!r} is not a size >= 16 or 'full' (e.g. --crops 64,128,256,full)")
    return sizes


def preset_names(c, kernel_bench: bool = False) -> list[str]:
    """--presets as a list (its default: blurry, the kernel bench's model-free rows, every preset)."""
    text = c.presets if c.presets is not None else ",".join(["blurry", *(CLASSICAL if kernel_bench else ()), *PRESETS])
    names = [n.strip() for n in text.split(",") if n.strip()]
    allowed = ["blurry", *(CLASSICAL if kernel_bench else ()), *PRESETS]
    bad = [n for n in names if n not in allowed]
    if bad:
        extra = "" if kernel_bench else f" ({', '.join(CLASSICAL)}: bench kernels only, where the true kernel is known)"
        raise UsageError(f"--presets: unknown {', '.join(bad)} (choose from {', '.join(allowed)}){extra if set(bad) & set(CLASSICAL) else ''}")
    return names


def needs_model(c, kernel_bench: bool = False) -> bool:
    """Whether the bench must load a model: some method runs one, or a model was named
    (its record then says which). The model-free rows alone measure in seconds."""
    if c.model is not None or c.weights is not None or c.sweep or c.grid is not None:
        return True
    return any(n in PRESETS for n in preset_names(c, kernel_bench))


def _methods(c, model=None, baselines: bool = False, kernel_bench: bool = False) -> list:
    names = preset_names(c, kernel_bench)
    if c.grid is not None:
        try:
            methods = grid_methods(*parse_grid(c.grid), predictor=model is None or model.predictor is not None,
                                   pixel_chain=model is None or model.diffuses_pixels)
        except ValueError as e:
            raise UsageError(str(e)) from None
    else:
        methods = sweep_methods() if c.sweep else preset_methods([n for n in names if n not in CLASSICAL])
        if model is not None:
            if c.sweep and not model.diffuses_pixels:
                raise UsageError("--sweep explores the image-space chain; this model has none (use --grid T1,T2,...:0.5 for its prior's T; the ceiling is ignored)")
            kept = for_model(methods, model)
            left_out = sorted({m.name for m in methods} - {m.name for m in kept})
            if left_out:
                err_console.print(f"note: {', '.join(left_out)} left out: this model has no predictor (0 steps restore nothing)",
                                  highlight=False)
            methods = kept
    # The model-free rows follow the blurry input, in the order given.
    head = [Method(n, -1) for n in names if n in CLASSICAL and not c.sweep and c.grid is None]
    if baselines:  # the true kernels are known: add the classical baselines
        head += [Method(b, -1) for b in BASELINES]
    return methods[:1] + head + methods[1:] if methods and methods[0].name == "blurry" else head + methods


def _run(c, dataset: str, loaded: list[tuple[str, np.ndarray, np.ndarray]], extra: dict, kernels=None,
         groups: dict[str, str] | None = None, group_info: dict[str, dict] | None = None, baselines: bool = False):
    kernel_bench = dataset == "kernels"
    _methods(c, None, baselines, kernel_bench)  # bad flags fail before the model is loaded
    align = c.align if c.align is not None else kernel_bench
    restorer, resolved = _load_model(c) if needs_model(c, kernel_bench) else (None, None)
    methods = _methods(c, restorer.model if restorer else None, baselines, kernel_bench)
    device = restorer.device if restorer else torch.device("cpu")
    lpips_metric, lpips_note = load_lpips(device)
    if lpips_note:
        err_console.print(f"LPIPS: {lpips_note}", highlight=False, markup=False)
    con = err_console if c.json_out else out_console

    def run_at(crop):
        pairs = [(n, _t(_centre(b, crop)), _t(_centre(s, crop))) for n, b, s in loaded]
        side = min(min(t.shape[-2:]) for _, t, _ in pairs)
        if align and side <= 2 * c.align_window + 8:
            raise UsageError(f"--align-window {c.align_window}: leaves too little of a {side} px image to score "
                             "(use a smaller window, a larger crop, or --no-align)")
        err_console.print(f"bench {dataset}: {len(pairs)} pair(s), {len(methods)} methods, crop {crop or 'none'}, "
                          f"device {device}" + (f", aligned (+-{c.align_window} px)" if align else ""), highlight=False)
        return evaluate(restorer, pairs, methods, c.seed,
                        on_result=lambda n, m, p, s: err_console.print(f"  {n} {m}: PSNR {p:.2f} SSIM {s:.4f}", highlight=False, markup=False),
                        y_channel=c.y_channel, lpips_metric=lpips_metric, kernels=kernels, groups=groups,
                        align=c.align_window if align else None, kernel=KernelChoice(c.kernel))

    digest = sha256_of(resolved.path) if resolved else None  # hashed once: the record and the registry lookup share it
    seen = trained_on_overlap(_registry_entry(resolved, digest), [n for n, _, _ in loaded]) if resolved else []
    if seen:
        err_console.print(f"warning: {len(seen)} of {len(loaded)} pair(s) are frames this model was trained on "
                          f"({', '.join(seen[:3])}{', ...' if len(seen) > 3 else ''}): their scores are not held-out; "
                          "choose others with --files/--skip", highlight=False, soft_wrap=True, markup=False)
    record = {
        "dataset": dataset, **extra, "pairs": len(loaded), "crop": c.crop, "limit": c.limit, "skip": c.skip,
        "files": c.files, "trained_on_overlap": seen, "seed": c.seed,
        "model": resolved.entry.name if resolved and resolved.entry else None,
        "weights": str(resolved.path) if resolved else None,
        "weights_sha256": digest, "precision": c.precision,
        "align": {"window": c.align_window, "rule": align_rule(c.align_window)} if align else None,
        "kernel": c.kernel,
        "color": "y" if c.y_channel else "rgb",
        "lpips_note": lpips_note or None,
        "metrics_note": ("PSNR/SSIM on the BT.601 Y channel" if c.y_channel else "PSNR/SSIM on RGB in [0, 1]")
        + " via torchmetrics (SSIM: 11x11 Gaussian window, sigma 1.5); GMSD (lower = closer gradients; piq/MATLAB "
        "definition); NIQE (lower = more natural) on the 8-bit Y channel, BasicSR/MATLAB-compatible",
        "environment": environment(device),
    }
    if c.crops:
        # icDPM's train-test resolution study: the same images at several test crop sizes.
        sizes = _parse_crops(c.crops)
        study = {str(sz or "full"): run_at(sz) for sz in sizes}
        table = Table(title=f"{dataset}: PSNR / SSIM by test crop size ({len(loaded)} images)")
        table.add_column("method")
        for sz in study:
            table.add_column(sz)
        for m in methods:
            table.add_row(m.name, *[f"{study[sz][m.name]['psnr']:.2f} / {study[sz][m.name]['ssim']:.3f}" for sz in study])
        con.print(table)
        record["crops"] = study
    else:
        results = run_at(c.crop)
        table = Table(title=f"{dataset}: {len(loaded)} pairs" + (f", centre crop {c.crop}" if c.crop else ""))
        estimating = any("kernel_similarity" in results[m.name] for m in methods)
        for col in ("method", "steps", "samples", "PSNR (dB)", "SSIM", "GMSD", "NIQE", "LPIPS", "s/image") + (("kernel sim.",) if estimating else ()):
            table.add_column(col)
        for m in methods:
            r = results[m.name]
            sim = (f"{r['kernel_similarity']:.3f}" + (f" ({r['fell_back']} kept input)" if r["fell_back"] else "")
                   if "kernel_similarity" in r else "-")
            table.add_row(m.name, "-" if m.steps < 0 else str(m.steps), f"{m.samples}{' avg' if m.average else ''}" if m.steps >= 0 else "-",
                          f"{r['psnr']:.2f}", f"{r['ssim']:.4f}", f"{r['gmsd']:.4f}",
                          "n/a (< 2 blocks of 96 px)" if r["niqe"] is None else f"{r['niqe']:.3f}",
                          "n/a" if r["lpips"] is None else f"{r['lpips']:.4f}", f"{r['seconds_per_image']:.2f}",
                          *((sim,) if estimating else ()))
        con.print(table)
        if groups is not None:
            _print_groups(con, dataset, methods, results, group_info or {})
        record["methods"] = [{"name": m.name, "steps": m.steps, "samples": m.samples, "average": m.average,
                              "noise_ceiling": m.options().noise_ceiling if m.steps > 0 else None, "sampler": m.sampler,
                              "flips": m.flips,
                              **results[m.name]} for m in methods]
        if c.plot:
            pts = [(m.name, results[m.name]["psnr"], results[m.name]["niqe"]) for m in methods]
            try:
                pd_plot(pts, c.plot, title=f"{dataset}: perception-distortion")
                record["plot"] = str(c.plot)
            except ValueError as e:
                err_console.print(f"plot not written: {e} (NIQE needs crops of at least 192x96 px)", highlight=False, markup=False)
    if c.output:
        write_atomic(c.output, (json.dumps(record, indent=2) + "\n").encode())
    if c.json_out:
        typer.echo(json.dumps(record, indent=2))


def _print_groups(con, dataset, methods, results, group_info: dict[str, dict]) -> None:
    """PSNR per group (kernel) and method, and each method's gain over the blurry input."""
    labels = list(results[methods[0].name]["by_group"])
    table = Table(title=f"{dataset}: PSNR (dB) per kernel, gain over blurry in brackets; s = the estimated kernel's similarity to the true one")
    table.add_column("kernel")
    table.add_column("size")
    for m in methods:
        table.add_column(m.name)
    base = results["blurry"]["by_group"] if "blurry" in results else None
    for g in labels:
        cells = []
        for m in methods:
            row = results[m.name]["by_group"][g]
            v = row["psnr"]
            cells.append(f"{v:.2f}" + (f" ({v - base[g]['psnr']:+.2f})" if base and m.name != "blurry" else "")
                         + (f" s={row['kernel_similarity']:.2f}" if "kernel_similarity" in row else ""))
        info = group_info.get(g, {})
        table.add_row(Path(g).name, str(info.get("size", "")), *cells)
    con.print(table)


def select(items: list, c, name=lambda x: x.name) -> list:
    """--files (globs on the pair names), then --skip, then --limit."""
    if c.files:
        globs = [g.strip() for g in c.files.split(",") if g.strip()]
        items = [x for x in items if any(fnmatch.fnmatchcase(name(x), g) for g in globs)]
    items = items[c.skip:]
    return items[: c.limit] if c.limit is not None else items


def _registry_entry(resolved, digest: str):
    """The registry entry of the weights used, also when they were given as a file
    (matched by checksum); None for weights the registry does not know."""
    if resolved.entry is not None:
        return resolved.entry
    try:
        return next((e for e in load_registry().entries.values() if e.sha256 == digest), None)
    except DeblurError:  # no or broken registry: nothing to compare with
        return None


def trained_on_overlap(entry, names: list[str]) -> list[str]:
    """The evaluated names that the model's card says it was trained on (matched by
    path suffix, so 'GOPR0372_07_00/000047.png' and a bare '000047.png' both match)."""
    if entry is None or not entry.trained_on:
        return []
    def hit(n: str) -> bool:
        return any(t == n or t.endswith("/" + n) or n.endswith("/" + t) for t in entry.trained_on)
    return [n for n in names if hit(n)]


def _read_pairs(pairs: list[Pair], c):
    out = []
    chosen = select(pairs, c)
    if pairs and not chosen:
        raise UsageError("no pairs left after --files/--skip")
    for p in chosen:
        b, s = read_image(p.blur).rgb, read_image(p.sharp).rgb
        if b.shape != s.shape:
            raise UsageError(f"{p.blur}: size {b.shape[1]}x{b.shape[0]} differs from its sharp image {p.sharp}")
        out.append((p.name, b, s))
    return out


def _sharp_photos(sharp: Path, c) -> list[tuple[int, Path]]:
    """(index in the whole folder, path) of the selected photos: a photo keeps its blur
    (seeded by that index) whatever --files/--skip/--limit select."""
    if not sharp.is_dir():
        raise UsageError(f"{sharp}: not a directory of sharp photos")
    every = sorted(p for p in sharp.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not every:
        raise UsageError(f"{sharp}: no images found")
    chosen = select(list(enumerate(every)), c, name=lambda x: str(x[1].relative_to(sharp)))
    if not chosen:
        raise UsageError(f"{sharp}: no images left after --files/--skip")
    return chosen


def kernels_bench(c, kernel_dir: Path, sharp: Path, noise: float, linear: bool, threshold: float, centre: bool,
                  blur_seed: int, baselines: bool) -> None:
    """Photo i (its index in the whole folder) blurred by kernel i mod K."""
    from .kernels import blur_with_kernel, load_kernels

    if not (0 <= noise <= 1):
        raise UsageError(f"--noise {noise}: expected a standard deviation in [0, 1]")
    if not (0 <= threshold < 1):
        raise UsageError(f"--kernel-threshold {threshold}: expected a fraction of the maximum in [0, 1)")
    kernels = load_kernels(kernel_dir, threshold, centre)
    chosen = _sharp_photos(sharp, c)
    loaded, true_kernels, groups = [], {}, {}
    noted: set[tuple] = set()
    for i, f in chosen:
        k = kernels[i % len(kernels)]
        img = read_image(f).rgb
        u8 = np.round(img * 255).astype(np.uint8)
        blurry = blur_with_kernel(u8, k.array, noise, np.random.default_rng([blur_seed, i]), linear)
        name = str(f.relative_to(sharp))
        h, w = img.shape[:2]
        side = min(h, w, c.crop or max(h, w))
        if c.crop and c.crop > min(h, w) and ("crop", name) not in noted:
            noted.add(("crop", name))
            err_console.print(f"note: {name}: --crop {c.crop} is larger than the {w}x{h} photo; "
                              f"scored on {min(c.crop, w)}x{min(c.crop, h)}", markup=False, soft_wrap=True)
        if max(k.array.shape) > side and (k.name, side) not in noted:
            noted.add((k.name, side))
            err_console.print(f"note: {k.name}: the kernel ({k.array.shape[1]}x{k.array.shape[0]}) is larger than the "
                              f"{side} px scored on ({name}); its blur reaches past the scored region",
                              markup=False, soft_wrap=True)
        loaded.append((name, _centre(blurry, c.crop), _centre(u8.astype(np.float32) / 255.0, c.crop)))
        true_kernels[name], groups[name] = k.array, k.name
    info = {k.name: {"size": f"{k.array.shape[1]}x{k.array.shape[0]}", "extent": k.extent, "centroid_offset": k.offset}
            for k in kernels}
    extra = {"sharp": str(sharp), "kernels": str(kernel_dir), "kernel_count": len(kernels), "noise": noise,
             "linear": linear, "kernel_threshold": threshold, "centred": centre, "blur_seed": blur_seed,
             "protocol": ("photo i by kernel i mod K; true convolution of the stored 8-bit values"
                          + (" in linear light" if linear else "") + f", Gaussian noise std {noise}, rounded to 8 bits; "
                          "the whole photo is blurred, then centre-cropped"),
             "kernel_info": info}
    _run(c, "kernels", loaded, extra, kernels=true_kernels, groups=groups, group_info=info, baselines=baselines)


def synthetic(c, sharp: Path, blur_seed: int, baselines: bool, blur_model: str = "legacy") -> None:
    from ..data.blur import apply_blur, blur_model as named_blur

    try:
        cfg = named_blur(blur_model)
    except ValueError as e:
        raise UsageError(f"--blur-model: {e}") from None
    chosen = _sharp_photos(sharp, c)
    loaded, kernels = [], {}
    for i, f in chosen:
        # --crop crops the sharp photo before blurring (fast); a --crops study blurs the whole
        # photo once and crops the same blurred image at every size.
        img = read_image(f).rgb if c.crops else _centre(read_image(f).rgb, c.crop)
        res = apply_blur(img, np.random.default_rng([blur_seed, i]), cfg)
        name = str(f.relative_to(sharp))
        loaded.append((name, res.blurry, img))
        kernels[name] = res.kernels[0]
    _run(c, "synthetic", loaded, {"sharp": str(sharp), "blur_seed": blur_seed, "blur_model": blur_model},
         kernels=kernels if baselines else None, baselines=baselines)


def speed(c, sizes: str, steps: int, preset_size: str | None) -> None:
    def parse(t):
        try:
            w, h = (int(v) for v in t.lower().split("x"))
        except ValueError:
            raise UsageError(f"size {t!r}: expected WIDTHxHEIGHT, e.g. 1280x720") from None
        if w < 16 or h < 16:
            raise UsageError(f"size {t!r}: width and height must be at least 16 pixels")
        return w, h

    size_list = [parse(t) for t in sizes.split(",")]  # bad sizes fail before any work
    if preset_size is None:
        preset_size = "1280x720" if (1280, 720) in size_list else "{}x{}".format(*size_list[0])
    pw, ph = parse(preset_size)
    restorer, resolved = _load_model(c)
    names = [n for n in preset_names(c) if n in PRESETS]
    rows = []
    for w, h in size_list:
        err_console.print(f"timing {w}x{h} ...", highlight=False)
        rows.append(measure_size(restorer, h, w, steps))
    err_console.print(f"timing presets at {pw}x{ph}: {', '.join(names)} ...", highlight=False)
    per_preset = preset_seconds(restorer, ph, pw, names)
    peak = peak_memory_mb(restorer.device)  # the process's so far (the kernel rows reset the counter)
    kernel_rows = []
    if c.kernel == "auto":
        for w, h in size_list:
            err_console.print(f"timing the kernel path at {w}x{h} (a made-up shake photo, fast) ...", highlight=False)
            kernel_rows.append(measure_kernel_path(restorer, h, w))
    table = Table(title=f"speed on {restorer.device} ({c.precision})")
    for col in ("size", "predictor s", "denoiser s/step", "GFLOP pred", "GFLOP/step", "GFLOP/s pred", "GFLOP/s step"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["size"], f"{r['predictor_s']:.2f}", f"{r['denoiser_step_s']:.3f}", f"{r['predictor_gflop']:.0f}",
                      f"{r['denoiser_step_gflop']:.0f}", f"{r['predictor_gflops']:.0f}", "-" if r["denoiser_gflops"] is None else f"{r['denoiser_gflops']:.0f}")
    ptable = Table(title=f"presets at {pw}x{ph}")
    for col in ("preset", "s/image", "images/hour"):
        ptable.add_column(col)
    for n, v in per_preset.items():
        ptable.add_row(n, f"{v['seconds_per_image']:.1f}", f"{v['images_per_hour']:.0f}")
    con = err_console if c.json_out else out_console
    con.print(table)
    con.print(ptable)
    if kernel_rows:
        ktable = Table(title="--kernel auto on a made-up shake photo (shake: its kernel, px), fast: the kernel path "
                       "(deciding: estimation and checks) against the blind path on it; peak memory of each"
                       + (" (GPU memory)" if restorer.device.type == "cuda" else "")
                       + ("" if all(r["peak_memory_per_path"] for r in kernel_rows) else " (the process's peak so far: "
                          "this platform cannot reset it)"))
        for col in ("size", "shake", "path", "blind s", "kernel s", "deciding s", "x blind", "MB blind", "MB kernel"):
            ktable.add_column(col)
        for r in kernel_rows:
            ktable.add_row(r["size"], str(r["true_kernel_px"]), r["path"], f"{r['blind_s']:.2f}", f"{r['kernel_path_s']:.2f}",
                           f"{r['decide_s']:.2f}", f"{r['ratio_to_blind']:.2f}", f"{r['peak_memory_mb_blind']:.0f}",
                           f"{r['peak_memory_mb_kernel']:.0f}")
        con.print(ktable)
    record = {"sizes": rows, "presets": per_preset, "preset_size": preset_size, "kernel": c.kernel, "kernel_path": kernel_rows,
              "peak_memory_mb": round(max([peak, *(max(r["peak_memory_mb_blind"], r["peak_memory_mb_kernel"]) for r in kernel_rows)]), 1),
              "model": resolved.entry.name if resolved.entry else None, "weights_sha256": sha256_of(resolved.path),
              "precision": c.precision, "tile": restorer.tile, "environment": environment(restorer.device)}
    con.print(f"peak memory: {record['peak_memory_mb']:.0f} MB", highlight=False)
    if c.output:
        write_atomic(c.output, (json.dumps(record, indent=2) + "\n").encode())
    if c.json_out:
        typer.echo(json.dumps(record, indent=2))
