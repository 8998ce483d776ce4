"""LPIPS when its backbone weights are already on this machine; never a download.

The `lpips` package wraps torchvision's ImageNet AlexNet, which torchvision fetches on first
use. The bench must not depend on downloads, so LPIPS is computed only when the package
imports and the AlexNet weights are already in torch's hub cache; otherwise the caller
gets a one-line reason to print instead of a value.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import torch

ALEXNET_FILE = "alexnet-owt-7be5be79.pth"  # torchvision's ImageNet AlexNet weights


def load_lpips(device: torch.device) -> tuple[Callable[[torch.Tensor, torch.Tensor], float] | None, str]:
    """(metric, "") when usable, else (None, "n/a (weights not available: ...)")."""
    try:
        import lpips  # type: ignore[import-not-found]
    except Exception as e:  # ImportError, or torchvision failing to import beneath it
        return None, f"n/a (weights not available: the lpips package cannot be imported: {type(e).__name__})"
    cached = Path(torch.hub.get_dir()) / "checkpoints" / ALEXNET_FILE
    if not cached.is_file():
        return None, f"n/a (weights not available: AlexNet weights not cached at {cached})"
    try:
        net = lpips.LPIPS(net="alex", verbose=False).to(device).eval()
    except Exception as e:
        return None, f"n/a (weights not available: {type(e).__name__}: {e})"

    @torch.no_grad()
    def metric(pred: torch.Tensor, target: torch.Tensor) -> float:
        return float(net(pred.to(device) * 2 - 1, target.to(device) * 2 - 1).mean())

    return metric, ""
