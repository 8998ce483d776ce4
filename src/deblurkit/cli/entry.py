"""The console-script entry point: Ctrl-C at any moment, start-up included (importing
torch takes seconds), ends with one line and exit 130, never a traceback."""

from __future__ import annotations

import sys


def main() -> None:
    try:
        if sys.argv[1:] == ["--version"]:
            # Answered before the CLI (and with it torch) is imported: instant.
            from .. import __version__

            print(f"deblur {__version__}")
            return
        from .app import main as run_app

        run_app()
    except KeyboardInterrupt:
        sys.stderr.write("interrupted\n")
        sys.exit(130)
