"""Hand-shake blur: camera rotation along a path whose speed varies, rendered in time.

Why not a constant-speed random walk (the project's first model, and Boracchi & Foi's
published code): a real hand slows down and reverses, so a measured kernel has bright
knots where the camera dwelt and faint strokes where it moved fast; the paths are arcs,
hooks and zigzags of up to ~1 tremor cycle per exposure (~2-4 Hz at 1/30-1/4 s), often
with one jerk from pressing the shutter; they reach 100 px and more; and since the hand
*rotates* the camera (yaw, pitch, roll), the blur changes across the frame.

So the path is a function of time, sampled at uniform *time* steps and splatted with equal
weights (dwell time becomes intensity by itself):
- each rotation axis is a sum of a few sinusoids at 0.25-3 cycles per exposure with
  amplitude ~ f^-1.5, plus a damped random-acceleration (second-order) walk, plus, with
  some probability, a shutter-press jerk (a fast smooth step);
- sometimes only part of the motion falls inside the exposure (Boracchi & Foi's partial
  exposures);
- yaw and pitch move the image by about f * angle pixels; roll turns it about the
  principal point, so its blur grows with the distance from it.

A blurry photo is the average, in linear light, of the sharp photo warped by the
homographies H(t) = K R(t) K^-1 along the path (Whyte et al. 2012, Köhler et al. 2012).
`homography_blur` renders that exactly (one warp per time sample); `local_kernel_blur`
renders it fast by convolving with the exact local kernels at a grid of points and
blending between them, which is what training uses (tests check the two agree).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

TIME_SAMPLES = 2048  # uniform time steps: <= ~0.1 px apart at 120 px, so splats form strokes


@dataclass(frozen=True)
class ShakeConfig:
    # Blur extent (the larger side of the path's bounding box), drawn log-uniformly so small
    # shakes stay as common as large ones.
    extent: tuple[float, float] = (3.0, 120.0)
    # Share of paths whose extent is drawn uniformly instead: log-uniform puts half of them
    # under 19 px, so a 60-120 px shake is one training sample in ten; the uniform share
    # makes large shakes common without dropping small ones (0 keeps the stream as it was).
    uniform_extent_share: float = 0.0
    n_sinusoids: int = 3
    frequency: tuple[float, float] = (0.25, 3.0)  # cycles per exposure
    spectrum_slope: float = 1.5  # amplitude ~ f^-slope
    p_walk: float = 0.5  # add a random-acceleration walk on top of the tremor
    p_jerk: float = 0.25  # a shutter-press jerk
    p_partial: float = 0.25  # only part of the motion falls inside the exposure
    optical_sigma: tuple[float, float] = (0.3, 0.8)  # lens/sensor blur on top of the path (px)
    # Rotational (spatially varying) rendering: the crop is a window of a virtual frame
    # frame_scale times its size, with a focal length of focal_scale frame widths.
    p_rotation: float = 0.4
    frame_scale: tuple[float, float] = (1.0, 6.0)
    focal_scale: tuple[float, float] = (0.7, 1.5)
    roll_share: tuple[float, float] = (0.0, 1.0)  # roll blur at the frame corner / extent
    grid_px: int = 192  # local-kernel grid spacing of the fast renderer (at least; an eighth of large photos)


def _log_uniform(rng: np.random.Generator, lo_hi) -> float:
    lo, hi = lo_hi
    return float(math.exp(rng.uniform(math.log(lo), math.log(hi))))


def draw_extent(rng: np.random.Generator, cfg: ShakeConfig) -> float:
    """A shake's extent in px: log-uniform over cfg.extent, or uniform for a share of paths."""
    if cfg.uniform_extent_share > 0 and rng.random() < cfg.uniform_extent_share:
        return float(rng.uniform(*cfg.extent))
    return _log_uniform(rng, cfg.extent)


def _axis_motion(rng: np.random.Generator, t: np.ndarray, cfg: ShakeConfig) -> np.ndarray:
    """One axis of the hand's motion (arbitrary units) at times t in [0, 1]."""
    x = np.zeros_like(t)
    for _ in range(cfg.n_sinusoids):
        f = _log_uniform(rng, cfg.frequency)
        x += rng.normal() * f ** -cfg.spectrum_slope * np.sin(2 * np.pi * f * t + rng.uniform(0, 2 * np.pi))
    if rng.random() < cfg.p_walk:
        # Damped second-order dynamics driven by white noise: smooth, with free speed.
        n = len(t)
        acc = rng.normal(size=n) * math.sqrt(n)
        damping = rng.uniform(0.0, 8.0)
        v = np.zeros(n)
        dt = 1.0 / n
        for i in range(1, n):  # n is small enough (2048) for a plain loop once per kernel
            v[i] = v[i - 1] + dt * (acc[i] - damping * v[i - 1])
        x += rng.uniform(0.1, 1.0) * np.cumsum(v) * dt * 4.0
    return x


def shake_motion(rng: np.random.Generator, cfg: ShakeConfig = ShakeConfig(), axes: int = 3) -> np.ndarray:
    """(TIME_SAMPLES, axes) motion at uniform exposure times, unscaled. Axes: yaw, pitch, roll."""
    t = np.linspace(0.0, 1.0, TIME_SAMPLES * 2)
    m = np.stack([_axis_motion(rng, t, cfg) for _ in range(axes)], axis=1)
    if rng.random() < cfg.p_jerk:
        # The press: a fast smooth step in a random direction at a random time.
        t0, width = rng.uniform(0.05, 0.95), rng.uniform(0.005, 0.05)
        size = np.abs(m).max() * rng.uniform(0.3, 1.5) + 1e-9
        direction = rng.normal(size=axes)
        m += size * direction / (np.linalg.norm(direction) + 1e-12) / (1 + np.exp(-(t[:, None] - t0) / width))
    if rng.random() < cfg.p_partial:
        # Only a window of the motion falls inside the exposure.
        span = rng.uniform(0.3, 1.0)
        start = rng.uniform(0.0, 1.0 - span)
    else:
        span, start = 0.5, 0.25
    sel = (t >= start) & (t <= start + span)
    m = m[sel]
    idx = np.linspace(0, len(m) - 1, TIME_SAMPLES)
    return np.stack([np.interp(idx, np.arange(len(m)), m[:, a]) for a in range(axes)], axis=1)


def extent_of(path: np.ndarray) -> float:
    """The larger side of a 2-D path's bounding box."""
    return float((path.max(axis=0) - path.min(axis=0)).max())


def shake_path(rng: np.random.Generator, extent: float | None = None, cfg: ShakeConfig = ShakeConfig()) -> np.ndarray:
    """A 2-D image-plane shake path (TIME_SAMPLES, 2) in pixels, x then y, of the given extent."""
    extent = draw_extent(rng, cfg) if extent is None else extent
    p = shake_motion(rng, cfg, axes=2)
    return p * (extent / max(extent_of(p), 1e-9))


def render_kernel(path: np.ndarray, sigma: float = 0.0, weights: np.ndarray | None = None, centre: bool = True) -> np.ndarray:
    """Splat displacements (N, 2) (x, y, pixels) with bilinear weights into a kernel whose
    support fits the whole path. centre: put the path's centroid at the kernel's centre (an
    off-centre kernel would teach the network to shift its output); otherwise displacement
    0 is the centre (local kernels of one photo keep their relative shifts). sigma:
    Gaussian optical blur on top (px)."""
    w = np.ones(len(path)) if weights is None else np.asarray(weights, np.float64)
    centred = path - (w[:, None] * path).sum(0) / w.sum() if centre else np.asarray(path, np.float64)
    reach = np.abs(centred).max() + (3 * sigma if sigma > 0 else 0) + 2
    half = int(math.ceil(reach))
    size = 2 * half + 1
    pts = centred + half
    x0 = np.floor(pts).astype(np.int64)
    f = pts - x0
    k = np.zeros(size * size, np.float64)
    for dx in (0, 1):
        for dy in (0, 1):
            wt = w * (f[:, 0] if dx else 1 - f[:, 0]) * (f[:, 1] if dy else 1 - f[:, 1])
            k += np.bincount((x0[:, 1] + dy) * size + x0[:, 0] + dx, weights=wt, minlength=size * size)
    k = k.reshape(size, size)
    if sigma > 0:
        k = cv2.GaussianBlur(k, (0, 0), sigma, borderType=cv2.BORDER_CONSTANT)
    return (k / k.sum()).astype(np.float32)


def handheld_kernel(rng: np.random.Generator, cfg: ShakeConfig = ShakeConfig(), extent: float | None = None) -> np.ndarray:
    """A uniform (translation-only) hand-shake kernel."""
    path = shake_path(rng, extent, cfg)
    return render_kernel(path, rng.uniform(*cfg.optical_sigma))


# --- rotation: homographies along the path -------------------------------------------------

def rotation_matrices(angles: np.ndarray) -> np.ndarray:
    """(N, 3) yaw, pitch, roll (radians) -> (N, 3, 3) rotations R = Rz(roll) Rx(pitch) Ry(yaw)."""
    yaw, pitch, roll = angles[:, 0], angles[:, 1], angles[:, 2]
    c, s = np.cos, np.sin
    n = len(angles)
    ry = np.zeros((n, 3, 3)); ry[:, 0, 0] = c(yaw); ry[:, 0, 2] = s(yaw); ry[:, 1, 1] = 1; ry[:, 2, 0] = -s(yaw); ry[:, 2, 2] = c(yaw)
    rx = np.zeros((n, 3, 3)); rx[:, 0, 0] = 1; rx[:, 1, 1] = c(pitch); rx[:, 1, 2] = -s(pitch); rx[:, 2, 1] = s(pitch); rx[:, 2, 2] = c(pitch)
    rz = np.zeros((n, 3, 3)); rz[:, 0, 0] = c(roll); rz[:, 0, 1] = -s(roll); rz[:, 1, 0] = s(roll); rz[:, 1, 1] = c(roll); rz[:, 2, 2] = 1
    return rz @ rx @ ry


def camera_homographies(angles: np.ndarray, focal: float, principal: tuple[float, float]) -> np.ndarray:
    """H(t) = K R(t) K^-1 for a pinhole camera (pixels; principal point in image coordinates)."""
    K = np.array([[focal, 0, principal[0]], [0, focal, principal[1]], [0, 0, 1.0]])
    # The sharp image is taken at the mean pose, so the blur has no net shift anywhere (to
    # first order in the small angles).
    R = rotation_matrices(angles) @ np.linalg.inv(rotation_matrices(angles.mean(axis=0, keepdims=True))[0])
    return K @ R @ np.linalg.inv(K)


@dataclass
class RotationShake:
    homographies: np.ndarray  # (N, 3, 3), uniform in time
    sigma: float  # optical blur (px)

    def displacements(self, x: float, y: float) -> np.ndarray:
        """(N, 2) kernel offsets at pixel (x, y): p - H(t)^-1 p, since the blurry image is
        B(p) = mean_t L(H(t)^-1 p) = sum_u k(u) L(p - u)."""
        inv = np.linalg.inv(self.homographies)
        q = inv @ np.array([x, y, 1.0])
        q = q[:, :2] / q[:, 2:3]
        return np.array([x, y]) - q

    def kernel_at(self, x: float, y: float) -> np.ndarray:
        return render_kernel(self.displacements(x, y), self.sigma, centre=False)


def random_rotation_shake(rng: np.random.Generator, height: int, width: int, cfg: ShakeConfig = ShakeConfig(),
                          extent: float | None = None) -> RotationShake:
    """A rotational shake of an image (height x width) seen as a window of a larger frame:
    yaw and pitch give `extent` px of blur near the principal point, roll adds blur that
    grows towards the frame's corners."""
    extent = draw_extent(rng, cfg) if extent is None else extent
    side = max(height, width)
    frame = side * rng.uniform(*cfg.frame_scale)
    # At least 4 px of focal length per px of blur: hand shake is a rotation of a few degrees
    # at most (0.25 rad here); a small photo with a long shake would otherwise ask for tens
    # of degrees, where perspective stretches the kernels without bound.
    focal = max(frame * rng.uniform(*cfg.focal_scale), 4.0 * extent)
    # The window's place in the frame decides where the principal point falls.
    px = frame / 2 - rng.uniform(0, max(0.0, frame - width))
    py = frame / 2 - rng.uniform(0, max(0.0, frame - height))
    m = shake_motion(rng, cfg, axes=3)
    m = m - m.mean(axis=0)  # angles about the mean pose: their size is the shake's, not an offset's
    yp = m[:, :2] * (extent / max(extent_of(m[:, :2]), 1e-9) / focal)
    corner = frame / math.sqrt(2)
    roll_extent = rng.uniform(*cfg.roll_share) * extent / corner
    roll = m[:, 2:] * (roll_extent / max(float(np.ptp(m[:, 2])), 1e-9))
    angles = np.concatenate([yp, roll], axis=1)
    return RotationShake(camera_homographies(angles, focal, (px, py)), float(rng.uniform(*cfg.optical_sigma)))


def homography_blur(lin: np.ndarray, homographies: np.ndarray) -> np.ndarray:
    """Exact rendering: the mean of the image warped by each H(t) (bilinear, reflect
    borders); one warp per time step, so it checks the fast renderer rather than trains."""
    h, w = lin.shape[:2]
    acc = np.zeros(lin.shape, np.float64)
    for H in homographies:
        acc += cv2.warpPerspective(lin, H, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    return (acc / len(homographies)).astype(np.float32)


def grid_points(length: int, spacing: int) -> np.ndarray:
    n = max(2, int(round(length / spacing)) + 1)
    return np.linspace(0, length - 1, n)


def local_kernel_blur(lin: np.ndarray, shake: RotationShake, spacing: int = 192) -> tuple[np.ndarray, list[np.ndarray]]:
    """Fast rendering: convolve with the exact local kernel at each point of a grid and blend
    the results bilinearly between grid points. Returns the image and the kernels (the one
    nearest the centre first)."""
    from .blur import convolve  # blur.py imports this module

    h, w = lin.shape[:2]
    ys, xs = grid_points(h, spacing), grid_points(w, spacing)
    out = np.zeros(lin.shape, np.float32)
    kernels = []
    yy, xx = np.arange(h, dtype=np.float32), np.arange(w, dtype=np.float32)

    def tent(coords, nodes, j):
        # Piecewise-linear interpolation weight of node j (sums to 1 over j).
        e = np.zeros(len(nodes)); e[j] = 1.0
        return np.interp(coords, nodes, e).astype(np.float32)

    for i, y in enumerate(ys):
        wy = tent(yy, ys, i)
        for j, x in enumerate(xs):
            k = shake.kernel_at(x, y)
            kernels.append(k)
            out += convolve(lin, k) * (wy[:, None] * tent(xx, xs, j)[None, :])[:, :, None]
    centre = min(range(len(kernels)), key=lambda n: (ys[n // len(xs)] - h / 2) ** 2 + (xs[n % len(xs)] - w / 2) ** 2)
    kernels.insert(0, kernels.pop(centre))
    return out, kernels
