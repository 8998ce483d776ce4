"""The project's own error types: each carries a one-line message meant for the user."""


class DeblurError(Exception):
    """Base class: anything the CLI reports as a one-line error instead of a traceback."""


class ImageReadError(DeblurError):
    """An input file could not be read as an image."""


class ImageWriteError(DeblurError):
    """An output could not be written."""


class WeightsError(DeblurError):
    """A checkpoint could not be found, downloaded, verified or loaded."""


class UsageError(DeblurError, ValueError):
    """Invalid flags or flag combinations (or API arguments), detected before any work starts."""


class OutOfMemoryError(DeblurError):
    """An image would not fit in memory with the requested settings."""
