"""A crop of the photo to restore instead of all of it: try presets on a detail in seconds."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..errors import UsageError
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .read import LoadedImage

PREVIEW_SIDE = 512  # --preview: a centre crop this size (or the whole photo if smaller)


@dataclass(frozen=True)
class Region:
    """x, y: top-left corner in pixels (after EXIF orientation); None means centred."""

    width: int
    height: int
    x: int | None = None
    y: int | None = None

    def box(self, image_width: int, image_height: int) -> tuple[int, int, int, int]:
        """(x, y, w, h) clipped to the image; a region wholly outside it is an error."""
        w, h = min(self.width, image_width), min(self.height, image_height)
        x = (image_width - w) // 2 if self.x is None else self.x
        y = (image_height - h) // 2 if self.y is None else self.y
        if x >= image_width or y >= image_height:
            raise ValueError(f"region at {x},{y} lies outside the {image_width}x{image_height} image")
        return x, y, min(w, image_width - x), min(h, image_height - y)


def parse_region(text: str, flag: str = "--region") -> Region:
    """--region X,Y,W,H (pixels); `flag` names the option in the error."""
    parts = [p.strip() for p in text.split(",")]
    if len(parts) != 4 or not all(p.isascii() and p.isdigit() for p in parts):  # '²'.isdigit() is True
        raise UsageError(f"{flag} {text}: expected X,Y,W,H in pixels, e.g. {flag} 800,600,512,512")
    x, y, w, h = (int(p) for p in parts)
    if w < 16 or h < 16:
        raise UsageError(f"{flag} {text}: width and height must be at least 16 pixels")
    return Region(w, h, x, y)


def preview_region() -> Region:
    return Region(PREVIEW_SIDE, PREVIEW_SIDE)


def crop_image(image: "LoadedImage", region: Region) -> "tuple[LoadedImage, tuple[int, int, int, int]]":
    """The image cut to the region (alpha too); metadata is kept for the output file."""
    x, y, w, h = region.box(*image.size)
    alpha = image.alpha[y : y + h, x : x + w] if image.alpha is not None else None
    return dataclasses.replace(image, pixels=image.pixels[y : y + h, x : x + w], alpha=alpha), (x, y, w, h)
