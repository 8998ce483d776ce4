"""Finding input images and planning where their outputs go."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UsageError
IMAGE_EXTENSIONS = {".jpg", ".jpeg", ".png", ".tif", ".tiff", ".webp", ".bmp"}
DEFAULT_MAX_PIXELS = 200_000_000  # 200 MP: above any camera today, below a decompression bomb
VIDEO_EXTENSIONS = {".mp4", ".m4v", ".mov", ".mkv", ".avi", ".webm"}

# Outputs this tool writes; never picked up as inputs when a folder is re-run.
# Our own outputs (full runs and --region/--preview crops) are never taken as inputs.
OUTPUT_NAME = re.compile(r"_(deblurred|preview_[a-z]+)(_s\d+|_std|_side_by_side)?$")


@dataclass
class InputItem:
    path: Path
    root: Path | None = None  # the directory it was found in (for mirroring sub-folders)
    error: str | None = None  # a folder that could not be listed: reported as a failed input

    @property
    def relative_parent(self) -> Path:
        return self.path.parent.relative_to(self.root) if self.root else Path()


# The first bytes of the photo formats we read: the content, not the name, decides.
_IMAGE_MAGIC = ((b"\x89PNG\r\n\x1a\n", "PNG"), (b"\xff\xd8\xff", "JPEG"), (b"II*\x00", "TIFF"), (b"MM\x00*", "TIFF"),
                (b"BM", "BMP"))


def sniff_image(path: Path) -> str | None:
    """The photo format a file's first bytes show (PNG, JPEG, TIFF, BMP, WEBP), else None."""
    try:
        with open(path, "rb") as f:
            head = f.read(12)
    except OSError:
        return None
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    return next((name for magic, name in _IMAGE_MAGIC if head.startswith(magic)), None)


def is_video(path: Path) -> bool:
    """A video by its name, unless its content is a photo (a PNG named .mp4 is a photo)."""
    return path.suffix.lower() in VIDEO_EXTENSIONS and sniff_image(path) is None


def discover(paths: list[Path], recursive: bool = False) -> list[InputItem]:
    """Expand files and directories to image and video files, in a stable order.

    Directories are walked without following symbolic links to directories, so a link
    loop cannot make a run endless.
    """
    items: list[InputItem] = []

    def unlistable(e: OSError) -> None:
        # An unreadable folder fails on its own; the rest of the batch goes on.
        where = Path(e.filename) if e.filename else p
        items.append(InputItem(where, p, error=f"{where}: cannot list this folder ({e.strerror or e})"))

    for p in paths:
        if p.is_dir():
            found = []
            if recursive:
                for dirpath, dirnames, filenames in os.walk(p, followlinks=False, onerror=unlistable):
                    dirnames.sort()
                    found += [Path(dirpath) / f for f in filenames]
            else:
                try:
                    found = [c for c in p.iterdir()]
                except OSError as e:
                    unlistable(e)
            for f in sorted(found):
                if f.suffix.lower() in IMAGE_EXTENSIONS | VIDEO_EXTENSIONS and f.is_file() and not OUTPUT_NAME.search(f.stem):
                    items.append(InputItem(f, p))
        else:
            items.append(InputItem(p))  # missing files are reported per file
    return items


@dataclass
class OutputPlan:
    main: list[Path]  # one file (average / single sample) or one per sample
    std: Path | None = None
    compare: Path | None = None  # --side-by-side: input and results in one labelled picture
    kernel: Path | None = None  # --save-kernel: the blur kernel found (or given)
    all: list[Path] = field(default_factory=list)

    def __post_init__(self):
        self.all = self.main + [p for p in (self.std, self.compare, self.kernel) if p is not None]


def plan_outputs(
    item: InputItem,
    output: Path | None,
    output_is_dir: bool,
    ext: str,
    n_files: int,
    with_std: bool,
    tag: str = "deblurred",
    name: str | None = None,
    with_compare: bool = False,
    with_kernel: bool = False,
) -> OutputPlan:
    """Output paths for one input: <stem>_<tag>.<ext> beside it or under an output folder;
    `n_files` > 1 writes <stem>_<tag>_s0.. one per sample; the std map and the side-by-side
    picture are <stem>_<tag>_std.png and <stem>_<tag>_side_by_side.png, the kernel <stem>_<tag>_kernel.png."""
    if output is not None and not output_is_dir:
        base_dir, stem = output.parent, output.stem
        ext = output.suffix.lstrip(".") or ext
    else:
        base_dir = (output / item.relative_parent) if output is not None else item.path.parent
        stem = f"{name or item.path.stem}_{tag}"
    main = [base_dir / f"{stem}.{ext}"] if n_files == 1 else [base_dir / f"{stem}_s{i}.{ext}" for i in range(n_files)]
    std = base_dir / f"{stem}_std.png" if with_std else None
    compare = base_dir / f"{stem}_side_by_side.png" if with_compare else None
    kernel = base_dir / f"{stem}_kernel.png" if with_kernel else None
    return OutputPlan(main, std, compare, kernel)


def distinct_names(items: list[InputItem], output_is_dir: bool, output: Path | None) -> dict[Path, str]:
    """Base names for outputs: the input's stem, or stem_ext where two inputs that land in
    the same folder share a stem (a.png and a.jpg would both write a_deblurred.png)."""
    if output is not None and not output_is_dir:
        return {}
    groups: dict[tuple[Path, str], list[InputItem]] = {}
    for item in items:
        folder = (output / item.relative_parent) if output is not None else item.path.parent
        groups.setdefault((folder, item.path.stem.lower()), []).append(item)
    return {i.path: f"{i.path.stem}_{i.path.suffix.lstrip('.').lower()}" for group in groups.values() if len(group) > 1 for i in group}


def output_is_directory(output: Path | None, inputs: list[Path]) -> bool:
    if output is None:
        return False
    many = len(inputs) > 1 or any(p.is_dir() for p in inputs)
    if many:
        if output.exists() and not output.is_dir():
            raise UsageError(f"-o {output}: several inputs need an output directory, but this is a file")
        if not output.exists() and output.suffix.lower() in IMAGE_EXTENSIONS:
            raise UsageError(f"-o {output}: several inputs need an output directory, not an image file name")
        return True
    return output.is_dir() or str(output).endswith(os.sep)
