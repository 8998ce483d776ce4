"""Command-line interface."""

# Subcommand -> the module that defines it (deblurkit.cli.<module>).
COMMANDS = {"run": "run", "bench": "bench", "blur": "blur", "deconv-pack": "deconv_pack", "export": "export",
            "pack": "pack", "serve": "serve", "train": "train", "weights": "weights"}

# The subcommands `deblurkit.cli.app` registers when imported (None: all). The console
# script sets it to the one being run before importing the app: every command module
# builds its options at import, and `deblur photo.jpg` should not pay for `bench`'s and
# `train`'s on every start.
REGISTER_ONLY: tuple[str, ...] | None = None


def commands_for(args: list[str]) -> tuple[str, ...] | None:
    """The subcommands a command line needs: its own, `run` for a bare path, all for help."""
    if not args or args[0] in ("--help", "-h"):
        return None
    return (args[0],) if args[0] in COMMANDS else ("run",)
