"""Image quality metrics through torchmetrics (PSNR / SSIM on RGB in [0, 1])."""

from __future__ import annotations

import torch
from torchmetrics.functional.image import peak_signal_noise_ratio, structural_similarity_index_measure


def psnr(pred: torch.Tensor, target: torch.Tensor) -> float:
    """PSNR in dB of (N, 3, H, W) images in [0, 1] (averaged over the batch)."""
    return float(peak_signal_noise_ratio(pred.float().clamp(0, 1), target.float(), data_range=1.0))


def ssim(pred: torch.Tensor, target: torch.Tensor) -> float:
    return float(structural_similarity_index_measure(pred.float().clamp(0, 1), target.float(), data_range=1.0))
