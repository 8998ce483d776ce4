"""Image and video I/O. Reading and writing (OpenCV, Pillow) are imported on first use
(PEP 562), so the CLI can define its options and print --help without loading them."""

from ..lazy import lazy_exports

from .discover import (DEFAULT_MAX_PIXELS, IMAGE_EXTENSIONS, VIDEO_EXTENSIONS, InputItem, OutputPlan, discover,
                       distinct_names, is_video, output_is_directory, plan_outputs)
from .region import Region, crop_image, parse_region, preview_region

_LAZY = {
    "LoadedImage": "read", "apply_orientation": "read", "read_image": "read",
    "FORMATS": "write", "encode_image": "write", "format_for": "write", "write_atomic": "write",
}

__all__ = [
    "DEFAULT_MAX_PIXELS", "IMAGE_EXTENSIONS", "VIDEO_EXTENSIONS", "InputItem", "OutputPlan", "Region", "crop_image",
    "discover", "distinct_names", "is_video", "output_is_directory", "parse_region", "plan_outputs", "preview_region",
    *_LAZY,
]


__getattr__ = lazy_exports(__name__, _LAZY, globals())
