"""`deblur pack`: bundle the training data into one file that travels to a GPU machine."""

from __future__ import annotations

from pathlib import Path

import typer

from ..errors import DeblurError, UsageError
from .app import app
from .common import err_console, report
from .train import _spec


@app.command("pack", short_help="Pack training data into one file for `deblur train --pack`.",
             help="Pack training data (--sharp / --pairs folders, with weights) into one file for `deblur train --pack`.")
def pack_cmd(
    out: Path = typer.Argument(..., help="The pack file to write (.safetensors)."),
    sharp: list[str] = typer.Option([], "--sharp", help="Folder of sharp photos (repeatable, DIR[:WEIGHT])."),
    pairs: list[str] = typer.Option([], "--pairs", help="Folder of real blurry/sharp pairs (repeatable, DIR[:WEIGHT])."),
    quality: int = typer.Option(92, "--quality", help="JPEG quality of the sharp photos."),
    pair_quality: int = typer.Option(97, "--pair-quality", help="JPEG quality of the real pairs (kept at full resolution)."),
    max_side: int = typer.Option(0, "--max-side", help="Downscale sharp photos whose longer side exceeds this (0 = keep)."),
    max_mb: float = typer.Option(40.0, "--max-mb", help="Refuse to keep a pack larger than this many MB."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing pack."),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks."),
):
    from ..data.pack import write_pack

    try:
        if out.exists() and not overwrite:
            raise UsageError(f"{out}: already exists (use --overwrite to replace it)")
        if not (1 <= quality <= 100 and 1 <= pair_quality <= 100):
            raise UsageError("--quality and --pair-quality must be in 1..100")
        sources = [_spec(s, "sharp") for s in sharp] + [_spec(p, "pairs") for p in pairs]
        if not sources:
            raise UsageError("nothing to pack: give --sharp DIR and/or --pairs DIR")
        info = write_pack(out, [(s["path"], s["kind"], s["weight"]) for s in sources], quality, pair_quality, max_side or None)
        mb = out.stat().st_size / 1e6
        if mb > max_mb:
            out.unlink()
            raise UsageError(f"{out}: the pack would be {mb:.1f} MB, over --max-mb {max_mb:g}; lower --quality or set --max-side")
    except DeblurError as e:
        raise report(e, debug)
    for src in info["sources"]:
        err_console.print(f"{src['path']}: {src['count']} {src['kind']} (weight {src['weight']:g})", highlight=False, markup=False)
    err_console.print(f"wrote {out} ({mb:.1f} MB)", highlight=False, markup=False)
