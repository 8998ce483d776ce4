"""Shared CLI plumbing: one-line errors, exit codes, consoles."""

from __future__ import annotations

import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.markup import escape

from ..errors import DeblurError, UsageError, WeightsError

# Exit codes (documented in the README)
EXIT_OK = 0
EXIT_SOME_FAILED = 1
EXIT_USAGE = 2
EXIT_WEIGHTS = 3
EXIT_INTERRUPTED = 130

err_console = Console(stderr=True, highlight=False, emoji=False)

# The help panel for the research flags (sampler, schedule, diagnostics): the default
# panels describe the photo and the time, the sampler's own terms stay in this one.
ADVANCED_PANEL = "Advanced (sampler)"


def shown(text) -> str:
    """A user-provided string (file name, path, message quoting one) made safe to print
    through rich: brackets are not markup, and a newline cannot split a one-line message."""
    return escape(str(text).replace("\r", "\\r").replace("\n", "\\n"))


def check_new_output(path: Path, overwrite: bool, flag: str, inputs: tuple[Path, ...] = ()) -> None:
    """Refuse, before any work, to write over an existing file without --overwrite, over a
    folder, or over an input."""
    if path.is_dir():
        raise UsageError(f"{flag} {path}: is a folder; give a file name")
    if any(path.resolve() == p.resolve() for p in inputs):
        raise UsageError(f"{flag} {path}: would overwrite an input")
    if path.exists() and not overwrite:
        raise UsageError(f"{flag} {path}: already exists (use --overwrite to replace it)")


def raise_interrupt(signum, frame):
    """A SIGTERM handler: the process stops as on Ctrl-C (clean-up runs, exit 130)."""
    raise KeyboardInterrupt


def check_seed(seed: int | None, flag: str = "--seed") -> None:
    """Seeds are taken as given, never wrapped: outside [0, 2^64) is an error."""
    if seed is not None and not 0 <= seed < 2**64:
        raise UsageError(f"{flag} {seed}: must be in [0, 2^64)")


def fail(message: str, code: int) -> "typer.Exit":
    err_console.print(f"[bold red]error:[/] {shown(message)}", markup=True, soft_wrap=True)
    return typer.Exit(code)


def exit_code_for(e: DeblurError) -> int:
    if isinstance(e, UsageError):
        return EXIT_USAGE
    if isinstance(e, WeightsError):
        return EXIT_WEIGHTS
    return EXIT_SOME_FAILED


def report(e: DeblurError, debug: bool = False) -> "typer.Exit":
    if debug:
        import traceback

        traceback.print_exception(e, file=sys.stderr)
    return fail(str(e), exit_code_for(e))
