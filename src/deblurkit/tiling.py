"""Overlapping tiles with feathered blending, for fully convolutional networks.

The image is reflect-padded once so that each side is either at least one tile long or
a multiple of the network's required multiple; every tile then has the same shape, so
tiles batch together and need no per-tile padding. Each tile's output is weighted by
a separable half-sine (sin^2) ramp across the overlap on the sides that touch another
tile (weight 1 elsewhere, including the image border) and the sum is divided by the
total weight, so the blend weights form a partition of unity everywhere.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable, Sequence

import torch
from torch.nn import functional as F


def tile_starts(length: int, tile: int, overlap: int) -> list[int]:
    """Start offsets covering [0, length) with tiles of `tile`, stepping tile - overlap.

    The last tile is aligned to the end, so its overlap with the previous one may be
    larger than `overlap`; the normalised blend handles that.
    """
    if tile >= length:
        return [0]
    if not 0 <= overlap < tile:
        raise ValueError(f"overlap must be in [0, tile), got overlap={overlap}, tile={tile}")
    stride = tile - overlap
    n = math.ceil((length - tile) / stride) + 1
    starts = [min(i * stride, length - tile) for i in range(n)]
    return sorted(set(starts))


def even_tile(length: int, tile: int, overlap: int, multiple: int = 1) -> int:
    """The smallest tile (a multiple of `multiple`, at most `tile`) that covers `length`
    with as many tiles as `tile` itself would need: no tile is wasted on a sliver."""
    if length <= tile:
        return length
    n = math.ceil((length - overlap) / (tile - overlap))
    t = math.ceil((length + (n - 1) * overlap) / n)
    t = math.ceil(t / multiple) * multiple
    return min(t, tile)


def ramp(tile: int, overlap: int, fade_in: bool, fade_out: bool) -> torch.Tensor:
    """1-D blend weight of one tile: sin^2 rising over `overlap` pixels on faded sides.

    Strictly positive (sampled at pixel centres), so the normalisation never divides by 0.
    """
    w = torch.ones(tile, dtype=torch.float32)
    n = min(overlap, tile // 2)
    if n > 0:
        x = (torch.arange(n, dtype=torch.float32) + 0.5) / n
        r = torch.sin(0.5 * math.pi * x) ** 2
        if fade_in:
            w[:n] = torch.minimum(w[:n], r)
        if fade_out:
            w[tile - n :] = torch.minimum(w[tile - n :], r.flip(0))
    return w


def pad_amounts(height: int, width: int, tile: int, multiple: int) -> tuple[int, int]:
    """Bottom/right padding so each side is >= tile or a multiple of `multiple`, and at
    least two multiples long: on a side of one multiple the deepest level of the U-Net is
    1 pixel wide, where bf16 convolutions on the CPU (oneDNN) were seen to return NaN."""

    def one(n: int) -> int:
        return 0 if n >= tile else max((-n) % multiple, 2 * multiple - n)

    return one(height), one(width)


def pad_image(x: torch.Tensor, pad_h: int, pad_w: int) -> torch.Tensor:
    """Reflect-pad bottom/right (replicate where the image is too small to reflect)."""
    if pad_h == 0 and pad_w == 0:
        return x
    mode = "reflect" if pad_h < x.shape[-2] and pad_w < x.shape[-1] else "replicate"
    return F.pad(x, (0, pad_w, 0, pad_h), mode=mode)


@dataclass
class TileGrid:
    """Geometry and blend weights for one (padded) image size; build once, reuse every step."""

    height: int
    width: int
    tile_h: int
    tile_w: int
    boxes: list[tuple[int, int]]  # (top, left) of each tile
    weights: list[torch.Tensor]  # (tile_h, tile_w) unnormalised blend weight of each tile
    # 1 / sum of weights is exactly 1 outside the overlaps, so only the rows and columns
    # that cross an overlap are kept (4 bytes a pixel of a large photo saved): rows `rows`
    # in full, and columns `cols` on the remaining rows `rest`.
    rows: torch.Tensor  # row indices that cross a horizontal overlap
    inv_rows: torch.Tensor  # (len(rows), W)
    cols: torch.Tensor  # column indices that cross a vertical overlap
    rest: torch.Tensor  # the other rows
    inv_cols: torch.Tensor  # (len(rest), len(cols))

    @property
    def inv_total(self) -> torch.Tensor:
        """(H, W) 1 / sum of weights, assembled (for checks; `apply` uses the parts)."""
        inv = torch.ones(self.height, self.width, device=self.inv_rows.device)
        inv[self.rows] = self.inv_rows
        inv[self.rest[:, None], self.cols[None, :]] = self.inv_cols
        return inv

    @classmethod
    def build(cls, height: int, width: int, tile: int, overlap: int, device=None, multiple: int = 1) -> "TileGrid":
        th, tw = even_tile(height, tile, overlap, multiple), even_tile(width, tile, overlap, multiple)
        ys, xs = tile_starts(height, th, overlap), tile_starts(width, tw, overlap)
        boxes, weights = [], []
        total = torch.zeros(height, width)
        for top in ys:
            wy = ramp(th, overlap, top > 0, top + th < height)
            for left in xs:
                wx = ramp(tw, overlap, left > 0, left + tw < width)
                w = wy[:, None] * wx[None, :]
                boxes.append((top, left))
                weights.append(w.to(device))
                total[top : top + th, left : left + tw] += w
        inv = 1.0 / total
        # A pixel covered by one tile row and one tile column has weight exactly 1 (the
        # ramps fade only inside overlaps), so its normalisation is 1.
        row_cover, col_cover = torch.zeros(height, dtype=torch.int32), torch.zeros(width, dtype=torch.int32)
        for top in ys:
            row_cover[top : top + th] += 1
        for left in xs:
            col_cover[left : left + tw] += 1
        rows, rest = (row_cover > 1).nonzero()[:, 0], (row_cover == 1).nonzero()[:, 0]
        cols = (col_cover > 1).nonzero()[:, 0]
        return cls(height, width, th, tw, boxes, weights, rows.to(device), inv[rows].to(device), cols.to(device),
                   rest.to(device), inv[rest[:, None], cols[None, :]].to(device))

    def __len__(self) -> int:
        return len(self.boxes)

    def normalised_weight_sum(self) -> torch.Tensor:
        """Sum over tiles of each tile's normalised weight (all ones for a valid grid)."""
        acc = torch.zeros(self.height, self.width, device=self.inv_total.device)
        for (t, l), w in zip(self.boxes, self.weights, strict=True):
            acc[t : t + self.tile_h, l : l + self.tile_w] += w * self.inv_total[t : t + self.tile_h, l : l + self.tile_w]
        return acc

    def chunk_starts(self, tiles_per_batch: int = 1) -> range:
        """Index of the first tile of each batch of tiles `apply` runs, in its order."""
        return range(0, len(self.boxes), max(1, tiles_per_batch))

    def crops(self, x: torch.Tensor, start: int, tiles_per_batch: int = 1, batch: int | None = None) -> torch.Tensor:
        """The tiles of batch `start` of x (B or 1, C, H, W), tile-major: (n * batch, C, tile_h, tile_w)."""
        batch = batch or x.shape[0]
        th, tw = self.tile_h, self.tile_w
        chunk = self.boxes[start : start + max(1, tiles_per_batch)]
        return torch.cat([x[:, :, t : t + th, l : l + tw].expand(batch, -1, -1, -1) for t, l in chunk])

    def apply(
        self,
        fn: Callable[..., torch.Tensor],
        inputs: Sequence[torch.Tensor],
        tiles_per_batch: int = 1,
        per_batch: Sequence | None = None,
    ) -> torch.Tensor:
        """Run `fn` over all tiles and blend. Inputs are (B or 1, C, H, W); 1 broadcasts.

        `fn` receives one crop per input, all of shape (n * B, C, tile_h, tile_w), and
        returns (n * B, C_out, tile_h, tile_w). With `per_batch` (one item per batch of
        tiles, in `chunk_starts` order: e.g. something computed once per tile and reused
        at every step) it is called as fn(crops, item).
        """
        batch = max(x.shape[0] for x in inputs)
        out = None
        th, tw = self.tile_h, self.tile_w
        for k_batch, start in enumerate(self.chunk_starts(tiles_per_batch)):
            chunk = self.boxes[start : start + max(1, tiles_per_batch)]
            crops = [self.crops(x, start, tiles_per_batch, batch) for x in inputs]
            res = (fn(crops) if per_batch is None else fn(crops, per_batch[k_batch])).float()
            if out is None:
                out = torch.zeros(batch, res.shape[1], self.height, self.width, device=res.device)
            for k, (t, l) in enumerate(chunk):
                out[:, :, t : t + th, l : l + tw] += res[k * batch : (k + 1) * batch] * self.weights[start + k]
        # Normalise in place; multiplying by the exact 1.0 elsewhere would change nothing.
        if len(self.rows):
            out[:, :, self.rows] *= self.inv_rows
        if len(self.cols) and len(self.rest):
            out[:, :, self.rest[:, None], self.cols[None, :]] *= self.inv_cols
        return out
