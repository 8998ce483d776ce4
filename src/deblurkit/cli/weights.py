"""`deblur weights list|info|download`: the models known to weights.toml."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table

from ..errors import DeblurError
from ..weights import load_registry, resolve_entry, weights_status
from .app import app
from .common import report, shown

weights_app = typer.Typer(help="List, inspect and pre-download the models in weights.toml.", no_args_is_help=True)
app.add_typer(weights_app, name="weights")
console = Console(highlight=False, emoji=False)


def _size(path) -> str:
    if path is None or not path.is_file():
        return "-"
    n = path.stat().st_size
    return f"{n / 1e6:.1f} MB" if n >= 1e5 else f"{n / 1e3:.1f} kB"


@weights_app.command("list", help="The models known to weights.toml: where each is, size and checksum status.")
def list_models(json_out: bool = typer.Option(False, "--json", help="Machine-readable output.")):
    try:
        reg = load_registry()
        rows = []
        for name, e in sorted(reg.entries.items()):
            status, path = weights_status(e)
            where = e.file if e.file else f"hf://{e.hub.repo_id}/{e.hub.filename}@{e.hub.revision}"
            rows.append({"name": name, "default": name == reg.default, "arch": e.arch, "source": "bundled" if e.file else "hub",
                         "where": where, "path": str(path) if path else None, "size": _size(path), "status": status})
    except DeblurError as e:
        raise report(e)
    if json_out:
        typer.echo(json.dumps(rows, indent=2))
        return
    if not rows:
        console.print(f"No models are registered in {reg.source or 'weights.toml'} yet; use --weights PATH with a checkpoint from `deblur train`.", markup=False)
        return
    table = Table(title=f"models ({reg.source})")
    for col in ("name", "arch", "source", "where", "size", "checksum"):
        table.add_column(col, overflow="fold")
    for r in rows:
        style = "green" if r["status"] == "ok" else "yellow" if r["status"] == "not downloaded" else "red"
        table.add_row(*(shown(v) for v in (r["name"] + (" (default)" if r["default"] else ""), r["arch"], r["source"], r["where"], r["size"])),
                      f"[{style}]{r['status']}[/]")
    console.print(table)


@weights_app.command("info", help="Everything weights.toml and the checkpoint's own metadata say about one model.")
def info(name: str = typer.Argument(..., help="Model name.")):
    try:
        entry = load_registry().get(name)
        status, path = weights_status(entry)
        out = {k: v for k, v in entry.__dict__.items() if k != "hub"}
        if entry.hub:
            out["hub"] = entry.hub.__dict__
        out["status"] = status
        out["path"] = str(path) if path else None
        if status == "ok":
            from ..weights import read_metadata

            meta = read_metadata(path)
            out["config"] = json.loads(meta.get("deblur.config", "{}"))
            out["train_schedule"] = json.loads(meta.get("deblur.schedule", "{}"))
            out["training"] = json.loads(meta.get("deblur.info", "{}"))
    except DeblurError as e:
        raise report(e)
    typer.echo(json.dumps(out, indent=2, default=str))


@weights_app.command("download", help="Fetch Hub-hosted models into the Hugging Face cache and verify them.")
def download(
    names: list[str] = typer.Argument(None, help="Model names (default: all Hub-hosted models)."),
):
    try:
        reg = load_registry()
        targets = names or [n for n, e in sorted(reg.entries.items()) if e.hub is not None]
        for name in targets:
            res = resolve_entry(reg.get(name))
            console.print(f"{name}: {res.source} -> {res.path} (sha256 ok)", markup=False)
        if not targets:
            console.print("No Hub-hosted models are registered; bundled models need no download.")
    except DeblurError as e:
        raise report(e)
