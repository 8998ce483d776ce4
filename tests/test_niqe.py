"""NIQE: sanity properties, and agreement with the reference implementation."""

from pathlib import Path

import numpy as np
import pytest

from deblurkit.data import apply_blur, gaussian_kernel
from deblurkit.io import read_image
from deblurkit.metrics.niqe import imresize_half, niqe

from conftest import smooth_image

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "gopro_000110_sharp.png"

# Measured with BasicSR 1.4.2's calculate_niqe(img, 0, convert_to="y") on these files of
# ../shared/data (the reference our implementation follows); we require agreement to 1%.
BASICSR_REFERENCE = {
    "gopro/GOPR0372_07_00/blur/000101.png": 5.148390164751495,
    "gopro/GOPR0372_07_00/blur/000110.png": 4.81555215325969,
    "gopro/GOPR0372_07_00/blur/000116.png": 7.300574870354288,
    "val/set14/baboon.bmp": 5.729572592446551,
    "val/set14/bridge.bmp": 2.486399388253734,
}


def _textured(seed=0, size=192):
    rng = np.random.default_rng(seed)
    base = smooth_image(size, size, seed)
    return np.clip(base + 0.15 * rng.standard_normal(base.shape).astype(np.float32) * base, 0, 1)


def test_identical_input_identical_score():
    img = _textured()
    assert niqe(img) == niqe(img.copy())


def test_matches_the_reference_value_on_a_bundled_frame():
    """Against a fixed number, without ../shared/data: the README's example frame is GoPro
    blur/000110.png, whose BasicSR 1.4.2 score is in BASICSR_REFERENCE (a NIQE that
    returned a constant, or drifted, fails here)."""
    score = niqe(read_image(EXAMPLE.with_name("gopro_000110_blur.png")).rgb)
    ref = BASICSR_REFERENCE["gopro/GOPR0372_07_00/blur/000110.png"]
    assert abs(score - ref) / ref < 0.01, score
    assert abs(niqe(read_image(EXAMPLE).rgb) - score) > 0.1  # the sharp frame scores differently


def test_blur_raises_niqe():
    # A real photo (the README's GoPro example frame, CC BY 4.0), centre 384x384.
    full = read_image(EXAMPLE).rgb
    h, w = full.shape[:2]
    img = full[h // 2 - 192 : h // 2 + 192, w // 2 - 192 : w // 2 + 192]
    blurred = apply_blur(img, np.random.default_rng(0), kernel=gaussian_kernel(2.5), noise=False).blurry
    assert niqe(blurred) > niqe(img) + 0.5


def test_too_small_is_refused():
    with pytest.raises(ValueError, match="two 96x96 blocks"):
        niqe(np.zeros((90, 200, 3), np.float32))
    with pytest.raises(ValueError, match="two 96x96 blocks"):
        niqe(np.zeros((100, 100, 3), np.float32))


def test_matlab_half_resize_keeps_constants_and_averages():
    flat = np.full((10, 14), 7.0)
    np.testing.assert_allclose(imresize_half(flat), np.full((5, 7), 7.0))
    ramp = np.tile(np.arange(16, dtype=float), (8, 1))
    out = imresize_half(ramp)
    assert out.shape == (4, 8)
    np.testing.assert_allclose(np.diff(out[0, 2:-2]), 2.0, atol=1e-9)  # linear data stays linear away from borders


@pytest.mark.parametrize("rel,expected", sorted(BASICSR_REFERENCE.items()))
def test_agrees_with_basicsr_within_one_percent(shared_data, rel, expected):
    got = niqe(read_image(shared_data / rel).rgb)
    assert abs(got - expected) / expected < 0.01
