"""deblurkit: predict-and-refine diffusion deblurring (DvSR) for real photos.

The command is `deblur` (also installed as `deblurkit`); the Python API is `Deblurrer`.
"""

__version__ = "0.1.0"

__all__ = ["Deblurrer", "Restoration", "__version__"]


def __getattr__(name: str):
    # Lazy, so `deblur --version` (which imports this package) does not import torch.
    if name in ("Deblurrer", "Restoration"):
        from . import api

        return getattr(api, name)
    raise AttributeError(f"module 'deblurkit' has no attribute {name!r}")
