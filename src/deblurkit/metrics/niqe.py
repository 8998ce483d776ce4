"""NIQE (Mittal et al. 2013): a no-reference naturalness score, lower is more natural.

Follows the MATLAB reference as ported by BasicSR 1.4.2 (`basicsr/metrics/niqe.py`), with
the published pristine-image model (mu 1x36, cov 36x36, 7x7 Gaussian window) shipped in
`deblur/resources/niqe_pris_params.npz`: Y channel (BT.601, [16, 235]) rounded to
integers, MSCN coefficients, 96x96 blocks, AGGD features at two scales (the second after
a MATLAB-style bicubic half-size resize), and the Mahalanobis-like distance between the
image's and the pristine multivariate Gaussians. Implemented with numpy and OpenCV only.
"""

from __future__ import annotations

import math
from functools import lru_cache
from importlib import resources

import cv2
import numpy as np

BLOCK = 96


@lru_cache(maxsize=1)
def pristine_params() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    with resources.files("deblurkit.resources").joinpath("niqe_pris_params.npz").open("rb") as f:
        d = np.load(f)
        return d["mu_pris_param"], d["cov_pris_param"], d["gaussian_window"]


@lru_cache(maxsize=1)
def _gamma_table() -> tuple[np.ndarray, np.ndarray]:
    gam = np.arange(0.2, 10.001, 0.001)
    g = np.vectorize(math.gamma)
    r_gam = g(2 / gam) ** 2 / (g(1 / gam) * g(3 / gam))
    return gam, r_gam


def _aggd(block: np.ndarray) -> tuple[float, float, float]:
    """Asymmetric generalised Gaussian fit: (alpha, beta_left, beta_right)."""
    b = block.ravel()
    gam, r_gam = _gamma_table()
    left = math.sqrt(np.mean(b[b < 0] ** 2)) if np.any(b < 0) else 0.0
    right = math.sqrt(np.mean(b[b > 0] ** 2)) if np.any(b > 0) else 0.0
    gammahat = left / right if right > 0 else np.inf
    rhat = np.mean(np.abs(b)) ** 2 / np.mean(b**2)
    rhatnorm = rhat * (gammahat**3 + 1) * (gammahat + 1) / (gammahat**2 + 1) ** 2
    alpha = float(gam[np.argmin((r_gam - rhatnorm) ** 2)])
    k = math.sqrt(math.gamma(1 / alpha) / math.gamma(3 / alpha))
    return alpha, left * k, right * k


def _features(block: np.ndarray) -> list[float]:
    alpha, bl, br = _aggd(block)
    feat = [alpha, (bl + br) / 2]
    for shift in ((0, 1), (1, 0), (1, 1), (1, -1)):
        alpha, bl, br = _aggd(block * np.roll(block, shift, axis=(0, 1)))
        mean = (br - bl) * math.gamma(2 / alpha) / math.gamma(1 / alpha)
        feat += [alpha, mean, bl, br]
    return feat


def _cubic(x: np.ndarray) -> np.ndarray:
    a = np.abs(x)
    return (1.5 * a**3 - 2.5 * a**2 + 1) * (a <= 1) + (-0.5 * a**3 + 2.5 * a**2 - 4 * a + 2) * ((a > 1) & (a <= 2))


def _resize_matrix(n_in: int, scale: float) -> np.ndarray:
    """MATLAB imresize (bicubic, antialiased) along one axis as an (n_out, n_in) matrix,
    with MATLAB's symmetric padding folded into the indices."""
    n_out = math.ceil(n_in * scale)
    width = 4.0 / scale if scale < 1 else 4.0
    u = np.arange(1, n_out + 1) / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    taps = math.ceil(width) + 2
    idx = left[:, None] + np.arange(taps)[None, :]
    w = scale * _cubic((u[:, None] - idx) * scale) if scale < 1 else _cubic(u[:, None] - idx)
    w = w / w.sum(axis=1, keepdims=True)
    idx = idx.astype(int) - 1  # 0-based
    idx = np.where(idx < 0, -idx - 1, idx)  # symmetric: -1 -> 0, -2 -> 1
    idx = np.where(idx >= n_in, 2 * n_in - idx - 1, idx)
    m = np.zeros((n_out, n_in))
    np.add.at(m, (np.repeat(np.arange(n_out), taps), idx.ravel()), w.ravel())
    return m


def imresize_half(img: np.ndarray) -> np.ndarray:
    """MATLAB-compatible bicubic resize to half size of a 2-D float image."""
    return _resize_matrix(img.shape[0], 0.5) @ img @ _resize_matrix(img.shape[1], 0.5).T


def has_enough_blocks(height: int, width: int) -> bool:
    """The image's feature covariance needs at least two 96x96 blocks."""
    return (height // BLOCK) * (width // BLOCK) >= 2


def niqe_y(y: np.ndarray) -> float:
    """NIQE of a 2-D luma image on the [0, 255] scale (already rounded)."""
    mu_p, cov_p, window = pristine_params()
    h, w = y.shape
    nh, nw = h // BLOCK, w // BLOCK
    if not has_enough_blocks(h, w):
        raise ValueError(f"NIQE needs at least two {BLOCK}x{BLOCK} blocks (e.g. {2 * BLOCK}x{BLOCK} pixels), got {w}x{h}")
    img = y[: nh * BLOCK, : nw * BLOCK].astype(np.float64)
    feats = []
    for scale in (1, 2):
        mu = cv2.filter2D(img, cv2.CV_64F, window, borderType=cv2.BORDER_REPLICATE)
        sigma = np.sqrt(np.abs(cv2.filter2D(img * img, cv2.CV_64F, window, borderType=cv2.BORDER_REPLICATE) - mu * mu))
        mscn = (img - mu) / (sigma + 1)
        b = BLOCK // scale
        feats.append(np.array([_features(mscn[i * b : (i + 1) * b, j * b : (j + 1) * b]) for j in range(nw) for i in range(nh)]))
        if scale == 1:
            img = imresize_half(img / 255.0) * 255.0
    dist = np.concatenate(feats, axis=1)
    mu_d = np.nanmean(dist, axis=0)
    cov_d = np.cov(dist[~np.isnan(dist).any(axis=1)], rowvar=False)
    diff = mu_p - mu_d
    q = diff @ np.linalg.pinv((cov_p + cov_d) / 2) @ diff.T
    return float(np.sqrt(np.squeeze(q)))


def rgb_to_y(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma on [16, 235] from RGB in [0, 1], as BasicSR's to_y_channel."""
    return rgb @ np.array([65.481, 128.553, 24.966]) + 16.0


def niqe(rgb: np.ndarray) -> float:
    """NIQE of an (H, W, 3) RGB image in [0, 1] (8-bit quantised first, as the reference)."""
    rgb8 = np.round(np.clip(rgb, 0, 1) * 255.0) / 255.0
    return niqe_y(np.round(rgb_to_y(rgb8.astype(np.float32)).astype(np.float32)))
