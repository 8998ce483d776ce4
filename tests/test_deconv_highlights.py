"""The non-blind step for photos with clipped highlights (deconv.highlights) and where the
kernel path uses it (deconv.photo.deconvolve_photo: given kernels on photos with clipped pixels)."""

import numpy as np
import pytest

from deblurkit.data.blur import convolve
from deblurkit.deconv import photo
from deblurkit.deconv.highlights import CLIPPED, clipped_share, richardson_lucy_clipped, tv_term
from deblurkit.deconv.nonblind import NOISY_SIGMA, tv_deconvolve


def _psnr(a, b):
    return float(10 * np.log10(1.0 / np.mean((np.asarray(a, np.float64) - b) ** 2)))


def _line_kernel(length=9):
    k = np.zeros((length, length))
    k[length // 2, :] = 1.0
    return k / k.sum()


def _scene_with_highlights(size=96, gain=3.0, seed=0):
    """A textured grey-ish scene with bright squares lifted x gain (light a camera clips),
    blurred by a horizontal line, 1% noise, clipped to [0, 1]: (blurry, the scene as a camera
    with a deeper range would show it, clipped to [0, 1]; kernel)."""
    rng = np.random.default_rng(seed)
    blocks = np.kron(rng.uniform(0.2, 0.7, (size // 8, size // 8, 3)), np.ones((8, 8, 1)))
    light = blocks.copy()
    for t, l in ((16, 16), (56, 40), (24, 64)):
        light[t:t + 12, l:l + 12] = gain  # a lamp: three times as bright as white
    k = _line_kernel()
    blurred = convolve(light.astype(np.float32), k.astype(np.float32)).astype(np.float64)
    y = np.clip(blurred + rng.normal(0, 0.01, blurred.shape), 0, 1)
    return y, np.clip(light, 0, 1), k


def test_clipped_share_counts_pixels_with_any_channel_at_the_clip_in_any_pixel_format():
    a = np.full((10, 10, 3), 0.5)
    a[0, :, 1] = 1.0  # one row clipped in green only
    a[1, :5] = 0.99  # half a row above the level
    assert clipped_share(a) == pytest.approx(0.15)
    a[2, :2] = CLIPPED  # the level itself counts
    assert clipped_share(a) == pytest.approx(0.17)
    a[2, :2] = 0.5
    assert clipped_share(np.round(a * 255).astype(np.uint8)) == pytest.approx(0.15)
    assert clipped_share(np.round(a * 65535).astype(np.uint16)) == pytest.approx(0.15)
    assert clipped_share(np.full((4, 4, 3), 0.9)) == 0.0


def test_richardson_lucy_reading_clipped_pixels_as_bounds_beats_the_tv_step_around_lifted_highlights():
    y, truth, k = _scene_with_highlights()
    inner = (slice(12, -12), slice(12, -12))
    rl = richardson_lucy_clipped(y, k)
    tv = tv_deconvolve(y, k)
    assert rl.dtype == np.float32 and rl.shape == y.shape and 0 <= rl.min() and rl.max() <= 1
    assert _psnr(rl[inner], truth[inner]) > _psnr(tv[inner], truth[inner]) + 1.0
    assert _psnr(rl[inner], truth[inner]) > _psnr(y[inner], truth[inner]) + 2.0


def test_the_bound_is_what_helps_reading_the_same_clipped_pixels_as_exact_does_worse(monkeypatch):
    from deblurkit.deconv import highlights

    y, truth, k = _scene_with_highlights()
    inner = (slice(12, -12), slice(12, -12))
    rl = richardson_lucy_clipped(y, k)
    monkeypatch.setattr(highlights, "CLIPPED", 2.0)  # no pixel counts as clipped
    exact = richardson_lucy_clipped(y, k)
    assert _psnr(rl[inner], truth[inner]) > _psnr(exact[inner], truth[inner]) + 0.5


def test_the_acceleration_fits_the_data_sooner(monkeypatch):
    from deblurkit.deconv import highlights

    y, _, k = _scene_with_highlights(gain=1.0)  # no lifted highlights: every pixel is data

    def misfit(x):
        return float(np.abs(convolve(x, k.astype(np.float32)) - y)[12:-12, 12:-12].mean())

    accelerated = richardson_lucy_clipped(y, k, iterations=15, tv=0.0)
    monkeypatch.setattr(highlights, "MAX_ACCELERATION", 0.0)
    plain = richardson_lucy_clipped(y, k, iterations=15, tv=0.0)
    assert misfit(accelerated) < 0.8 * misfit(plain)


def test_a_dot_kernel_without_tv_gives_the_photo_back_and_8_bits_read_as_their_floats():
    y, _, _ = _scene_with_highlights(size=48)
    dot = np.ones((1, 1))
    np.testing.assert_allclose(richardson_lucy_clipped(y, dot, iterations=5, tv=0.0), np.maximum(y, 1e-4), atol=1e-6)
    u8 = np.round(y * 255).astype(np.uint8)
    k = _line_kernel()
    np.testing.assert_array_equal(richardson_lucy_clipped(u8, k, iterations=5),
                                  richardson_lucy_clipped(u8.astype(np.float32) / np.float32(255), k, iterations=5))


def test_the_same_bytes_whatever_the_thread_count():
    import torch

    y, _, k = _scene_with_highlights(size=256)
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        one = richardson_lucy_clipped(y, k, iterations=6)
        torch.set_num_threads(2)
        two = richardson_lucy_clipped(y, k, iterations=6)
    finally:
        torch.set_num_threads(threads)
    assert one.tobytes() == two.tobytes()


def test_richardson_lucy_is_deterministic_writes_into_a_view_and_refuses_a_wrong_one():
    y, _, k = _scene_with_highlights(size=48)
    a, b = richardson_lucy_clipped(y, k, iterations=5), richardson_lucy_clipped(y, k, iterations=5)
    assert a.tobytes() == b.tobytes()
    chw = np.empty((3, 48, 48), np.float32)
    richardson_lucy_clipped(y, k, iterations=5, out=chw.transpose(1, 2, 0))
    np.testing.assert_array_equal(chw.transpose(1, 2, 0), a)
    with pytest.raises(ValueError, match="float32"):
        richardson_lucy_clipped(y, k, iterations=1, out=np.empty((48, 48, 3), np.float64))


def test_the_tv_term_follows_the_noise_above_the_noisy_threshold():
    assert tv_term(0.0) == tv_term(NOISY_SIGMA / 2) == 0.002
    assert tv_term(2 * NOISY_SIGMA) > tv_term(NOISY_SIGMA) > 0.002


def test_deconvolve_photo_uses_the_highlight_solver_only_for_a_given_kernel_on_a_photo_with_highlights(monkeypatch):
    y, _, k = _scene_with_highlights()
    assert clipped_share(y) >= photo.HIGHLIGHT_SHARE[1]
    given = photo.deconvolve_photo(y, k)
    np.testing.assert_array_equal(given, richardson_lucy_clipped(y, k, tv=tv_term(photo.noise_sigma(photo.to_gray(y)))))
    estimated = photo.deconvolve_photo(y, k, estimated=True)  # an estimate keeps the TV step
    np.testing.assert_array_equal(estimated, tv_deconvolve(y, k, photo.tv_weight(photo.to_gray(y), estimated_kernel=True)))
    quiet = np.minimum(y, 0.9)  # no clipped pixel: the TV step
    np.testing.assert_array_equal(photo.deconvolve_photo(quiet, k), tv_deconvolve(quiet, k, photo.tv_weight(photo.to_gray(quiet))))
    # channels first, and tiles (each solved by the same solver, its margin as for TV)
    np.testing.assert_array_equal(photo.deconvolve_photo(y, k, channels_first=True), given.transpose(2, 0, 1))
    monkeypatch.setattr(photo, "DECONV_TILE", 64)

    def no_tv(*args, **kwargs):
        raise AssertionError("the TV step ran on a photo with highlights")

    monkeypatch.setattr(photo, "tv_deconvolve", no_tv)
    tiled = photo.deconvolve_photo(y, k)
    assert tiled.shape == y.shape and np.abs(tiled - given)[20:-20, 20:-20].mean() < 0.02


def test_between_the_two_shares_the_two_solvers_are_blended_by_the_share(monkeypatch):
    y, _, k = _scene_with_highlights()
    share = clipped_share(y)
    monkeypatch.setattr(photo, "HIGHLIGHT_SHARE", (share - 0.03, share + 0.01))  # 3/4 of the way up
    assert photo.highlight_weight(y) == pytest.approx(0.75)
    gray = photo.to_gray(y)
    tv = tv_deconvolve(y, k, photo.tv_weight(gray))
    rl = richardson_lucy_clipped(y, k, tv=tv_term(photo.noise_sigma(gray)))
    np.testing.assert_allclose(photo.deconvolve_photo(y, k), 0.25 * tv + 0.75 * rl, atol=1e-6)
    monkeypatch.setattr(photo, "HIGHLIGHT_SHARE", (share + 0.001, share + 0.01))  # below both: the TV step alone
    assert photo.highlight_weight(y) == 0.0
    np.testing.assert_array_equal(photo.deconvolve_photo(y, k), tv)
