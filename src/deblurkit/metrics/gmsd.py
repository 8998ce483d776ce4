"""GMSD (Xue et al. 2014): gradient magnitude similarity deviation, full reference, no
learned weights; 0 for identical images, higher is worse.

Luma Y = 0.299 R + 0.587 G + 0.114 B on [0, 1]; 2x2 average pooling (zero-padded to even
sides); Prewitt gradients (1/3 normalised, zero padding); similarity
(2 g1 g2 + T) / (g1^2 + g2^2 + T) with T = 170 / 255^2; the score is the population standard
deviation of that map. This is the definition of the authors' MATLAB code as implemented
by piq 0.8.0, which it matches to float precision (tests/test_gmsd.py).
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

T = 170.0 / 255.0**2


def gmsd(pred: torch.Tensor, target: torch.Tensor) -> float:
    """Mean GMSD over a batch of (N, 3, H, W) RGB images in [0, 1]."""
    w = torch.tensor([0.299, 0.587, 0.114], dtype=torch.float32, device=pred.device).view(1, 3, 1, 1)
    kx = torch.tensor([[-1.0, 0.0, 1.0]] * 3, device=pred.device) / 3.0
    kernels = torch.stack([kx, kx.t()]).unsqueeze(1)  # (2, 1, 3, 3)

    def grad_mag(x: torch.Tensor) -> torch.Tensor:
        y = (x.float().clamp(0, 1) * w).sum(dim=1, keepdim=True)
        odd = max(y.shape[2] % 2, y.shape[3] % 2)
        y = F.avg_pool2d(F.pad(y, [0, odd, 0, odd]), kernel_size=2, stride=2)
        g = F.conv2d(y, kernels, padding=1)
        return torch.sqrt((g**2).sum(dim=1, keepdim=True))

    g1, g2 = grad_mag(pred), grad_mag(target)
    gms = (2 * g1 * g2 + T) / (g1**2 + g2**2 + T)
    score = (gms - gms.mean(dim=(1, 2, 3), keepdim=True)).pow(2).mean(dim=(1, 2, 3)).sqrt()
    return float(score.mean())
