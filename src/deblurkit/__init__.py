"""deblur: predict-and-refine diffusion deblurring (DvSR) for real photos."""

__version__ = "0.1.0"
