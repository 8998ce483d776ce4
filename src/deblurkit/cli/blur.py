"""`deblur blur`: apply the project's synthetic blur model to a photo (demos, benches)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from ..errors import DeblurError, UsageError
from .app import app
from .common import check_new_output, check_seed, err_console, report


@app.command("blur", short_help="Blur a sharp photo with synthetic hand shake (test data).",
             help="Blur a sharp photo with the synthetic blur model: real hand shake by default (deterministic given --seed).")
def blur_cmd(
    sharp: Path = typer.Argument(..., help="A sharp photo."),
    output: Path = typer.Option(..., "-o", "--output", help="Where to write the blurry image."),
    seed: int = typer.Option(0, "--seed", help="Fully determines kernel(s), noise and JPEG step."),
    save_kernel: Optional[Path] = typer.Option(None, "--save-kernel", help="Also write the (first) kernel as a PNG (scaled to its max)."),
    no_noise: bool = typer.Option(False, "--no-noise", help="Blur only: no sensor noise, no JPEG round trip."),
    blur_model: str = typer.Option("handheld", "--blur-model", help="handheld (real hand shake: rotation paths up to 120 px, spatially varying), handheld-large (the same with more 60-120 px shakes), handheld-values, handheld-iso, handheld-plain (see deblur train --help) or legacy (v1-v6's model)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing output."),
):
    import numpy as np

    from ..data.blur import apply_blur, blur_model as named_blur
    from ..io import encode_image, format_for, read_image, write_atomic

    try:
        check_seed(seed)
        if output.exists() and not overwrite:
            raise UsageError(f"{output}: already exists (use --overwrite)")
        if output.resolve() == sharp.resolve():
            raise UsageError(f"{output}: would overwrite the input")
        if save_kernel is not None:
            check_new_output(save_kernel, overwrite, "--save-kernel", (sharp, output))
        try:
            cfg = named_blur(blur_model)
        except ValueError as e:
            raise UsageError(f"--blur-model: {e}") from None
        img = read_image(sharp)
        res = apply_blur(img.rgb, np.random.default_rng(seed), cfg, noise=not no_noise)
        write_atomic(output, encode_image(res.blurry, format_for(output), icc_profile=img.icc_profile, exif=img.exif))
        if save_kernel is not None:
            k = res.kernels[0]
            write_atomic(save_kernel, encode_image(np.repeat((k / k.max())[:, :, None], 3, axis=2), "PNG", grayscale=True))
    except DeblurError as e:
        raise report(e)
    err_console.print(f"wrote {output}: {' + '.join(res.kinds)} blur" + (" (spatially varying)" if res.spatially_varying else ""), highlight=False, markup=False)
