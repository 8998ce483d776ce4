"""Training data: sharp folders blurred on the fly, and real blurry/sharp pairs.

Images are decoded once and kept in memory as uint8, so training never re-decodes a
JPEG. Every crop is drawn from a `numpy.random.Generator` the caller passes in; the
training loop derives one per step from (seed, step, rank), so data order is
reproducible and resumes exactly.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import ImageReadError
from ..io import IMAGE_EXTENSIONS, read_image
from .blur import BlurConfig, apply_blur, blur_margin


def _list_images(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())


def _load_u8(path: Path) -> np.ndarray | None:
    try:
        img = read_image(path)
    except ImageReadError as e:
        warnings.warn(f"skipping unreadable training image: {e}", stacklevel=2)
        return None
    return np.round(img.rgb * 255).astype(np.uint8)


def augment(rng: np.random.Generator, *arrays: np.ndarray) -> list[np.ndarray]:
    """The same random flip / 90-degree rotation applied to every array."""
    k = int(rng.integers(4))
    flip = rng.random() < 0.5
    out = []
    for a in arrays:
        a = np.rot90(a, k)
        if flip:
            a = a[:, ::-1]
        out.append(np.ascontiguousarray(a))
    return out


def _random_crop_box(rng, h, w, size):
    top = int(rng.integers(0, h - size + 1))
    left = int(rng.integers(0, w - size + 1))
    return top, left


class SharpFolder:
    """Sharp photos; each crop gets a fresh synthetic blur from the project's blur model."""

    def __init__(self, root: str | Path, crop: int = 128, blur: BlurConfig = BlurConfig(), limit: int | None = None):
        self.root = Path(root)
        paths = _list_images(self.root)[:limit]
        self.images = []
        self.skipped = 0
        for p in paths:
            a = _load_u8(p)
            if a is None or min(a.shape[:2]) < crop:
                self.skipped += 1
                continue
            self.images.append(a)
        if not self.images:
            raise ImageReadError(f"{self.root}: no usable images of at least {crop}x{crop} pixels")
        self.crop, self.blur = crop, blur

    @classmethod
    def from_arrays(cls, images: list[np.ndarray], crop: int, name: str, blur: BlurConfig = BlurConfig()) -> "SharpFolder":
        """Already decoded uint8 images (e.g. from a training pack)."""
        self = cls.__new__(cls)
        self.root, self.crop, self.blur = Path(name), crop, blur
        self.images = [a for a in images if min(a.shape[:2]) >= crop]
        self.skipped = len(images) - len(self.images)
        if not self.images:
            raise ImageReadError(f"{name}: no usable images of at least {crop}x{crop} pixels")
        return self

    def __len__(self):
        return len(self.images)

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        img = self.images[int(rng.integers(len(self.images)))]
        h, w = img.shape[:2]
        # Extra context around the crop so the blur sees real pixels, not reflections.
        size = min(self.crop + 2 * blur_margin(self.blur), h, w)
        top, left = _random_crop_box(rng, h, w, size)
        sharp = img[top : top + size, left : left + size].astype(np.float32) / 255.0
        blurry = apply_blur(sharp, rng, self.blur).blurry
        m = (size - self.crop) // 2
        sl = (slice(m, m + self.crop), slice(m, m + self.crop))
        return sharp[sl], blurry[sl]


class PairedFolder:
    """Real pairs: GoPro layout (<root>/<seq>/blur|sharp) or plain <root>/blur + <root>/sharp."""

    def __init__(self, root: str | Path, crop: int = 128, limit: int | None = None):
        self.root = Path(root)
        blur_dirs = [self.root / "blur"] if (self.root / "blur").is_dir() else sorted(self.root.glob("*/blur"))
        self.pairs = []
        self.skipped = too_small = 0
        for bdir in blur_dirs:
            sdir = bdir.parent / "sharp"
            if not sdir.is_dir():
                continue
            for bp in _list_images(bdir):
                sp = sdir / bp.relative_to(bdir)
                if not sp.is_file():
                    continue
                b, s = _load_u8(bp), _load_u8(sp)
                if b is None or s is None or b.shape != s.shape or min(b.shape[:2]) < crop:
                    self.skipped += 1
                    too_small += b is not None and s is not None and b.shape == s.shape
                    continue
                self.pairs.append((s, b))
                if limit and len(self.pairs) >= limit:
                    break
        if not self.pairs and too_small:
            raise ImageReadError(f"{self.root}: all {too_small} blur/sharp pair(s) are smaller than the "
                                 f"{crop}x{crop} training crop (use a smaller --crop)")
        if not self.pairs:
            raise ImageReadError(
                f"{self.root}: no blur/sharp pairs found (expected <root>/<sequence>/blur/*.png + sharp/*.png, "
                "or <root>/blur + <root>/sharp with matching names)"
            )
        self.crop = crop

    @classmethod
    def from_arrays(cls, pairs: list[tuple[np.ndarray, np.ndarray]], crop: int, name: str) -> "PairedFolder":
        """Already decoded (sharp, blurry) uint8 pairs (e.g. from a training pack)."""
        self = cls.__new__(cls)
        self.root, self.crop = Path(name), crop
        self.pairs = [(s, b) for s, b in pairs if s.shape == b.shape and min(s.shape[:2]) >= crop]
        self.skipped = len(pairs) - len(self.pairs)
        if not self.pairs:
            raise ImageReadError(f"{name}: no usable blur/sharp pairs")
        return self

    def __len__(self):
        return len(self.pairs)

    def sample(self, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        s, b = self.pairs[int(rng.integers(len(self.pairs)))]
        top, left = _random_crop_box(rng, s.shape[0], s.shape[1], self.crop)
        sl = (slice(top, top + self.crop), slice(left, left + self.crop))
        return s[sl].astype(np.float32) / 255.0, b[sl].astype(np.float32) / 255.0


@dataclass
class Source:
    dataset: SharpFolder | PairedFolder
    weight: float


class Mixture:
    """Draws each crop from one source chosen by weight, then augments it."""

    def __init__(self, sources: list[Source]):
        self.sources = sources
        w = np.array([s.weight for s in sources], np.float64)
        self.p = w / w.sum()

    def batch(self, rng: np.random.Generator, n: int) -> tuple[np.ndarray, ...]:
        """(sharp, blurry) as float32 arrays (n, 3, H, W) in [-1, 1]; where every source
        gives a kernel with its crop (the kernel path's shards), the kernels third, (n, k, k)
        float32, each turned and flipped with its crop and centred in a common side."""
        xs, ys, ks = [], [], []
        for _ in range(n):
            src = self.sources[int(rng.choice(len(self.sources), p=self.p))]
            sharp, blurry, *kernel = augment(rng, *src.dataset.sample(rng))
            xs.append(sharp)
            ys.append(blurry)
            ks.append(kernel[0] if kernel else None)
        to = lambda a: np.stack(a).transpose(0, 3, 1, 2) * 2.0 - 1.0  # noqa: E731
        out = to(xs).astype(np.float32), to(ys).astype(np.float32)
        if any(k is None for k in ks):
            return out
        side = max(k.shape[-1] for k in ks)
        return (*out, np.stack([np.pad(k, (side - k.shape[-1]) // 2) for k in ks]).astype(np.float32))


def validation_pairs(root: str | Path, crop: int = 192, seed: int = 1234, limit: int | None = None, blur: BlurConfig = BlurConfig()):
    """A fixed synthetic validation set: centre crops of sharp photos, blurred at a fixed seed."""
    out = []
    for i, p in enumerate(_list_images(Path(root))[:limit]):
        a = _load_u8(p)
        if a is None or min(a.shape[:2]) < crop:
            continue
        h, w = a.shape[:2]
        size = min(crop + 2 * blur_margin(blur), h, w)
        top, left = (h - size) // 2, (w - size) // 2
        sharp = a[top : top + size, left : left + size].astype(np.float32) / 255.0
        blurry = apply_blur(sharp, np.random.default_rng([seed, i]), blur).blurry
        m = (size - crop) // 2
        sl = (slice(m, m + crop), slice(m, m + crop))
        out.append((sharp[sl], blurry[sl]))
    return out
