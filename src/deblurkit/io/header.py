"""Opening an image file for its header without Pillow's decompression-bomb check.

Pillow refuses, in `Image.open`, any image over twice its module-wide
`Image.MAX_IMAGE_PIXELS`. A library must not change that global per call (a server reads
photos in several threads, and a caller's own setting would be overwritten), so the
project checks sizes against its own limit instead: this opens the file the way
`Image.open` does (the registered format plugins in turn, on the file's first bytes) but
leaves the bomb check to the caller, who compares `size` with its own limit before
anything is decoded. Only the header is read here.
"""

from __future__ import annotations

import struct
from pathlib import Path

from PIL import Image, UnidentifiedImageError

# What a format plugin raises on a header that is not its own (as Image.open catches them).
_NOT_THIS_FORMAT = (SyntaxError, IndexError, TypeError, struct.error)


def open_unchecked(path: str | Path) -> Image.Image:
    """The image at `path`, opened lazily (header only) with no pixel limit applied.
    UnidentifiedImageError where no plugin recognises it. The caller closes it."""
    path = str(path)
    with open(path, "rb") as f:
        prefix = f.read(16)
    for load_plugins in (Image.preinit, Image.init):
        load_plugins()
        for fmt in Image.ID:
            factory, accept = Image.OPEN[fmt]
            if accept is not None and not _accepts(accept(prefix)):
                continue
            try:
                return factory(path, path)  # a path as fp: the image opens and owns its file
            except _NOT_THIS_FORMAT:
                continue
    raise UnidentifiedImageError(f"cannot identify image file {path!r}")


def _accepts(result) -> bool:
    # An accept function returns True/False, or a string (a reason it cannot be opened).
    return bool(result) and not isinstance(result, str)


def header_size(path: str | Path) -> tuple[int, int] | None:
    """(width, height) from the file's header, or None where Pillow does not recognise it."""
    try:
        with open_unchecked(path) as im:
            return im.size
    except (UnidentifiedImageError, OSError, ValueError):
        return None
