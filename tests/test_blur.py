import numpy as np
import pytest

from deblurkit.data import BlurConfig, apply_blur, disc_kernel, gaussian_kernel, kernel_length, random_kernel, trajectory_kernel
from deblurkit.data.blur import linear_to_srgb, srgb_to_linear

from conftest import smooth_image


@pytest.mark.parametrize("seed", range(20))
def test_random_kernels_are_normalised_and_fit_the_support(seed):
    k, kind = random_kernel(np.random.default_rng(seed))
    assert k.shape == (41, 41) and (k >= 0).all()
    assert abs(float(k.sum()) - 1.0) < 1e-5
    assert kind in ("motion", "defocus", "gaussian")


def test_fixed_family_kernels_are_normalised():
    for k in (disc_kernel(3.5), gaussian_kernel(1.2), trajectory_kernel(np.random.default_rng(0), 20.0)):
        assert (k >= 0).all() and abs(float(k.sum()) - 1.0) < 1e-5


def test_motion_length_follows_the_configured_range():
    cfg = BlurConfig(p_motion=1.0)
    lengths = [kernel_length(random_kernel(np.random.default_rng(s), cfg)[0]) for s in range(200)]
    lo, hi = cfg.motion_length
    # The support extent of a path of length L is at most L (+2 px of bilinear splat)...
    assert max(lengths) <= min(hi + 2, cfg.kernel_size)
    # ...and the draws spread over the configured range rather than bunching.
    assert np.percentile(lengths, 10) < lo + 0.4 * (hi - lo)
    assert np.percentile(lengths, 90) > lo + 0.5 * (hi - lo)
    assert min(lengths) >= 2


def test_delta_kernel_without_noise_returns_the_input():
    img = np.round(smooth_image(48, 64) * 255).astype(np.float32) / 255  # 8-bit values, as read from a photo
    delta = np.zeros((41, 41), np.float32)
    delta[20, 20] = 1.0
    out = apply_blur(img, np.random.default_rng(0), kernel=delta, noise=False).blurry
    np.testing.assert_allclose(out, img, atol=1e-5)


def test_gamma_round_trip():
    x = np.linspace(0, 1, 1001, dtype=np.float32)
    np.testing.assert_allclose(linear_to_srgb(srgb_to_linear(x)), x, atol=1e-6)


def test_seed_determines_everything_and_blur_lowers_detail():
    img = smooth_image(96, 96, seed=3)
    a = apply_blur(img, np.random.default_rng(5))
    b = apply_blur(img, np.random.default_rng(5))
    c = apply_blur(img, np.random.default_rng(6))
    np.testing.assert_array_equal(a.blurry, b.blurry)
    assert np.abs(a.blurry - c.blurry).max() > 1e-3
    assert a.blurry.shape == img.shape and a.blurry.dtype == np.float32


def test_highlights_streak():
    img = np.zeros((64, 64, 3), np.float32)
    img[32, 32] = 1.0  # a clipped point light
    k = np.zeros((41, 41), np.float32)
    k[20, 10:31] = 1 / 21  # horizontal streak of 21 px
    bright = apply_blur(img, np.random.default_rng(0), BlurConfig(highlight_gain=(30.0, 30.0)), kernel=k, noise=False).blurry
    dim = apply_blur(img, np.random.default_rng(0), BlurConfig(highlight_gain=(1.0, 1.0)), kernel=k, noise=False).blurry
    # A light 30x brighter than the clip point keeps the whole 21-px streak saturated;
    # without the lift it would smear into a dim line, which real photos do not show.
    assert (bright[32, 22:43] > 0.99).all()
    assert (dim[32, 22:43] < 0.5).all()
