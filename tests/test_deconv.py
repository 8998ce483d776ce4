"""The classical blind deconvolution (deblurkit.deconv): conventions, cleaning, recovery."""

import cv2
import numpy as np
import pytest

from deblurkit.data.blur import convolve
from deblurkit.deconv import WIENER_WEIGHT, BlindConfig, blind_deconvolve, estimate_kernel, wiener
from deblurkit.deconv.blind import (_grad, _diff_otf, centre_kernel, clean_kernel, l0_latent, periodic_pad, psf2otf,
                                    pyramid_sizes, salient_threshold)


def blocks(size=128, seed=0):
    """A sharp image of flat rectangles: the few strong edges an L0 prior assumes."""
    rng = np.random.default_rng(seed)
    img = np.full((size, size), 0.5)
    for _ in range(40):
        y, x = rng.integers(0, size - 8, 2)
        h, w = rng.integers(6, size // 3, 2)
        img[y:y + h, x:x + w] = rng.uniform(0, 1)
    return img


def line_kernel(length=9, angle=30.0, size=15):
    k = np.zeros((size, size))
    c = size // 2
    dx, dy = np.cos(np.radians(angle)), np.sin(np.radians(angle))
    for t in np.linspace(-length / 2, length / 2, 64):
        k[int(round(c + t * dy)), int(round(c + t * dx))] += 1
    return centre_kernel(k / k.sum())


def psnr(a, b):
    return 10 * np.log10(1 / np.mean((np.clip(a, 0, 1) - b) ** 2))


def test_difference_transfer_functions_match_the_spatial_gradient():
    x = np.random.default_rng(0).random((12, 17))
    gx, gy = _grad(x)
    for axis, g in ((1, gx), (0, gy)):
        np.testing.assert_allclose(np.fft.irfft2(_diff_otf(x.shape, axis) * np.fft.rfft2(x), s=x.shape), g, atol=1e-12)


def test_l0_latent_is_the_half_quadratic_splitting_written_out_in_fourier_terms():
    """The torch solver (the gradients' adjoint applied in space) against the textbook
    numpy form: conj(Dx) F(gx) + conj(Dy) F(gy) in the numerator."""
    rng = np.random.default_rng(3)
    y = cv2.GaussianBlur(blocks(48), (0, 0), 1.0) + 0.01 * rng.standard_normal((48, 48))
    k = np.zeros((5, 5))
    k[2, 1:4] = 1 / 3
    K = psf2otf(k, y.shape)
    cfg = BlindConfig(beta_max=1e3)
    lam = 4e-3
    Dx, Dy = _diff_otf(y.shape, 1), _diff_otf(y.shape, 0)
    x, beta = y.copy(), 2 * lam
    while beta < cfg.beta_max:
        gx, gy = _grad(x)
        keep = (gx ** 2 + gy ** 2) >= lam / beta
        num = np.conj(K) * np.fft.rfft2(y) + beta * (np.conj(Dx) * np.fft.rfft2(gx * keep) + np.conj(Dy) * np.fft.rfft2(gy * keep))
        x = np.fft.irfft2(num / (np.abs(K) ** 2 + beta * (np.abs(Dx) ** 2 + np.abs(Dy) ** 2)), s=y.shape)
        beta *= cfg.kappa
    np.testing.assert_allclose(l0_latent(y, K, lam, cfg), x, atol=1e-10)


def test_psf2otf_is_the_convolution_the_blur_model_applies():
    """A kernel's transfer function applies it centred and unflipped, as `convolve` does
    (a flipped or shifted convention would deconvolve into a shifted image)."""
    x = blocks(64)
    k = np.zeros((7, 7))
    k[3, 3], k[1, 5] = 0.6, 0.4  # asymmetric: a flip or shift shows
    spatial = convolve(np.repeat(np.pad(x, 7, mode="wrap")[..., None], 3, 2).astype(np.float32), k.astype(np.float32))[7:-7, 7:-7, 0]
    fourier = np.fft.irfft2(psf2otf(k, x.shape) * np.fft.rfft2(x), s=x.shape)
    np.testing.assert_allclose(fourier, spatial, atol=1e-5)


def test_periodic_pad_wraps_smoothly_and_keeps_the_image():
    img = np.random.default_rng(1).random((50, 70))
    out = periodic_pad(img, 9)
    assert out.shape[0] >= 59 and out.shape[1] >= 79 and out.shape == (cv2.getOptimalDFTSize(59), cv2.getOptimalDFTSize(79))
    np.testing.assert_array_equal(out[:50, :70], img)
    # Across the wrap-around seam the steps are no larger than inside the pad.
    steps = np.abs(np.diff(np.concatenate([out, out[:1]], 0), axis=0))[49:]
    assert steps.max() < 0.5 and np.abs(out[-1] - out[0]).max() < 0.2


def test_clean_kernel_drops_light_pieces_but_never_the_heaviest():
    k = np.zeros((15, 15))
    k[7, 5:10] = 1.0
    k[1, 1] = 0.3  # a light stray piece, above the prune level
    out = clean_kernel(k.copy(), BlindConfig())
    assert out[1, 1] == 0 and out.sum() == pytest.approx(1.0) and (out > 0).sum() == 5
    scattered = np.zeros((15, 15))
    scattered[::4, ::4] = 1.0  # 16 pieces, each under min_piece
    out = clean_kernel(scattered, BlindConfig(min_piece=0.1))
    assert (out > 0).sum() == 1 and out.sum() == pytest.approx(1.0)
    assert clean_kernel(-np.ones((5, 5)), BlindConfig())[2, 2] == 1.0  # nothing positive: a delta


def test_centre_kernel_puts_the_centre_of_mass_in_the_middle():
    k = np.zeros((11, 11))
    k[1, 2], k[2, 3] = 0.5, 0.5
    out = centre_kernel(k)
    yy, xx = np.mgrid[:11, :11]
    assert abs((out * yy).sum() - 5) <= 0.5 and abs((out * xx).sum() - 5) <= 0.5 and out.sum() == pytest.approx(1)


def test_pyramid_runs_coarse_to_fine_up_to_the_kernel_size():
    sizes = pyramid_sizes(75)
    assert sizes[-1] == 75 and sizes[0] <= 7 and all(s % 2 for s in sizes) and sizes == sorted(sizes)
    assert pyramid_sizes(5) == [5]


def test_salient_threshold_keeps_edges_of_every_orientation():
    x = blocks(96)
    t = salient_threshold(x, 9)
    gx, gy = _grad(x)
    kept = np.hypot(gx, gy) >= t
    assert 0 < t and kept.mean() < 0.5 and kept[gx != 0].any() and kept[gy != 0].any()


# The toys below blur by a thin, clean 9 px line at noise 0.005: pruning at 0.1 of the
# maximum (the default, chosen on photos with our hand-shake kernels) leaves a few noise
# pixels around so thin a kernel; the toys prune at 0.2, as the estimator did before.
TOY_PRUNE = 0.2


def test_estimate_kernel_finds_a_motion_blur():
    x = blocks(128)
    k = line_kernel(9, 30)
    y = np.fft.irfft2(psf2otf(k, x.shape) * np.fft.rfft2(x), s=x.shape)
    y = y + np.random.default_rng(2).normal(0, 0.005, y.shape)
    est = estimate_kernel(y, BlindConfig(kernel_size=15, prune=TOY_PRUNE))
    assert est.shape == (15, 15) and est.sum() == pytest.approx(1) and est.min() >= 0
    score = cv2.matchTemplate(np.pad(est, 4).astype(np.float32), k.astype(np.float32), cv2.TM_CCORR_NORMED).max()
    assert score > 0.8
    # ... and deconvolving with it beats the blurry input clearly (a wrong kernel would not).
    rgb, sharp = np.repeat(y[..., None], 3, 2).clip(0, 1), np.repeat(x[..., None], 3, 2)
    assert psnr(wiener(rgb, est), sharp) > psnr(rgb, sharp) + 2
    assert psnr(blind_deconvolve(rgb, BlindConfig(kernel_size=15, prune=TOY_PRUNE)), sharp) > psnr(rgb, sharp) + 2


def test_wiener_with_the_true_kernel_inverts_the_blur():
    """As on a photo: the blur runs past the crop's borders, which the periodic pad hides."""
    x = np.repeat(blocks(160)[..., None], 3, 2).astype(np.float32)
    k = line_kernel(7, 100, 11).astype(np.float32)
    y, x = convolve(x, k)[16:-16, 16:-16].astype(np.float64), x[16:-16, 16:-16]
    inner = (slice(8, -8), slice(8, -8))
    assert psnr(wiener(y, k, 1e-3)[inner], x[inner]) > psnr(y[inner], x[inner]) + 8


def test_a_large_image_is_deconvolved_whole_with_the_kernel_of_its_centre(monkeypatch):
    import deblurkit.deconv as dc

    seen = []
    real = dc.estimate_kernel
    monkeypatch.setattr(dc, "estimate_kernel", lambda g, cfg: seen.append(g.shape) or real(g, cfg))
    monkeypatch.setattr(dc, "CROP_ESTIMATE_SIDE", 64)
    rgb = np.repeat(blocks(128)[:, :100, None], 3, 2)
    out = dc.blind_deconvolve(rgb, BlindConfig(kernel_size=9))
    assert seen == [(64, 64)] and out.shape == rgb.shape
    assert dc.blind_deconvolve(rgb[:20], BlindConfig(kernel_size=9)).shape == (20, 100, 3) and len(seen) == 1  # too small: no estimate


def test_the_per_crop_estimate_keeps_the_window_its_training_packs_were_made_with(monkeypatch):
    """blind_deconvolution (the kernel-aware models' per-crop input and `deblur deconv-pack`)
    reads a 384 px centre, whatever window the product's whole-photo estimate uses."""
    import deblurkit.deconv as dc

    seen = []

    def delta(gray, cfg):
        seen.append(gray.shape)
        k = np.zeros((9, 9))
        k[4, 4] = 1.0
        return k

    monkeypatch.setattr(dc, "estimate_kernel", delta)
    dc.blind_deconvolve(np.full((400, 500, 3), 0.5))
    assert seen == [(384, 384)]


@pytest.mark.parametrize("shape,value", [((64, 64, 3), 0.5), ((40, 300, 3), 0.0), ((300, 40, 3), 1.0)])
def test_a_flat_image_comes_back_unchanged(shape, value):
    """No edges, no kernel to find: the estimate falls back to a delta instead of NaNs."""
    img = np.full(shape, value)
    out = blind_deconvolve(img)
    assert np.isfinite(out).all() and np.abs(out - img).max() < 1e-9


def test_noise_estimate_and_the_noise_rule():
    from deblurkit.deconv.blind import NOISE_WEIGHT_PER_VARIANCE, noise_sigma, wiener_weight

    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[:128, :128] / 128.0
    smooth = 0.5 + 0.2 * np.sin(3 * xx) * np.cos(2 * yy)
    assert noise_sigma(smooth) < 0.002
    for sd in (0.01, 0.05):
        assert abs(noise_sigma(smooth + sd * rng.standard_normal(smooth.shape)) - sd) < 0.15 * sd
    noisy = smooth + 0.05 * rng.standard_normal(smooth.shape)
    assert wiener_weight("fixed", noisy) == WIENER_WEIGHT
    assert wiener_weight("noise", noisy) == pytest.approx(WIENER_WEIGHT + NOISE_WEIGHT_PER_VARIANCE * noise_sigma(noisy) ** 2)
    assert wiener_weight("noise", noisy) > 2 * wiener_weight("noise", smooth)
    with pytest.raises(ValueError, match="unknown Wiener rule"):
        wiener_weight("loud", noisy)


def test_blind_deconvolve_uses_the_rules_weight(monkeypatch):
    import deblurkit.deconv as dc

    seen = []
    monkeypatch.setattr(dc, "wiener", lambda rgb, k, weight: seen.append(weight) or rgb)
    rng = np.random.default_rng(0)
    rgb = np.clip(0.5 + 0.1 * rng.standard_normal((64, 64, 3)), 0, 1)
    dc.blind_deconvolve(rgb, BlindConfig(kernel_size=9))
    dc.blind_deconvolve(rgb, BlindConfig(kernel_size=9), rule="noise")
    assert seen[0] == WIENER_WEIGHT and seen[1] > 5 * WIENER_WEIGHT  # noise 0.1: weight about 0.03 + 10


def _blurred(x, k, noise, seed=5):
    """x blurred by k (periodic), with Gaussian noise and 8-bit steps, as (grey, rgb)."""
    y = np.fft.irfft2(psf2otf(k, x.shape) * np.fft.rfft2(x), s=x.shape)
    y = np.round(np.clip(y + np.random.default_rng(seed).normal(0, noise, y.shape), 0, 1) * 255) / 255
    return y, np.repeat(y[..., None], 3, 2)


def _photo_crop():
    from pathlib import Path

    from deblurkit.deconv.blind import to_gray
    from deblurkit.io import read_image

    path = Path(__file__).resolve().parents[1] / "examples" / "gopro_000110_sharp.png"
    return to_gray(read_image(path).rgb)[100:356, 300:556]


@pytest.mark.parametrize("image,noise", [("blocks", 0.02), ("photo", 0.005), ("photo", 0.002)])
def test_residual_ratio_tells_the_true_kernel_from_a_wrong_one(image, noise):
    """Noisy synthetic blocks and a clean crop of a real frame (the light deconvolution
    and the noise floor keep a right kernel under the bar even with little noise)."""
    from deblurkit.deconv import GUARD_RESIDUAL, residual_ratio

    x = blocks(128) if image == "blocks" else _photo_crop()
    k, wrong_k = line_kernel(11, 30), line_kernel(11, 120)
    y, _ = _blurred(x, k, noise)
    assert residual_ratio(y, k) < GUARD_RESIDUAL < 2 * GUARD_RESIDUAL < residual_ratio(y, wrong_k)


@pytest.mark.parametrize("wrong", [False, True])
def test_the_guarded_rule_returns_the_input_where_the_kernel_does_not_explain_it(monkeypatch, wrong):
    import deblurkit.deconv as dc
    from deblurkit.deconv.blind import wiener_weight

    k = line_kernel(11, 30)
    y, rgb = _blurred(blocks(128), k, 0.02)
    monkeypatch.setattr(dc, "estimate_kernel", lambda g, cfg: line_kernel(11, 120) if wrong else k)
    d = dc.blind_deconvolution(rgb, BlindConfig(kernel_size=15), rule="guarded")
    assert d.fell_back is wrong and d.kernel is not None
    if wrong:
        np.testing.assert_array_equal(d.image, rgb)
    else:
        np.testing.assert_allclose(d.image, wiener(rgb, k, wiener_weight("guarded", y)))  # the noise rule's weight
    # The other rules never fall back: the same wrong kernel is applied.
    n = dc.blind_deconvolution(rgb, BlindConfig(kernel_size=15), rule="noise")
    assert not n.fell_back and np.abs(n.image - rgb).max() > 0.1
    assert wiener_weight("guarded", y) == wiener_weight("noise", y)


def _blurred_blocks(noise=0.01, seed=3):
    x = np.repeat(blocks(160)[..., None], 3, 2).astype(np.float32)
    k = line_kernel(11, 60, 15).astype(np.float32)
    y = convolve(x, k)[16:-16, 16:-16].astype(np.float64)
    y = np.clip(y + np.random.default_rng(seed).normal(0, noise, y.shape), 0, 1)
    return y, x[16:-16, 16:-16].astype(np.float64), k


def test_tv_deconvolution_beats_wiener_at_one_percent_noise():
    from deblurkit.deconv import deconvolve_with_kernel, tv_deconvolve

    y, x, k = _blurred_blocks()
    inner = (slice(8, -8), slice(8, -8))
    tv, wn = deconvolve_with_kernel(y, k, method="tv"), deconvolve_with_kernel(y, k, method="wiener")
    assert tv.shape == y.shape and 0 <= tv.min() and tv.max() <= 1
    assert psnr(tv[inner], x[inner]) > psnr(wn[inner], x[inner]) + 1 > psnr(y[inner], x[inner]) + 3
    np.testing.assert_array_equal(tv, tv_deconvolve(y, k))  # the method is that function
    # A heavier prior flattens more: the weight reaches the solver.
    heavy = tv_deconvolve(y, k, weight=0.2)
    assert np.abs(np.diff(heavy, axis=1)).sum() < np.abs(np.diff(tv, axis=1)).sum() * 0.8


def _tv_reference(rgb, k, weight):
    """Krishnan & Fergus's splitting as written, per channel, float64 numpy, every transfer
    function by FFT: what nonblind.tv_deconvolve computes another way."""
    from deblurkit.deconv.nonblind import BETA_MAX, BETA_RATE, BETA_START

    out = np.empty(rgb.shape)
    for c in range(rgb.shape[2]):
        yp = periodic_pad(rgb[..., c], max(k.shape))
        K, Dx, Dy = psf2otf(k, yp.shape), _diff_otf(yp.shape, 1), _diff_otf(yp.shape, 0)
        lam = 2.0 / weight
        x, beta = yp.copy(), BETA_START
        while beta <= BETA_MAX * (1 + 1e-9):
            gx, gy = _grad(x)
            wx = np.sign(gx) * np.maximum(np.abs(gx) - 1 / beta, 0)
            wy = np.sign(gy) * np.maximum(np.abs(gy) - 1 / beta, 0)
            num = lam * np.conj(K) * np.fft.rfft2(yp) + beta * (np.conj(Dx) * np.fft.rfft2(wx) + np.conj(Dy) * np.fft.rfft2(wy))
            x = np.fft.irfft2(num / (lam * np.abs(K) ** 2 + beta * (np.abs(Dx) ** 2 + np.abs(Dy) ** 2)), s=yp.shape)
            beta *= BETA_RATE
        out[..., c] = x[:rgb.shape[0], :rgb.shape[1]]
    return np.clip(out, 0, 1)


@pytest.mark.parametrize("h, w, kh, kw, c", [(37, 50, 7, 7, 3), (40, 41, 6, 9, 3), (33, 33, 5, 8, 3), (36, 45, 7, 5, 1)])
def test_tv_deconvolution_solves_the_reference_problem(h, w, kh, kw, c):
    """The float32 solver (one channel at a time) against the textbook float64 one: odd and even sizes,
    kernels that are not square or not odd (where the kernel's centre and the FFT layout
    could be off by one), one channel (the kernel estimate's grey windows)."""
    from deblurkit.deconv import tv_deconvolve

    rng = np.random.default_rng(h * w)
    x = cv2.resize(rng.random((h // 4 + 2, w // 4 + 2, 3)), (w, h), interpolation=cv2.INTER_NEAREST)[..., :c]
    k = rng.random((kh, kw)) ** 4
    k /= k.sum()
    blurred = convolve(x.astype(np.float32), k.astype(np.float32)).reshape(x.shape)  # (OpenCV drops a single channel)
    y = np.clip(blurred + rng.normal(0, 0.01, x.shape), 0, 1)
    got = tv_deconvolve(y, k, weight=0.01)
    assert got.dtype == np.float32 and got.flags["C_CONTIGUOUS"] and got.shape == y.shape
    np.testing.assert_allclose(got, _tv_reference(y.astype(np.float64), k, 0.01), atol=2e-5)


def _tv_stacked_with_rolls(rgb, k, weight):
    """The float32 stacked solver as it was written before its buffers were reused (np.roll-style
    differences, a new array per step): what the in-place, one-channel-at-a-time solver must
    match to float32 rounding (the FFTs of a stack and of one channel round differently)."""
    import torch

    from deblurkit.deconv.nonblind import BETA_MAX, BETA_RATE, BETA_START, _difference_energy

    k = k / k.sum()
    h, w = rgb.shape[:2]
    yp = torch.from_numpy(np.stack([periodic_pad(rgb[..., c], max(k.shape)) for c in range(rgb.shape[2])])).float()
    shape = tuple(yp.shape[1:])
    K = torch.from_numpy(psf2otf(k, shape)).to(torch.complex64)
    lam = 2.0 / weight
    kty = lam * K.conj() * torch.fft.rfft2(yp)
    kk, dd = lam * K.abs() ** 2, _difference_energy(shape, torch.float32)
    x, beta = yp, BETA_START
    while beta <= BETA_MAX * (1 + 1e-9):
        wx = torch.nn.functional.softshrink(x.roll(-1, -1) - x, 1 / beta)
        wy = torch.nn.functional.softshrink(x.roll(-1, -2) - x, 1 / beta)
        adjoint = wx.roll(1, -1) - wx + wy.roll(1, -2) - wy
        x = torch.fft.irfft2(torch.fft.rfft2(adjoint).mul_(beta).add_(kty).div_(kk + beta * dd), s=shape)
        beta *= BETA_RATE
    return x[:, :h, :w].clamp(0, 1).permute(1, 2, 0).numpy()


@pytest.mark.parametrize("h, w, ks", [(64, 80, 9), (57, 43, 15)])
def test_tv_solver_in_reused_buffers_gives_the_same_numbers(h, w, ks):
    from deblurkit.deconv import tv_deconvolve

    rng = np.random.default_rng(ks)
    y, k = rng.random((h, w, 3)), rng.random((ks, ks)) ** 4
    np.testing.assert_allclose(tv_deconvolve(y, k, 0.01), _tv_stacked_with_rolls(y, k, 0.01), rtol=0, atol=1e-5)


def test_tv_weight_follows_the_noise():
    from deblurkit.deconv.nonblind import TV_FLOOR, TV_PER_SIGMA, tv_weight

    y, _, _ = _blurred_blocks(noise=0.02)
    clean, _, _ = _blurred_blocks(noise=0.0)
    # One channel: the grey of three channels with independent noise has sigma / sqrt(3).
    assert tv_weight(y[..., 0]) == pytest.approx(TV_PER_SIGMA * 0.02, rel=0.25)
    assert tv_weight(clean[..., 0]) == TV_FLOOR


def test_an_estimated_kernel_on_a_noisy_photo_gets_the_stronger_tv_weight(monkeypatch):
    from deblurkit.deconv import nonblind

    noisy, _, _ = _blurred_blocks(noise=0.03)
    sigma = nonblind.noise_sigma(noisy[..., 0])
    assert nonblind.tv_weight(noisy[..., 0]) == pytest.approx(nonblind.TV_PER_SIGMA * sigma)  # a given kernel: the plain weight
    assert nonblind.tv_weight(noisy[..., 0], estimated_kernel=True) == pytest.approx(
        nonblind.NOISY_TV_FACTOR * nonblind.TV_PER_SIGMA * sigma)
    gray = np.zeros((8, 8))
    for level, factor in ((0.0099, 1.0), (nonblind.NOISY_SIGMA, nonblind.NOISY_TV_FACTOR)):  # either side of the threshold
        monkeypatch.setattr(nonblind, "noise_sigma", lambda g, level=level: level)
        assert nonblind.tv_weight(gray, estimated_kernel=True) == pytest.approx(factor * nonblind.TV_PER_SIGMA * level)


@pytest.mark.parametrize("kind", ["uint8", "uint16", "float32", "float64", "channels_first_view"])
def test_a_channel_is_loaded_padded_in_place_exactly_as_converted_then_padded(kind):
    from deblurkit.deconv.blind import padded_shape
    from deblurkit.deconv.nonblind import load_padded_channel, unit

    rng = np.random.default_rng(5)
    rgb = {"uint8": lambda: rng.integers(0, 256, (37, 50, 3), dtype=np.uint8),
           "uint16": lambda: rng.integers(0, 65536, (37, 50, 3), dtype=np.uint16),
           "float32": lambda: rng.random((37, 50, 3), dtype=np.float32),
           "float64": lambda: rng.random((37, 50, 3)) * 1.2 - 0.1,
           "channels_first_view": lambda: rng.random((3, 37, 50)).astype(np.float32).transpose(1, 2, 0)}[kind]()
    out = np.full(padded_shape(rgb.shape[:2], 9), np.nan, np.float32)
    for c in range(3):
        load_padded_channel(out, rgb, c)
        np.testing.assert_array_equal(out, periodic_pad(unit(rgb[..., c], np.float32), 9))


def test_the_tv_solver_writes_into_a_view_and_refuses_a_wrong_one():
    from deblurkit.deconv import tv_deconvolve

    y, _, k = _blurred_blocks()
    whole = tv_deconvolve(y, k, 0.004)
    target = np.zeros((3,) + y.shape[:2], np.float32)  # the networks' channels-first layout
    tv_deconvolve(y, k, 0.004, out=target.transpose(1, 2, 0))
    np.testing.assert_array_equal(target.transpose(1, 2, 0), whole)
    eight_bits = np.round(y * 255).astype(np.uint8)  # integer photos are converted channel by channel
    np.testing.assert_allclose(tv_deconvolve(eight_bits, k, 0.004), tv_deconvolve(eight_bits / 255.0, k, 0.004), atol=1e-5)
    sixteen_bits = np.round(y * 65535).astype(np.uint16)
    np.testing.assert_allclose(tv_deconvolve(sixteen_bits, k, 0.004), tv_deconvolve(sixteen_bits / 65535.0, k, 0.004), atol=1e-5)
    with pytest.raises(ValueError, match="float32"):
        tv_deconvolve(y, k, 0.004, out=np.zeros(y.shape, np.float64))


def test_unknown_nonblind_method_is_refused():
    from deblurkit.deconv import deconvolve_with_kernel

    with pytest.raises(ValueError, match="wiener or tv"):
        deconvolve_with_kernel(np.zeros((8, 8, 3)), np.ones((3, 3)), method="lucy")


def test_blind_deconvolution_with_tv_keeps_the_estimated_kernel():
    from deblurkit.deconv import blind_deconvolution, tv_deconvolve

    y, x, _ = _blurred_blocks(noise=0.005)
    d = blind_deconvolution(y, BlindConfig(kernel_size=21), rule="noise", method="tv")
    assert not d.fell_back and d.kernel.shape == (21, 21)
    np.testing.assert_array_equal(d.image, tv_deconvolve(y, d.kernel))


@pytest.mark.parametrize("change", [dict(finest_size=11), dict(cg_start="uniform"), dict(cg_start="previous"),
                                    dict(level_clean=False), dict(noise_lambda_floor=0.5), dict(edges_per_direction=20.0),
                                    dict(start="vertical")])
def test_every_estimator_variant_still_finds_a_motion_blur(change):
    """The variants the tuning loop measured (docs/bench/kernel-first/estimator_loop.txt) are estimators too."""
    x = blocks(128)
    k = line_kernel(9, 30)
    y = np.fft.irfft2(psf2otf(k, x.shape) * np.fft.rfft2(x), s=x.shape)
    y = y + np.random.default_rng(2).normal(0, 0.005, y.shape)
    est = estimate_kernel(y, BlindConfig(kernel_size=15, prune=TOY_PRUNE, **change))
    assert est.shape == (15, 15) and est.sum() == pytest.approx(1) and est.min() >= 0
    from deblurkit.deconv import kernel_similarity

    assert kernel_similarity(est, k) > 0.7


@pytest.mark.parametrize("start, axis", [("horizontal", 1), ("vertical", 0)])
def test_the_coarsest_level_starts_from_two_pixels_along_the_named_axis(start, axis):
    """With no alternations the estimate is its start carried up the pyramid: two pixels
    side by side (Pan et al.) or one above the other (two_starts_probe.py's second start)."""
    k = estimate_kernel(blocks(64), BlindConfig(kernel_size=5, iterations=0, start=start))
    ys, xs = np.nonzero(k)
    assert (len(set(xs)), len(set(ys)))[::1 if axis == 1 else -1] == (2, 1)
