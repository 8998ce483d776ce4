from .discover import VIDEO_EXTENSIONS, InputItem, OutputPlan, discover, distinct_names, is_video, output_is_directory, plan_outputs
from .region import Region, crop_image, parse_region, preview_region
from .read import DEFAULT_MAX_PIXELS, IMAGE_EXTENSIONS, LoadedImage, apply_orientation, read_image
from .write import FORMATS, encode_image, format_for, write_atomic

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "FORMATS",
    "IMAGE_EXTENSIONS",
    "InputItem",
    "VIDEO_EXTENSIONS",
    "is_video",
    "LoadedImage",
    "OutputPlan",
    "Region",
    "apply_orientation",
    "crop_image",
    "discover",
    "distinct_names",
    "encode_image",
    "format_for",
    "output_is_directory",
    "parse_region",
    "plan_outputs",
    "preview_region",
    "read_image",
    "write_atomic",
]
