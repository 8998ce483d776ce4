"""Finding benchmark pairs on disk; a malformed tree gets one message with the expected layout."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError
from ..io import IMAGE_EXTENSIONS


@dataclass(frozen=True)
class Pair:
    name: str
    blur: Path
    sharp: Path


def _images(d: Path) -> dict[str, Path]:
    return {p.name: p for p in sorted(d.iterdir()) if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file()}


def match_folders(blur_dir: Path, sharp_dir: Path, prefix: str = "") -> list[Pair]:
    blur, sharp = _images(blur_dir), _images(sharp_dir)
    return [Pair(prefix + name, blur[name], sharp[name]) for name in blur if name in sharp]


GOPRO_LAYOUT = (
    "expected the GoPro test set as <root>/test/<sequence>/blur/*.png + sharp/*.png (official layout; "
    "--gamma uses blur_gamma/) or <root>/test/input + <root>/test/target (flattened); a <root> that is "
    "itself the test folder also works. The dataset is published by Nah et al. (2017), "
    "https://seungjunnah.github.io/Datasets/gopro"
)


def gopro_pairs(root: Path, gamma: bool = False) -> list[Pair]:
    if not root.is_dir():
        raise UsageError(f"{root}: not a directory; {GOPRO_LAYOUT}")
    test = root / "test" if (root / "test").is_dir() else root
    blur_name = "blur_gamma" if gamma else "blur"
    pairs: list[Pair] = []
    if (test / "input").is_dir() and (test / "target").is_dir():
        pairs = match_folders(test / "input", test / "target")
    else:
        for seq in sorted(p for p in test.iterdir() if p.is_dir()):
            if (seq / blur_name).is_dir() and (seq / "sharp").is_dir():
                pairs += match_folders(seq / blur_name, seq / "sharp", prefix=f"{seq.name}/")
    if not pairs:
        raise UsageError(f"{root}: no GoPro pairs found; {GOPRO_LAYOUT}")
    return pairs


def folder_pairs(blur_dir: Path, sharp_dir: Path) -> list[Pair]:
    for d in (blur_dir, sharp_dir):
        if not d.is_dir():
            raise UsageError(f"{d}: not a directory (expected matching file names in --blur and --sharp)")
    pairs = match_folders(blur_dir, sharp_dir)
    if not pairs:
        raise UsageError(f"{blur_dir} / {sharp_dir}: no files with matching names")
    return pairs
