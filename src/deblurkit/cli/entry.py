"""The console-script entry point: Ctrl-C at any moment, start-up included (importing
torch takes seconds), ends with one line and exit 130, never a traceback."""

from __future__ import annotations

import gc
import signal
import sys
from contextlib import contextmanager

# Commands that never need the model stack: help, the version, the weights registry.
_LIGHT = {"--help", "-h", "--version", "weights"}


@contextmanager
def _interrupt_after():
    """Hold a Ctrl-C until the block is done, then raise it.

    A KeyboardInterrupt raised inside torch's C++ module initialisation does not unwind:
    pybind11 aborts the process (SIGABRT, a core dump message). Importing torch with the
    interrupt held turns that into the usual clean exit a moment later."""
    held = []
    try:
        previous = signal.signal(signal.SIGINT, lambda signum, frame: held.append(signum))
    except ValueError:  # not the main thread: nothing to hold
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)
        if held:
            raise KeyboardInterrupt


def main() -> None:
    try:
        args = sys.argv[1:]
        if args == ["--version"]:
            # Answered before the CLI (and with it torch) is imported: instant.
            from .. import __version__

            print(f"deblur {__version__}")
            return
        # Start-up makes hundreds of thousands of long-lived objects (torch, the CLI): with
        # the collector on, its full passes over them cost a few hundred ms. Off while
        # importing, then those objects are frozen out of later passes (the little garbage
        # imports leave, ~6 MiB, is kept for the process's life: a fixed amount).
        collecting = gc.isenabled()
        gc.disable()
        try:
            if args and not _LIGHT & set(args):
                with _interrupt_after():
                    import torch  # noqa: F401  (the commands import it again, at no cost)
            from .. import cli

            cli.REGISTER_ONLY = cli.commands_for(args)
            from .app import main as run_app
        finally:
            gc.freeze()
            if collecting:
                gc.enable()
        run_app()
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
