"""Synthetic blur: camera shake, defocus and Gaussian blur rendered in linear light.

Everything is driven by one `numpy.random.Generator`, so a seed fully determines the
kernel(s), the noise and the JPEG step.

The blur models (`BLUR_MODELS`):
- "handheld" (`deblur train`'s default since issue 22): real hand shake as
  `shake.py` models it (variable-speed rotation paths sampled in time, up to 120 px,
  spatially varying through the camera's homographies for part of the samples), then
  sRGB-domain Gaussian noise and 8-bit values as in real files;
- "handheld-large": the same with half the shake extents drawn uniformly rather than
  log-uniformly (a third of the paths 60-120 px instead of a fifth; small ones stay);
- "handheld-values": handheld-large with a linear camera response (the blur acts on the
  stored values) and its sRGB noise on every photo;
- "handheld-iso": handheld-large with one sensor gain per photo setting its noise;
- "handheld-plain": our kernels (hand shake; a tenth defocus, a tenth Gaussian) as the
  standard benchmarks blur (a convolution of the stored values, Gaussian noise, 8 bits);
- "legacy" (`BlurConfig()`, what dvsr-medium-v1..v6 learned and `deblur bench synthetic`
  keeps measuring by default): a constant-speed 2-D trajectory in the spirit of Boracchi &
  Foi (2012), 3-30 px in a 41 px support, with a two-kernel blend for spatial variation.
Blur is applied to linear intensities (sRGB gamma undone; the handheld model draws the
camera's response gamma per sample, from 1 (blur on the stored values) to 2.4), with highlights lifted above
the clipping point first so saturated lights streak as they do in real photographs;
shot and read noise follow the blur; an optional JPEG round trip comes last.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import cv2
import numpy as np

from .shake import ShakeConfig, handheld_kernel, local_kernel_blur, random_rotation_shake


CLIPPED = 1.0 - 0.5 / 255  # at or above this sRGB value a pixel counts as saturated


@dataclass(frozen=True)
class BlurConfig:
    kernel_size: int = 41  # maximum support (odd)
    motion_length: tuple[float, float] = (3.0, 30.0)  # trajectory length in pixels
    defocus_radius: tuple[float, float] = (1.0, 6.0)
    gaussian_sigma: tuple[float, float] = (0.5, 2.5)
    p_motion: float = 0.7
    p_defocus: float = 0.15  # the rest is Gaussian
    p_spatially_varying: float = 0.2
    highlight_gain: tuple[float, float] = (1.0, 4.0)
    shot_noise: tuple[float, float] = (0.0, 0.01)  # variance per unit linear intensity
    read_noise: tuple[float, float] = (0.0, 0.01)  # standard deviation
    p_jpeg: float = 0.3
    jpeg_quality: tuple[int, int] = (70, 95)
    # "trajectory" (legacy constant-speed walk) or "handheld" (shake.py).
    shake: str = "trajectory"
    handheld: ShakeConfig = ShakeConfig()
    # Gaussian noise added to the sRGB values (as the standard benchmarks do), then 8 bits.
    p_srgb_noise: float = 0.0
    srgb_noise: tuple[float, float] = (0.0, 0.02)
    quantize: bool = False
    # The camera's response between scene light and the stored values, as a power law
    # value = light^(1/gamma) drawn per sample from this range; None: the exact sRGB curve.
    # Real cameras differ (tone curves, local tone mapping, flat profiles): gamma 1 is a
    # linear response (the blur acts on the stored values, as the standard synthetic
    # benchmarks make theirs), 2.4 about sRGB.
    response_gamma: tuple[float, float] | None = None
    # How a photo's noise levels are drawn: "uniform" (each level on its own, uniformly in
    # its range) or "iso" (one sensor gain per photo, log-uniform, setting every level at
    # once: base ISO in daylight to high ISO in the dark, as real photos are spread; each
    # range then runs from its level at the lowest gain to its level at the highest).
    noise_draw: str = "uniform"


# The named blur models `deblur train / blur / bench synthetic --blur-model` take.
BLUR_MODELS = {
    "legacy": BlurConfig(),
    "handheld": BlurConfig(shake="handheld", p_spatially_varying=0.0, p_motion=0.8, p_defocus=0.1,
                           p_srgb_noise=0.6, quantize=True, response_gamma=(1.0, 2.4)),
}
# The same with half the shake extents drawn uniformly: about a third of the paths are
# 60-120 px (one in five with log-uniform extents), for a network that must learn large shake.
BLUR_MODELS["handheld-large"] = replace(
    BLUR_MODELS["handheld"], handheld=replace(BLUR_MODELS["handheld"].handheld, uniform_extent_share=0.5))
# handheld-large with a linear camera response (gamma 1: the blur acts on the stored values,
# the end of the handheld model's own gamma range, as the standard synthetic benchmarks
# blur) and its sRGB-domain noise on every photo: the kernel path's refiner learns both,
# since a deconvolution's errors differ where the blur is not a convolution of the values.
BLUR_MODELS["handheld-values"] = replace(BLUR_MODELS["handheld-large"], response_gamma=(1.0, 1.0), p_srgb_noise=1.0)
# handheld-large with its noise set by one sensor gain per photo, log-uniform over 8 stops
# (about ISO 100 to 25600): most hand-held photos are taken in good light, at low noise,
# which the uniform draws of `handheld` almost never give (3% of photos at or under 1.2% std
# at mid-grey; 46% here, median 1.4%). The top of each range is handheld's, the bottom
# 1/256 of it: shot noise's variance, read noise's std and the noise an ISP leaves in the
# values all grow in proportion to the gain.
BLUR_MODELS["handheld-iso"] = replace(
    BLUR_MODELS["handheld-large"], noise_draw="iso", shot_noise=(0.01 / 256, 0.01), read_noise=(0.01 / 256, 0.01),
    srgb_noise=(0.02 / 256, 0.02))
# Our kernels (hand shake; as in handheld, a tenth defocus discs and a tenth Gaussian) as
# the standard synthetic benchmarks blur with theirs: one kernel per photo convolving the
# stored values (no rotation across the frame, no lifted highlights), Gaussian noise of
# 0-2% on the values, 8 bits, no JPEG. No camera makes photos this way; the kernel path's
# refiner learns it beside handheld-iso so that it does not unlearn a plain convolution
# while it learns a camera's (it did, trained on handheld alone).
BLUR_MODELS["handheld-plain"] = replace(
    BLUR_MODELS["handheld-large"], handheld=replace(BLUR_MODELS["handheld-large"].handheld, p_rotation=0.0),
    response_gamma=(1.0, 1.0), highlight_gain=(1.0, 1.0), shot_noise=(0.0, 0.0), read_noise=(0.0, 0.0),
    p_srgb_noise=1.0, srgb_noise=(0.0, 0.02), p_jpeg=0.0)


def blur_model(name: str) -> BlurConfig:
    try:
        return BLUR_MODELS[name]
    except KeyError:
        raise ValueError(f"unknown blur model {name!r} (expected {', '.join(BLUR_MODELS)})") from None


def blur_margin(cfg: BlurConfig) -> int:
    """Context needed around a crop so its blur sees real pixels (half the largest kernel)."""
    if cfg.shake == "handheld":
        return int(cfg.handheld.extent[1] * 0.75) + 4  # a path's centroid may sit off its middle
    return cfg.kernel_size // 2 + 4


def _uniform(rng, lo_hi):
    return float(rng.uniform(*lo_hi))


def _at_gain(lo_hi, iso: float) -> float:
    """A noise level at sensor gain `iso` in [0, 1]: log-uniform between the range's ends."""
    lo, hi = lo_hi
    return float(lo * (hi / lo) ** iso)


def trajectory_kernel(rng: np.random.Generator, length: float, size: int = 41, n_points: int = 128) -> np.ndarray:
    """A camera-shake kernel: a random trajectory of total length `length` pixels."""
    velocity = rng.normal(size=2)
    velocity /= np.linalg.norm(velocity) + 1e-12
    inertia = rng.uniform(0.6, 0.95)
    jitter = rng.uniform(0.1, 0.6)
    p_jerk = rng.uniform(0.0, 0.05)
    pts = np.zeros((n_points, 2))
    for i in range(1, n_points):
        kick = rng.normal(size=2) * jitter
        if rng.random() < p_jerk:
            kick += rng.normal(size=2) * 3.0
        velocity = inertia * velocity + (1 - inertia) * kick + 0.0
        velocity /= np.linalg.norm(velocity) + 1e-12
        pts[i] = pts[i - 1] + velocity
    seg = np.linalg.norm(np.diff(pts, axis=0), axis=1).sum()
    pts *= length / max(seg, 1e-9)
    # Keep the whole path inside the support, centred on its centre of mass.
    pts -= pts.mean(axis=0)
    half = size // 2
    extent = np.abs(pts).max()
    if extent > half - 1:
        pts *= (half - 1) / extent
    # Dense resampling so the splats form a continuous streak.
    d = np.linalg.norm(np.diff(pts, axis=0), axis=1)
    s = np.concatenate([[0], np.cumsum(d)])
    fine = np.linspace(0, s[-1], max(2, int(s[-1] * 4) + 2))
    path = np.stack([np.interp(fine, s, pts[:, 0]), np.interp(fine, s, pts[:, 1])], axis=1) + half
    k = np.zeros((size, size), np.float64)
    x0 = np.floor(path).astype(int)
    f = path - x0
    for dx in (0, 1):
        for dy in (0, 1):
            w = (f[:, 0] if dx else 1 - f[:, 0]) * (f[:, 1] if dy else 1 - f[:, 1])
            np.add.at(k, (x0[:, 1] + dy, x0[:, 0] + dx), w)
    return (k / k.sum()).astype(np.float32)


def disc_kernel(radius: float, size: int = 41, supersample: int = 8) -> np.ndarray:
    """Defocus: an anti-aliased uniform disc."""
    half = size // 2
    r = min(radius, half)
    g = (np.arange(size * supersample) + 0.5) / supersample - half - 0.5
    xx, yy = np.meshgrid(g, g)
    inside = (xx**2 + yy**2 <= r**2).astype(np.float64)
    k = inside.reshape(size, supersample, size, supersample).mean(axis=(1, 3))
    return (k / k.sum()).astype(np.float32)


def gaussian_kernel(sigma: float, size: int = 41) -> np.ndarray:
    half = size // 2
    x = np.arange(size) - half
    g = np.exp(-(x**2) / (2 * sigma**2))
    k = np.outer(g, g)
    return (k / k.sum()).astype(np.float32)


def random_kernel(rng: np.random.Generator, cfg: BlurConfig = BlurConfig()) -> tuple[np.ndarray, str]:
    u = rng.random()
    if u < cfg.p_motion and cfg.shake == "handheld":
        return handheld_kernel(rng, cfg.handheld), "motion"
    if u < cfg.p_motion:
        return trajectory_kernel(rng, _uniform(rng, cfg.motion_length), cfg.kernel_size), "motion"
    if u < cfg.p_motion + cfg.p_defocus:
        return disc_kernel(_uniform(rng, cfg.defocus_radius), cfg.kernel_size), "defocus"
    return gaussian_kernel(_uniform(rng, cfg.gaussian_sigma), cfg.kernel_size), "gaussian"


def srgb_to_linear(x: np.ndarray) -> np.ndarray:
    return np.where(x <= 0.04045, x / 12.92, ((x + 0.055) / 1.055) ** 2.4)


def linear_to_srgb(x: np.ndarray) -> np.ndarray:
    x = np.clip(x, 0.0, 1.0)
    return np.where(x <= 0.0031308, x * 12.92, 1.055 * np.power(x, 1 / 2.4) - 0.055)


def convolve(img: np.ndarray, kernel: np.ndarray) -> np.ndarray:
    """True convolution (cv2.filter2D correlates, so the kernel is flipped), reflect borders."""
    return cv2.filter2D(img, -1, np.ascontiguousarray(kernel[::-1, ::-1]), borderType=cv2.BORDER_REFLECT)


@dataclass
class BlurResult:
    blurry: np.ndarray  # (H, W, 3) float32 sRGB in [0, 1]
    kernels: list[np.ndarray] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)
    spatially_varying: bool = False


def apply_blur(
    sharp: np.ndarray,
    rng: np.random.Generator,
    cfg: BlurConfig = BlurConfig(),
    kernel: np.ndarray | None = None,
    noise: bool = True,
) -> BlurResult:
    """Blur an (H, W, 3) float32 sRGB image in [0, 1]. Pass `kernel` to fix the blur."""
    if cfg.response_gamma is not None:
        gamma = _uniform(rng, cfg.response_gamma)
        to_light = lambda x: np.power(np.clip(x, 0.0, 1.0), gamma).astype(np.float32)  # noqa: E731
        to_values = lambda x: np.power(np.clip(x, 0.0, 1.0), 1.0 / gamma)  # noqa: E731
    else:
        to_light, to_values = srgb_to_linear, linear_to_srgb
    lin = to_light(sharp.astype(np.float32))
    gain = _uniform(rng, cfg.highlight_gain)
    if gain > 1.0:
        # Clipped pixels (255 in 8 bits) stand for brighter scene radiance the sensor lost.
        lin = np.where(sharp >= CLIPPED, lin * gain, lin).astype(np.float32)

    if kernel is not None:
        kernels, kinds = [kernel], ["given"]
        out = convolve(lin, kernel)
        varying = False
    elif cfg.shake == "handheld" and rng.random() < cfg.p_motion * cfg.handheld.p_rotation:
        # Rotational shake: the exact local kernels of the camera's homographies, blended.
        shake = random_rotation_shake(rng, *lin.shape[:2], cfg.handheld)
        # Grid nodes every grid_px (3 x 3 for a training crop), at most 9 x 9 on a large photo.
        spacing = max(cfg.handheld.grid_px, int(np.ceil(max(lin.shape[:2]) / 8)))
        out, kernels = local_kernel_blur(lin, shake, spacing)
        kinds, varying = ["rotation"], True
    else:
        k1, kind1 = random_kernel(rng, cfg)
        kernels, kinds = [k1], [kind1]
        out = convolve(lin, k1)
        varying = rng.random() < cfg.p_spatially_varying
        if varying:
            # A second kernel takes over smoothly across the frame (a ramp in a random direction).
            k2, kind2 = random_kernel(rng, cfg)
            kernels.append(k2)
            kinds.append(kind2)
            h, w = lin.shape[:2]
            theta = rng.uniform(0, 2 * np.pi)
            yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
            proj = (xx - w / 2) * np.cos(theta) + (yy - h / 2) * np.sin(theta)
            width = max(h, w) * rng.uniform(0.3, 1.0)
            mask = (1 / (1 + np.exp(-proj / (width / 6))))[:, :, None].astype(np.float32)
            out = out * (1 - mask) + convolve(lin, k2) * mask
    out = np.clip(out, 0.0, 1.0)

    if noise:
        if cfg.noise_draw == "iso":
            iso = float(rng.uniform())  # the photo's sensor gain sets all its noise levels
            shot, read, srgb_sd = (_at_gain(r, iso) for r in (cfg.shot_noise, cfg.read_noise, cfg.srgb_noise))
        else:
            shot, read = _uniform(rng, cfg.shot_noise), _uniform(rng, cfg.read_noise)
        sigma = np.sqrt(shot * out + read**2)
        out = np.clip(out + sigma * rng.standard_normal(out.shape).astype(np.float32), 0.0, 1.0)
    srgb = to_values(out).astype(np.float32)

    if noise and cfg.p_srgb_noise > 0 and rng.random() < cfg.p_srgb_noise:
        # After the camera's processing: the noise the standard benchmarks add (and that a
        # denoising ISP leaves), on the sRGB values.
        sd = srgb_sd if cfg.noise_draw == "iso" else _uniform(rng, cfg.srgb_noise)
        srgb = np.clip(srgb + sd * rng.standard_normal(srgb.shape).astype(np.float32), 0.0, 1.0)
    if noise and rng.random() < cfg.p_jpeg:
        q = int(rng.integers(cfg.jpeg_quality[0], cfg.jpeg_quality[1] + 1))
        u8 = np.round(srgb * 255).astype(np.uint8)
        ok, buf = cv2.imencode(".jpg", u8, [cv2.IMWRITE_JPEG_QUALITY, q])
        srgb = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED).astype(np.float32) / 255.0
    if cfg.quantize:
        srgb = (np.round(srgb * 255) / 255).astype(np.float32)
    return BlurResult(srgb, kernels, kinds, varying)


def kernel_length(kernel: np.ndarray) -> float:
    """Extent of a kernel's support: the larger side of its bounding box (pixels)."""
    ys, xs = np.nonzero(kernel > kernel.max() * 1e-3)
    return float(max(ys.max() - ys.min(), xs.max() - xs.min()) + 1)
