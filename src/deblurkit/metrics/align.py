"""Scoring after alignment, as the deblurring benchmarks score (Köhler et al. 2012, Levin
et al. 2009, Lai et al. 2016): a blind method cannot know where the kernel moved the photo
(an estimated kernel is defined up to a shift), so the restored image is shifted by the
whole-pixel offset, within a window, that matches the sharp photo best, and both are
compared on the sharp photo's inside (a margin as wide as the window), where every shift
has real pixels."""

from __future__ import annotations

import torch

ALIGN_WINDOW = 10  # px: the largest shift looked for in each direction


def align_rule(window: int) -> str:
    """The rule in words, for bench records."""
    return (f"the restored image shifted by the whole-pixel offset within +-{window} px that minimises the MSE against the "
            f"sharp photo; PSNR/SSIM on the sharp photo's inside ({window} px margin) against the shifted image's")


def best_shift(pred: torch.Tensor, target: torch.Tensor, window: int = ALIGN_WINDOW) -> tuple[int, int]:
    """(dy, dx) such that pred[..., m + dy : H - m + dy, m + dx : W - m + dx] matches
    target[..., m : H - m, m : W - m] best (least MSE), |dy|, |dx| <= window = m."""
    h, w = target.shape[-2:]
    m = window
    if h <= 2 * m or w <= 2 * m:
        raise ValueError(f"a {w}x{h} image has no inside for an alignment window of {m} px")
    ref = target[..., m : h - m, m : w - m].float()
    p = pred.float()
    best, arg = float("inf"), (0, 0)
    for dy in range(-m, m + 1):
        for dx in range(-m, m + 1):
            err = float(((p[..., m + dy : h - m + dy, m + dx : w - m + dx] - ref) ** 2).mean())
            # Ties keep the smaller shift (the search runs from -m; compare by size).
            if err < best - 1e-12 or (abs(err - best) <= 1e-12 and abs(dy) + abs(dx) < abs(arg[0]) + abs(arg[1])):
                best, arg = err, (dy, dx)
    return arg


def aligned(pred: torch.Tensor, target: torch.Tensor, window: int = ALIGN_WINDOW) -> tuple[torch.Tensor, torch.Tensor, tuple[int, int]]:
    """(pred's shifted inside, target's inside, the shift) for scoring after alignment."""
    dy, dx = best_shift(pred, target, window)
    h, w = target.shape[-2:]
    m = window
    return pred[..., m + dy : h - m + dy, m + dx : w - m + dx], target[..., m : h - m, m : w - m], (dy, dx)
