"""Labelled side-by-side pictures: the input, the result(s) and the std map in one row.

One implementation serves `deblur --side-by-side` and the README's crop figure
(examples/make_comparison.py): every panel is cut at the same place (optional), scaled by
the same factor and given a label bar above it.
"""

from __future__ import annotations

import cv2
import numpy as np

GAP = 6  # white pixels between panels
DEFAULT_MAX_SIDE = 2048  # --side-by-side: panels above this long side are shrunk to it


def _to_uint8(rgb: np.ndarray) -> np.ndarray:
    if rgb.dtype == np.uint8:
        return rgb
    return np.round(np.clip(rgb, 0.0, 1.0) * 255.0).astype(np.uint8)


def _label_bar(width: int, text: str, scale: float) -> np.ndarray:
    font = cv2.FONT_HERSHEY_SIMPLEX
    thickness = max(1, round(scale * 1.6))
    (tw, th), base = cv2.getTextSize(text, font, scale, thickness)
    # Long labels on narrow panels shrink instead of running off the edge.
    if tw > width - 8 and tw > 0:
        scale *= (width - 8) / tw
        thickness = max(1, round(scale * 1.6))
        (tw, th), base = cv2.getTextSize(text, font, scale, thickness)
    bar = np.full((th + base + 10, width, 3), 255, np.uint8)
    cv2.putText(bar, text, (4, th + 5), font, scale, (0, 0, 0), thickness, cv2.LINE_AA)
    return bar


def compose(
    panels: list[tuple[str, np.ndarray]],
    crop: tuple[int, int, int, int] | None = None,
    zoom: float = 1.0,
    max_side: int | None = None,
) -> np.ndarray:
    """Panels (label, (H, W, 3) float [0, 1] or uint8) -> one labelled row, uint8 RGB.

    crop (X, Y, W, H) cuts each panel at the same place first; zoom enlarges with nearest
    neighbour (pixels stay visible); max_side shrinks panels whose long side exceeds it.
    """
    if not panels:
        raise ValueError("nothing to compose")
    tiles = []
    for _label, rgb in panels:
        if rgb.ndim == 2:
            rgb = np.repeat(rgb[:, :, None], 3, axis=2)
        if crop is not None:
            x, y, w, h = crop
            rgb = rgb[y : y + h, x : x + w]
        tiles.append(_to_uint8(rgb))
    h = max(t.shape[0] for t in tiles)
    w = max(t.shape[1] for t in tiles)
    factor = zoom
    if max_side is not None and max(h, w) * factor > max_side:
        factor = max_side / max(h, w)
    if factor != 1.0:
        interp = cv2.INTER_NEAREST if factor > 1 else cv2.INTER_AREA
        size = lambda t: (max(1, round(t.shape[1] * factor)), max(1, round(t.shape[0] * factor)))  # noqa: E731
        tiles = [cv2.resize(t, size(t), interpolation=interp) for t in tiles]
    ph = max(t.shape[0] for t in tiles)
    scale = float(np.clip(ph / 700.0, 0.45, 2.5))  # labels readable on small crops and on full photos
    columns = []
    for (label, _), t in zip(panels, tiles):
        body = np.full((ph, t.shape[1], 3), 255, np.uint8)
        body[: t.shape[0]] = t
        columns.append(np.concatenate([_label_bar(t.shape[1], label, scale), body], axis=0))
    bar_h = max(c.shape[0] for c in columns)
    row = []
    for i, c in enumerate(columns):
        if c.shape[0] < bar_h:  # a shrunken label: pad its bar so bodies line up
            c = np.concatenate([np.full((bar_h - c.shape[0], c.shape[1], 3), 255, np.uint8), c], axis=0)
        if i:
            row.append(np.full((bar_h, GAP, 3), 255, np.uint8))
        row.append(c)
    return np.concatenate(row, axis=1)
