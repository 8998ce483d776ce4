from .blur import BlurConfig, BlurResult, apply_blur, disc_kernel, gaussian_kernel, kernel_length, random_kernel, trajectory_kernel

__all__ = [
    "BlurConfig",
    "BlurResult",
    "apply_blur",
    "disc_kernel",
    "gaussian_kernel",
    "kernel_length",
    "random_kernel",
    "trajectory_kernel",
]
