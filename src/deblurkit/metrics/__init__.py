"""Image quality metrics through torchmetrics (PSNR / SSIM on RGB, or on the Y channel)."""

from __future__ import annotations

import torch
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure


def to_y(rgb: torch.Tensor) -> torch.Tensor:
    """BT.601 luma of (N, 3, H, W) RGB in [0, 1], on [16, 235] / 255 as MATLAB's rgb2ycbcr
    (the Y-channel convention of most deblurring and super-resolution papers)."""
    w = torch.tensor([65.481, 128.553, 24.966], dtype=rgb.dtype, device=rgb.device).view(1, 3, 1, 1)
    return ((rgb * w).sum(dim=1, keepdim=True) + 16.0) / 255.0


def _prep(pred, target, y_channel):
    pred, target = pred.float().clamp(0, 1), target.float()
    return (to_y(pred), to_y(target)) if y_channel else (pred, target)


def psnr(pred: torch.Tensor, target: torch.Tensor, y_channel: bool = False) -> float:
    """PSNR in dB of (N, 3, H, W) images in [0, 1] (over the whole batch)."""
    return float(peak_signal_noise_ratio(*_prep(pred, target, y_channel), data_range=1.0))


def ssim(pred: torch.Tensor, target: torch.Tensor, y_channel: bool = False) -> float:
    return float(structural_similarity_index_measure(*_prep(pred, target, y_channel), data_range=1.0))
