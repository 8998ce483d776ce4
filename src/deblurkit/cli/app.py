"""The `deblur` command: `deblur PATHS...` runs the default `run` subcommand."""

from __future__ import annotations

import inspect
import sys

import typer
from typer.core import TyperGroup

from .. import __version__
from . import COMMANDS, REGISTER_ONLY


def _flags_show_no_type() -> None:
    """On/off flags take no value, so help must not give them a type column. Typer 0.29+
    (with click 8.2+) shows `<bool>` for every flag, `--help` and `--x/--no-x` pairs
    included, whatever metavar says; older versions honour metavar="" (used in run.py)."""
    import typer.core as tc

    cls = getattr(tc, "TyperOption", None)
    own = getattr(cls, "display_type_rich", None)
    if own is None or getattr(own, "_deblur_flags", False):
        return  # an older typer: metavar="" does it

    def display_type_rich(self, ctx):
        return None if getattr(self, "is_flag", False) else own(self, ctx)

    display_type_rich._deblur_flags = True
    cls.display_type_rich = display_type_rich


_flags_show_no_type()

class DefaultToRun(TyperGroup):
    """Route `deblur photo.jpg ...` to `deblur run photo.jpg ...`.

    A first argument that is not a subcommand name (a path or an option of `run`)
    selects `run`; a file literally named like a subcommand can be given as ./NAME.
    """

    def parse_args(self, ctx, args):
        if args and args[0] not in COMMANDS and args[0] not in ("--help", "-h", "--version"):
            args = ["run", *args]
        return super().parse_args(ctx, args)

    def invoke(self, ctx):
        # Typer turns Ctrl-C inside a command into a silent exit 130; say what happened.
        try:
            return super().invoke(ctx)
        except KeyboardInterrupt:
            sys.stderr.write("interrupted\n")
            raise typer.Exit(130) from None


app = typer.Typer(
    cls=DefaultToRun,
    no_args_is_help=True,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Remove camera shake and motion blur from photos and videos.\n\n"
    "deblur photo.jpg (= deblur run photo.jpg) -> photo_deblurred.png beside it.",
)


def _version(value: bool):
    if value:
        typer.echo(f"deblur {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
):
    pass


def register(names: tuple[str, ...] | None = None) -> None:
    """Import the modules of these subcommands (None: all); each registers itself on `app`."""
    import importlib

    for name in COMMANDS if names is None else names:
        importlib.import_module(f"{__package__}.{COMMANDS[name]}")
    _plain_help(app, _ESCAPED)


_ESCAPED: set[int] = set()  # help texts escaped already (register may run again)


def _plain_help(typer_app: typer.Typer, done: set[int]) -> None:
    """Help texts (and the short ones in command lists) are plain text: Rich would take
    "[serve]" or "[default: 1 ...]" for markup and drop it. Each text is escaped once
    (shared options are seen again)."""
    from rich.markup import escape

    from typer.models import ArgumentInfo, OptionInfo

    def plain(owner) -> None:
        if id(owner) in done:
            return
        done.add(id(owner))
        for attr in ("help", "short_help"):
            if isinstance(getattr(owner, attr, None), str):
                setattr(owner, attr, escape(getattr(owner, attr)))

    plain(typer_app.info)
    for command in typer_app.registered_commands:
        plain(command)
        for p in inspect.signature(command.callback).parameters.values():
            if isinstance(p.default, (OptionInfo, ArgumentInfo)):
                plain(p.default)
    for group in typer_app.registered_groups:
        plain(group)
        _plain_help(group.typer_instance, done)


register(REGISTER_ONLY)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
