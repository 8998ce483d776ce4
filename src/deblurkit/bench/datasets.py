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


def unmatched(blur_dir: Path, sharp_dir: Path) -> tuple[list[str], list[str]]:
    """Names only in the blur folder, and only in the sharp folder."""
    blur, sharp = _images(blur_dir), _images(sharp_dir)
    return sorted(set(blur) - set(sharp)), sorted(set(sharp) - set(blur))


def folder_pairs(blur_dir: Path, sharp_dir: Path, note=None) -> list[Pair]:
    for d in (blur_dir, sharp_dir):
        if not d.is_dir():
            raise UsageError(f"{d}: not a directory (expected matching file names in --blur and --sharp)")
    if note is not None:
        for folder, names in zip((blur_dir, sharp_dir), unmatched(blur_dir, sharp_dir)):
            if names:
                shown = ", ".join(names[:5]) + (", ..." if len(names) > 5 else "")
                note(f"note: {len(names)} file(s) only in {folder}, left out: {shown}")
    pairs = match_folders(blur_dir, sharp_dir)
    if not pairs:
        raise UsageError(f"{blur_dir} / {sharp_dir}: no files with matching names")
    return pairs


HIDE_LAYOUT = (
    "expected HIDE as <root>/test/test-close-ups/*.png + <root>/test/test-long-shot/*.png with sharp images of "
    "the same names in <root>/GT/, or the flattened <root>/test/input + <root>/test/target. The dataset is "
    "published by Shen et al. (2019), https://github.com/joanshen0508/HA_deblur"
)


def hide_pairs(root: Path) -> list[Pair]:
    if not root.is_dir():
        raise UsageError(f"{root}: not a directory; {HIDE_LAYOUT}")
    test = root / "test"
    pairs: list[Pair] = []
    if (test / "input").is_dir() and (test / "target").is_dir():
        pairs = match_folders(test / "input", test / "target")
    elif (root / "GT").is_dir():
        for sub in ("test-close-ups", "test-long-shot"):
            if (test / sub).is_dir():
                pairs += match_folders(test / sub, root / "GT", prefix=f"{sub}/")
    if not pairs:
        raise UsageError(f"{root}: no HIDE pairs found; {HIDE_LAYOUT}")
    return pairs


def realblur_layout(variant: str) -> str:
    return (
        f"expected RealBlur as <root>/RealBlur_{variant}_test_list.txt whose lines name a sharp and a blurry "
        f"image relative to <root> (\"<gt path> <blur path>\"). The dataset is published by Rim et al. (2020), "
        "http://cg.postech.ac.kr/research/realblur/"
    )


def realblur_pairs(root: Path, variant: str) -> list[Pair]:
    """RealBlur-J or -R test pairs from the official test list."""
    listing = root / f"RealBlur_{variant}_test_list.txt"
    if not listing.is_file():
        raise UsageError(f"{listing}: not found; {realblur_layout(variant)}")
    pairs = []
    for n, line in enumerate(listing.read_text(encoding="utf-8").splitlines(), 1):
        parts = line.split()
        if not parts:
            continue
        if len(parts) < 2:
            raise UsageError(f"{listing}:{n}: expected '<gt path> <blur path>', got {line.strip()!r}")
        gt, blur = root / parts[0], root / parts[1]
        if not gt.is_file() or not blur.is_file():
            missing = gt if not gt.is_file() else blur
            raise UsageError(f"{listing}:{n}: {missing} does not exist; {realblur_layout(variant)}")
        pairs.append(Pair(parts[1], blur, gt))
    if not pairs:
        raise UsageError(f"{listing}: empty test list; {realblur_layout(variant)}")
    return pairs
