"""The hand-shake blur model: each property that makes it real, checked on its own."""

from dataclasses import replace

import numpy as np
import pytest

from deblurkit.data.blur import BlurConfig, apply_blur, blur_margin, blur_model, convolve
from deblurkit.data.datasets import SharpFolder
from deblurkit.data.shake import (RotationShake, ShakeConfig, camera_homographies, extent_of, handheld_kernel,
                                  homography_blur, local_kernel_blur, random_rotation_shake, render_kernel, shake_path)

from conftest import smooth_image


def _constant_speed(path: np.ndarray) -> np.ndarray:
    """The same curve walked at constant speed (what a renormalised-velocity walk gives)."""
    s = np.concatenate([[0], np.cumsum(np.linalg.norm(np.diff(path, axis=0), axis=1))])
    u = np.linspace(0, s[-1], len(path))
    return np.stack([np.interp(u, s, path[:, 0]), np.interp(u, s, path[:, 1])], axis=1)


def _peakiness(k: np.ndarray) -> float:
    return float(k.max() / k[k > 0.05 * k.max()].mean())


def test_weight_along_the_path_follows_dwell_time():
    ratios = []
    for seed in range(12):
        path = shake_path(np.random.default_rng(seed), extent=60.0)
        ratios.append(_peakiness(render_kernel(path, 0.5)) / _peakiness(render_kernel(_constant_speed(path), 0.5)))
    # Sampled uniformly in time, the slow parts of the path get the bright knots that a
    # constant-speed walk of the same curve lacks.
    assert np.median(ratios) > 1.3
    # Pointwise too: where the camera moves slowly the kernel is brighter than where it is fast.
    path = shake_path(np.random.default_rng(3), extent=60.0)
    k = render_kernel(path, 0.0, centre=False)
    speed = np.linalg.norm(np.gradient(path, axis=0), axis=1)
    half = k.shape[0] // 2
    px = np.round(path).astype(int) + half
    value = k[px[:, 1], px[:, 0]]
    slow, fast = speed < np.percentile(speed, 10), speed > np.percentile(speed, 90)
    assert value[slow].mean() > 2 * value[fast].mean()


@pytest.mark.parametrize("seed", range(16))
def test_the_whole_path_fits_a_support_sized_to_it(seed):
    rng = np.random.default_rng(seed)
    extent = float(rng.uniform(3, 120))
    k = handheld_kernel(rng, extent=extent)
    assert k.ndim == 2 and k.shape[0] == k.shape[1] and k.shape[0] % 2 == 1
    assert abs(float(k.sum()) - 1) < 1e-5 and (k >= 0).all()
    # Nothing touches the border (nothing was cut off), and the support is not padded far
    # beyond the path: at most the optical blur's 3 sigma and a few pixels each side.
    assert k[0].max() == 0 and k[-1].max() == 0 and k[:, 0].max() == 0 and k[:, -1].max() == 0
    ys, xs = np.nonzero(k > k.max() * 1e-3)
    seen = max(ys.max() - ys.min(), xs.max() - xs.min())
    assert extent - 1 <= seen <= extent + 6
    assert k.shape[0] <= 2 * extent + 12
    # Centred on its centroid: a shake does not move the photo.
    g = np.arange(k.shape[0]) - k.shape[0] // 2
    assert abs(float((k.sum(0) * g).sum())) < 0.51 and abs(float((k.sum(1) * g).sum())) < 0.51


def test_strengths_mix_small_and_large_shakes():
    cfg = ShakeConfig()
    extents = [extent_of(shake_path(np.random.default_rng(s), cfg=cfg)) for s in range(300)]
    assert min(extents) >= cfg.extent[0] - 1e-6 and max(extents) <= cfg.extent[1] + 1e-6
    assert np.mean(np.array(extents) < 10) > 0.2  # small blur stays common
    assert np.mean(np.array(extents) > 60) > 0.1  # and large shakes are there


def test_the_large_shake_model_draws_more_large_shakes_and_keeps_small_ones():
    def extents(name):
        cfg = blur_model(name).handheld
        return np.array([extent_of(shake_path(np.random.default_rng(s), cfg=cfg)) for s in range(400)])
    base, large = extents("handheld"), extents("handheld-large")
    assert np.mean(large > 60) > np.mean(base > 60) + 0.08
    assert np.mean(large < 10) > 0.1  # small blur is still there
    assert max(large) <= blur_model("handheld-large").handheld.extent[1] + 1e-6
    # Rotational shakes draw their extent the same way (same seeds, same margin).
    def rotational(name):
        cfg = blur_model(name).handheld
        rot = [random_rotation_shake(np.random.default_rng(s), 256, 256, cfg) for s in range(300)]
        return np.array([extent_of(r.displacements(128.0, 128.0)) for r in rot])
    assert np.mean(rotational("handheld-large") > 60) > np.mean(rotational("handheld") > 60) + 0.08


def test_pure_translation_homographies_equal_the_convolution_with_their_kernel():
    img = smooth_image(96, 112, seed=1)
    path = shake_path(np.random.default_rng(7), extent=12.0)
    hs = np.repeat(np.eye(3)[None], len(path), axis=0)
    hs[:, 0, 2], hs[:, 1, 2] = path[:, 0], path[:, 1]
    exact = homography_blur(img, hs)
    kernel = render_kernel(path, 0.0, centre=False)
    conv = convolve(img, kernel)
    m = kernel.shape[0]  # away from the borders, where the two pad differently
    np.testing.assert_allclose(exact[m:-m, m:-m], conv[m:-m, m:-m], atol=2e-5)
    # The fast renderer is exact too when every local kernel is the same.
    fast, kernels = local_kernel_blur(img, RotationShake(hs, 0.0), spacing=32)
    np.testing.assert_allclose(fast, conv, atol=2e-5)
    assert all(np.array_equal(k, kernel) for k in kernels)


def _roll_only(h, w, degrees):
    t = np.linspace(-0.5, 0.5, 512)
    angles = np.zeros((len(t), 3))
    angles[:, 2] = np.radians(degrees) * t
    return RotationShake(camera_homographies(angles, focal=float(w), principal=(w / 2, h / 2)), 0.0)


def test_rotation_blurs_the_corners_more_than_the_centre():
    h, w = 128, 160
    shake = _roll_only(h, w, 6.0)
    centre, corner = shake.kernel_at(w / 2, h / 2), shake.kernel_at(0, 0)
    def spread(k):
        ys, xs = np.nonzero(k > 1e-3 * k.max())
        return max(np.ptp(ys), np.ptp(xs))
    assert spread(centre) <= 2
    assert spread(corner) > 8  # ~ radius 102 px x 0.105 rad
    # And the photo shows it: the centre stays sharp, the corners do not.
    img = smooth_image(h, w, seed=2)
    out, _ = local_kernel_blur(img, shake, spacing=32)
    diff = np.abs(out - img).mean(axis=2)
    assert diff[h // 2 - 8 : h // 2 + 8, w // 2 - 8 : w // 2 + 8].mean() < 0.3 * diff[:16, :16].mean()


def test_fast_rendering_matches_the_exact_homography_average():
    img = smooth_image(128, 128, seed=4)
    shake = random_rotation_shake(np.random.default_rng(11), 128, 128, extent=14.0)
    shake = RotationShake(shake.homographies, 0.0)
    exact = homography_blur(img, shake.homographies)
    fast, _ = local_kernel_blur(img, shake, spacing=32)
    m = 16
    err = np.abs(exact[m:-m, m:-m] - fast[m:-m, m:-m])
    assert err.mean() < 4e-3 and err.max() < 0.05  # measured: mean ~1e-3 on this picture


def test_the_seed_decides_everything():
    img = smooth_image(160, 160, seed=5)
    cfg = blur_model("handheld")
    for seed in range(6):
        a, b = apply_blur(img, np.random.default_rng(seed), cfg), apply_blur(img, np.random.default_rng(seed), cfg)
        np.testing.assert_array_equal(a.blurry, b.blurry)
        assert a.kinds == b.kinds and all(np.array_equal(x, y) for x, y in zip(a.kernels, b.kernels))
    c = apply_blur(img, np.random.default_rng(99), cfg)
    assert np.abs(a.blurry - c.blurry).max() > 1e-3


def test_handheld_output_is_on_the_8_bit_grid_and_uses_every_kind():
    img = smooth_image(96, 96, seed=6)
    cfg = blur_model("handheld")
    kinds = set()
    for seed in range(40):
        r = apply_blur(img, np.random.default_rng(seed), cfg)
        np.testing.assert_allclose(r.blurry * 255, np.round(r.blurry * 255), atol=1e-3)
        kinds.update(r.kinds)
    assert {"motion", "rotation"} <= kinds and kinds & {"defocus", "gaussian"}


def test_legacy_model_is_unchanged_by_default():
    assert BlurConfig() == blur_model("legacy") and BlurConfig().shake == "trajectory"
    assert blur_margin(BlurConfig()) == 24  # the margin every earlier model trained with
    assert blur_margin(blur_model("handheld")) >= 60  # half a 120 px path


def test_training_crops_get_context_for_large_kernels(monkeypatch):
    import deblurkit.data.datasets as datasets

    seen = []
    real = datasets.apply_blur
    monkeypatch.setattr(datasets, "apply_blur", lambda img, *a, **k: (seen.append(img.shape[:2]), real(img, *a, **k))[1])
    img = np.round(smooth_image(400, 400) * 255).astype(np.uint8)
    for name, crop in (("handheld", 128), ("legacy", 128), ("handheld", 256)):
        seen.clear()
        sharp, blurry = SharpFolder.from_arrays([img], crop, "x", blur_model(name)).sample(np.random.default_rng(0))
        assert sharp.shape == blurry.shape == (crop, crop, 3)
        # The blur ran on the crop plus the model's margin each side (as much as the photo has).
        side = min(crop + 2 * blur_margin(blur_model(name)), 400)
        assert seen == [(side, side)]


def test_a_curriculum_caps_the_shake():
    from deblurkit.errors import UsageError
    from deblurkit.train import TrainConfig

    cfg = TrainConfig(blur_max_extent=40).blur_config()
    assert cfg.handheld.extent == (3.0, 40.0) and blur_margin(cfg) < blur_margin(blur_model("handheld"))
    extents = [extent_of(shake_path(np.random.default_rng(s), cfg=cfg.handheld)) for s in range(100)]
    assert max(extents) <= 40 + 1e-6
    for bad in (TrainConfig(blur_max_extent=2), TrainConfig(blur_model="legacy", blur_max_extent=40)):
        with pytest.raises(UsageError, match="--blur-max-extent"):
            bad.blur_config()


def test_rotational_kernels_stay_the_size_of_the_shake_on_small_photos():
    """A 120 px shake on a 96 px photo once meant a rotation of over a radian (and a
    5 TiB kernel); the angles stay small and each local kernel about the shake's size."""
    cfg = ShakeConfig()
    for seed in range(300):
        rng = np.random.default_rng(seed)
        extent = float(rng.uniform(3, 120))
        shake = random_rotation_shake(rng, 96, 96, cfg, extent=extent)
        for x, y in ((0, 0), (95, 0), (0, 95), (95, 95), (48, 48)):
            d = shake.displacements(x, y)
            assert extent_of(d) < 2.5 * extent + 2, (seed, x, y, extent_of(d), extent)


def test_the_camera_response_decides_where_the_blur_acts():
    from dataclasses import replace

    from deblurkit.data.blur import apply_blur, convolve, gaussian_kernel

    img = smooth_image(64, 64, seed=2)
    k = gaussian_kernel(2.0, 15)
    plain = replace(blur_model("handheld"), quantize=False, highlight_gain=(1.0, 1.0))
    values = apply_blur(img, np.random.default_rng(0), replace(plain, response_gamma=(1.0, 1.0)), kernel=k, noise=False).blurry
    np.testing.assert_allclose(values, np.clip(convolve(img, k), 0, 1), atol=1e-5)  # gamma 1: on the stored values
    light = apply_blur(img, np.random.default_rng(0), replace(plain, response_gamma=(2.4, 2.4)), kernel=k, noise=False).blurry
    np.testing.assert_allclose(light, np.clip(convolve(img**2.4, k), 0, 1) ** (1 / 2.4), atol=1e-5)
    assert np.abs(light - values).mean() > 1e-3
    # The handheld model draws the response per sample; the legacy model keeps the sRGB curve.
    assert blur_model("handheld").response_gamma == (1.0, 2.4) and blur_model("legacy").response_gamma is None


def test_the_values_model_blurs_the_stored_values_with_noise_on_every_photo():
    cfg = blur_model("handheld-values")
    assert cfg.response_gamma == (1.0, 1.0) and cfg.p_srgb_noise == 1.0
    assert cfg.handheld == blur_model("handheld-large").handheld  # the same shakes
    # A uniform shake is then a convolution of the values themselves (up to noise and 8 bits).
    img = smooth_image(64, 64, seed=2)
    k = np.zeros((5, 5), np.float32)
    k[2] = 0.2
    quiet = replace(cfg, p_srgb_noise=0.0, shot_noise=(0.0, 0.0), read_noise=(0.0, 0.0), p_jpeg=0.0, highlight_gain=(1.0, 1.0))
    out = apply_blur(img, np.random.default_rng(0), quiet, kernel=k).blurry
    assert np.abs(out - np.clip(convolve(img, k), 0, 1)).max() < 1.0 / 255 + 1e-6


def _flat_grey_noise(cfg: BlurConfig, n: int) -> np.ndarray:
    """The noise std of a flat mid-grey photo under `cfg`'s noise, per seed."""
    cfg = replace(cfg, p_jpeg=0.0, highlight_gain=(1.0, 1.0))
    grey, dot = np.full((32, 32, 3), 0.5, np.float32), np.ones((1, 1), np.float32)
    return np.array([apply_blur(grey, np.random.default_rng(s), cfg, kernel=dot).blurry.std() for s in range(n)])


def test_the_iso_model_spreads_noise_from_base_iso_to_handhelds_highest():
    iso, handheld = blur_model("handheld-iso"), blur_model("handheld")
    assert iso.handheld == blur_model("handheld-large").handheld  # the same shakes
    # Each range tops out at handheld's and reaches 8 stops lower.
    for lo_hi, top in ((iso.shot_noise, handheld.shot_noise[1]), (iso.read_noise, handheld.read_noise[1]),
                       (iso.srgb_noise, handheld.srgb_noise[1])):
        assert lo_hi == (top / 256, top)
    noisy, spread = _flat_grey_noise(handheld, 120), _flat_grey_noise(iso, 120)
    # Good light is common: about half the photos at or under 1.2% (handheld: hardly any),
    # and high ISO is still drawn.
    assert (spread <= 0.012).mean() > 0.3 > (noisy <= 0.012).mean()
    assert spread.max() > 0.03 and np.median(spread) < 0.6 * np.median(noisy)


def test_one_sensor_gain_sets_every_noise_level_of_a_photo():
    iso = blur_model("handheld-iso")
    quiet = replace(iso, shot_noise=(1e-6, 1e-6), read_noise=(1e-6, 1e-6), p_srgb_noise=1.0, quantize=False)
    # With shot and read noise silent, the photo's noise is the ISP's alone, at the drawn gain;
    # over photos its level is log-uniform between the range's ends.
    sd = _flat_grey_noise(quiet, 200)
    lo, hi = iso.srgb_noise
    assert sd.min() >= 0.8 * lo and sd.max() <= 1.05 * hi
    share_low = (sd < np.sqrt(lo * hi)).mean()  # the geometric middle splits a log-uniform draw in half
    assert 0.35 < share_low < 0.65
    # The levels move together: a photo that drew high shot noise drew high ISP noise too.
    both = replace(iso, read_noise=(1e-6, 1e-6), p_srgb_noise=1.0, quantize=False)
    assert np.corrcoef(np.log(sd), np.log(_flat_grey_noise(both, 200)))[0, 1] > 0.9


def test_the_plain_model_blurs_as_the_standard_benchmarks_do():
    from deblurkit.bench.kernels import blur_with_kernel

    cfg = blur_model("handheld-plain")
    assert cfg.handheld.p_rotation == 0.0 and cfg.p_jpeg == 0.0 and cfg.quantize
    # One of our shake kernels per photo (uniform across it), convolving the stored values:
    # noiseless, the photo is the benches' blurry photo to the 8-bit step.
    img = smooth_image(64, 64, seed=3)
    result = apply_blur(img, np.random.default_rng(5), cfg, noise=False)
    assert len(result.kernels) == 1 and not result.spatially_varying
    u8 = np.round(img * 255).astype(np.uint8)
    bench = blur_with_kernel(u8, result.kernels[0], 0.0, np.random.default_rng(0))
    plain = apply_blur(u8.astype(np.float32) / 255, np.random.default_rng(5), cfg, noise=False).blurry
    assert np.abs(plain - bench).max() <= 1.0 / 255 + 1e-6
    # Its noise is Gaussian on the values, 0-2%: a flat grey photo's std spreads over that range.
    sd = _flat_grey_noise(cfg, 120)
    assert sd.max() <= 0.021 and sd.min() < 0.004 and 0.007 < np.median(sd) < 0.013
