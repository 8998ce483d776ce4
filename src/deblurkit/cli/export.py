"""`deblur export`: the slim, self-describing file to ship (EMA weights, fp16 when lossless)."""

from __future__ import annotations

import copy
from pathlib import Path

import typer

from ..errors import DeblurError
from .app import app
from .common import check_new_output, err_console, report

# fp16 storage is used only if a short sampled restore of a test image moves by less
# than a tenth of one 8-bit grey level.
FP16_TOLERANCE = 0.1 / 255


def _probe_image():
    import torch

    g = torch.Generator().manual_seed(0)
    base = torch.rand(1, 3, 24, 24, generator=g)
    return torch.nn.functional.interpolate(base, size=(192, 192), mode="bicubic", align_corners=False).clamp(0, 1)


@app.command("export", short_help="Write a slim checkpoint for shipping.",
             help="Write a slim checkpoint for shipping: the EMA weights of a run (fp16 where lossless).")
def export_cmd(
    checkpoint: Path = typer.Argument(..., help="A run folder (uses its ema.safetensors) or a checkpoint file."),
    output: Path = typer.Option(..., "-o", "--output", help="Destination .safetensors file."),
    fp32: bool = typer.Option(False, "--fp32", help="Keep fp32 even if fp16 would be lossless."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output file."),
):
    import torch

    from ..restorer import Restorer, SamplingOptions, sample_generators
    from ..weights import load_checkpoint, save_checkpoint, sha256_of

    try:
        src = checkpoint / "ema.safetensors" if checkpoint.is_dir() else checkpoint
        check_new_output(output, overwrite, "-o", (src,))
        ckpt = load_checkpoint(src)
        model = ckpt.model.eval()
        dtype = None
        if not fp32:
            half = copy.deepcopy(model).half().float()  # what an fp16 file would load as
            probe = _probe_image()
            # Two sampled steps from the same noise: every network of every family runs
            # (a 0-step check saw only DvSR's predictor, and icDPM's grey zeros); a refiner
            # on the kernel path below.
            opts = SamplingOptions(steps=2, noise_ceiling=0.9)
            a, b = (Restorer(m, "cpu", tile=512).restore(probe, opts, sample_generators(0, "export", 1, torch.device("cpu")))
                    for m in (model, half))
            diff = float((a - b).abs().max())
            refined = getattr(model, "refiner", None) is not None
            if refined:
                # The kernel path's refiner runs only where a photo is deconvolved: a known kernel.
                from ..kernel_path import KernelChoice

                line = torch.zeros(5, 5, dtype=torch.float64)
                line[2] = 0.2
                given = KernelChoice("given", line.numpy())
                a, b = (Restorer(m, "cpu", tile=512).restore(probe, SamplingOptions(steps=0), kernel=given) for m in (model, half))
                diff = max(diff, float((a - b).abs().max()))
            dtype = torch.float16 if diff < FP16_TOLERANCE else None
            err_console.print(f"fp16 check{' (sampling, and the refiner on the kernel path)' if refined else ''}: "
                              f"max output change {diff * 255:.4f} grey levels -> {'fp16' if dtype else 'fp32'}", highlight=False)
        info = dict(ckpt.info)
        info["exported_from"] = str(src)
        save_checkpoint(model, output, ckpt.schedule, info, dtype=dtype)
    except DeblurError as e:
        raise report(e)
    err_console.print(f"wrote {output} ({output.stat().st_size / 1e6:.1f} MB, sha256 {sha256_of(output)})", highlight=False, markup=False)
