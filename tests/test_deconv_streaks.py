"""The kernel read from a photo's light streaks (deconv.streaks) and where the kernel path uses it."""

import numpy as np
import pytest
import torch

from deblurkit.data.blur import convolve
from deblurkit.deconv import kernel_similarity
from deblurkit.deconv.photo import estimate_photo_kernel
from deblurkit.deconv import streaks
from deblurkit.deconv.streaks import GAMMA, isolated_streaks, light_and_clipped, streak_kernel, stroke_width


def _hook_kernel():
    """An 11 px shake that is not symmetric (a stroke and a hook), sum 1."""
    k = np.zeros((11, 11))
    k[5, 1:9] = 1.0
    k[2:6, 8] = 0.6
    return k / k.sum()


def _night(lights=9, size=192, seed=0, kernel=None, spacing=48, spots=None, twin=0, bright=(2.0, 6.0)):
    """A dark textured scene with `lights` point lights `bright` times white on a grid, blurred in light by the kernel, back to values, a little noise:
    (photo in [0, 1], kernel). twin: a second point light this many px to the right of each
    (one lamp with two bright points)."""
    rng = np.random.default_rng(seed)
    k = _hook_kernel() if kernel is None else kernel
    light = np.kron(rng.uniform(0.005, 0.04, (size // 16 + 1, size // 16 + 1, 3)), np.ones((16, 16, 1)))[:size, :size]
    if spots is None:
        spots = [(y, x) for y in range(32, size - 31, spacing) for x in range(32, size - 31, spacing)][:lights]
    for y, x in spots:
        light[y, x] = rng.uniform(*bright) * np.array([1.0, 0.9, 0.7])
        if twin:
            light[y, x + twin] = light[y, x]
    blurred = convolve(light.astype(np.float32), k.astype(np.float32)).astype(np.float64)
    y = np.clip(blurred, 0, 1) ** (1 / GAMMA) + rng.normal(0, 0.004, blurred.shape)
    return np.clip(y, 0, 1), k


def test_isolated_lights_give_the_kernel_they_draw():
    y, k = _night()
    found = streak_kernel(y, 31)
    assert found is not None and found.agreeing >= 2 and found.streaks >= 3
    assert found.kernel.shape == (31, 31) and found.kernel.sum() == pytest.approx(1.0) and found.kernel.min() >= 0
    assert kernel_similarity(found.kernel, k) > 0.85
    # not the mirror image: the hook is on the right side
    assert kernel_similarity(found.kernel, k) > kernel_similarity(found.kernel, k[::-1, ::-1]) + 0.05


def test_lit_windows_are_not_read_as_streaks():
    """Extended lights (windows, lamp shades) drawn out by the shake agree with each other as
    point lights' streaks do, but are the kernel convolved with their shape: left out."""
    rng = np.random.default_rng(2)
    k = _hook_kernel()
    light = np.kron(rng.uniform(0.005, 0.04, (12, 12, 3)), np.ones((16, 16, 1)))
    for y in range(24, 170, 48):
        for x in range(24, 170, 48):
            light[y:y + 10, x:x + 8] = 3.0 * np.array([1.0, 0.85, 0.5])  # a lit window, 8 x 10 px
    blurred = convolve(light.astype(np.float32), k.astype(np.float32)).astype(np.float64)
    photo = np.clip(np.clip(blurred, 0, 1) ** (1 / GAMMA) + rng.normal(0, 0.004, blurred.shape), 0, 1)
    assert streak_kernel(photo, 31) is None


def test_no_kernel_without_lights_or_with_one_light():
    rng = np.random.default_rng(1)
    texture = np.kron(rng.uniform(0.1, 0.9, (24, 24, 3)), np.ones((8, 8, 1)))
    assert streak_kernel(texture, 31) is None
    y, _ = _night(lights=1)
    assert streak_kernel(y, 31) is None  # nothing to agree with
    assert streak_kernel(y[:40, :40], 31) is None  # smaller than two kernels


def test_the_photo_level_estimate_takes_the_streaks_and_a_named_region_the_estimator():
    y, k = _night(size=256)
    est = estimate_photo_kernel(y, size=31)
    assert est.streaks >= 2 and est.accepted and est.region == (0, 0, 256, 256)
    assert kernel_similarity(est.kernel, k) > 0.85
    named = estimate_photo_kernel(y, size=31, region=(0, 0, 128, 128))
    assert named.streaks == 0


def test_the_kernel_path_deconvolves_a_streak_kernel_as_a_given_one():
    from deblurkit.kernel_path import KernelChoice, decide

    y, _ = _night(size=256)
    image = torch.from_numpy(np.ascontiguousarray(y.transpose(2, 0, 1), np.float32))[None]
    report = decide(image, KernelChoice("auto", size=31))
    assert report.path == "kernel" and report.estimated is False and "light streaks" in report.reason


def test_the_lights_streaks_are_clipped_and_still_give_the_kernel():
    y, k = _night(bright=(20.0, 60.0))
    light, clipped = light_and_clipped(y)
    found = isolated_streaks(light, clipped, 31)
    assert len(found) >= 3 and all(share > 0.05 for _, share in found)  # every streak has a clipped core
    assert [share for _, share in found] == sorted(share for _, share in found)  # the least clipped first
    got = streak_kernel(y, 31)
    assert got is not None and kernel_similarity(got.kernel, k) > 0.8


def test_a_long_streak_brightest_at_one_end_is_found():
    """A 25 px stroke fading away from its bright end: its peak is near one end, so the
    streak reaches almost a whole kernel from it (a window centred on the peak would cut it)."""
    k = np.zeros((31, 31))
    k[15, 3:28] = np.linspace(1.0, 0.15, 25)
    k /= k.sum()
    y, _ = _night(size=288, kernel=k, spacing=64)
    found = streak_kernel(y, 31)
    assert found is not None and found.agreeing >= 2
    assert kernel_similarity(found.kernel, k) > 0.85


def test_one_lamp_with_two_bright_points_is_one_streak():
    """Two lamps, each with two bright points 8 px apart along the streak: two streaks, not
    four that agree (the gate needs three lights)."""
    y, _ = _night(spots=[(64, 48), (64, 144)], size=192, twin=8)
    light, clipped = light_and_clipped(y)
    assert len(isolated_streaks(light, clipped, 31)) == 2
    assert streak_kernel(y, 31) is None


def test_lights_at_the_border_are_not_mirrored_into_streaks():
    """Lights nearer the photo's edge than a kernel window are left out (no padding that
    would mirror them into symmetric fake streaks)."""
    y, _ = _night(spots=[(4, 60), (4, 120), (100, 3), (180, 188), (188, 90)], size=192)
    light, clipped = light_and_clipped(y)
    assert isolated_streaks(light, clipped, 31) == []


def test_the_stroke_width_is_the_same_in_every_direction_and_along_a_curve():
    import cv2

    yy, xx = np.mgrid[:160, :160]
    for w in (3, 5, 9):
        widths = []
        for angle in (0.0, 0.6, np.pi / 4, 1.3):
            across = np.abs((yy - 80) * np.cos(angle) - (xx - 80) * np.sin(angle))
            along = np.abs((yy - 80) * np.sin(angle) + (xx - 80) * np.cos(angle))
            widths.append(stroke_width((across <= w / 2) & (along < 50)))
        arc = np.zeros((160, 160), np.uint8)
        cv2.ellipse(arc, (80, 80), (50, 30), 0, 0, 270, 1, 1)
        arc = cv2.dilate(arc, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (w, w))) > 0
        widths.append(stroke_width(arc))
        assert max(widths) - min(widths) < 0.25 * w + 0.5, (w, widths)
        assert 0.75 * w < np.mean(widths) < 1.25 * w + 0.5, (w, widths)


def test_light_and_clipping_are_taken_before_shrinking():
    """At half the scale a pixel is clipped where any pixel it covers is, and its light is
    the mean light it covers (not the light of the mean value)."""
    rgb = np.full((8, 8, 3), 0.2)
    rgb[2, 2] = 1.0  # one clipped pixel
    light, clipped = light_and_clipped(rgb, 0.5)
    assert light.shape == clipped.shape == (4, 4)
    assert clipped[1, 1] and clipped.sum() == 1
    assert light[1, 1] == pytest.approx((3 * 0.2 ** GAMMA + 1.0) / 4, rel=1e-5)
    u8 = np.round(rgb * 255).astype(np.uint8)
    assert np.allclose(light_and_clipped(u8, 0.5)[0], light, atol=0.01)


def test_a_large_photo_reads_its_streaks_at_the_estimation_scale(monkeypatch):
    """estimate_photo_kernel hands the streak readout the full-resolution photo and the
    estimation scale, and enlarges the kernel back."""
    from deblurkit.deconv import photo

    seen = {}

    def fake(rgb, size, scale):
        seen.update(shape=rgb.shape, size=size, scale=scale)
        k = np.zeros((size, size))
        k[size // 2, size // 2 - 2:size // 2 + 3] = 1
        return streaks.StreakKernel(k / k.sum(), 2, 3)

    monkeypatch.setattr(photo, "streak_kernel", fake)
    big = np.zeros((1400, 2560, 3), np.uint8)
    est = photo.estimate_photo_kernel(big)
    assert seen == {"shape": (1400, 2560, 3), "size": 75, "scale": 0.5}
    assert est.streaks == 2 and est.accepted and est.kernel.shape == (151, 151) and est.region == (0, 0, 2560, 1400)


def _dwell_kernel(link):
    """Two 3x3 dwells 20 px apart joined by a line at `link` of their brightness (a shake that
    rested, moved fast, rested), sum 1, in a 31 px window."""
    k = np.zeros((31, 31))
    k[14:17, 4:7] = 1.0
    k[14:17, 24:27] = 1.0
    k[15, 7:24] = link
    return k / k.sum()


def test_a_streak_broken_where_the_shake_moved_fast_is_not_two_lights():
    """A faint stretch between two bright dwells splits one light's streak into two pieces
    that look alike (two dots): two lamps must not pass as four agreeing streaks."""
    y, _ = _night(spots=[(64, 48), (64, 144)], size=192, kernel=_dwell_kernel(0.03), bright=(8.0, 20.0))
    light, clipped = light_and_clipped(y)
    assert isolated_streaks(light, clipped, 31) == []
    assert streak_kernel(y, 31) is None
    # the same shake drawn bright all along is one streak per light, and agrees
    k = _dwell_kernel(0.6)
    y, _ = _night(size=288, kernel=k, spacing=64, bright=(8.0, 20.0))
    found = streak_kernel(y, 31)
    assert found is not None and found.agreeing >= 2 and kernel_similarity(found.kernel, k) > 0.85


def test_the_width_check_is_what_leaves_lit_windows_out():
    """Lit windows (8 x 10 px) alone on a dark background, looked for with a kernel size
    whose surroundings (a quarter of it) see past them: their shapes drawn out by the shake
    agree as point lights' streaks do; only their width tells them apart."""
    rng = np.random.default_rng(4)
    light = np.full((480, 480, 3), 0.01)
    for y in range(80, 400, 96):
        for x in range(80, 400, 96):
            light[y:y + 10, x:x + 8] = 3.0 * np.array([1.0, 0.85, 0.5])
    blurred = convolve(light.astype(np.float32), _hook_kernel().astype(np.float32)).astype(np.float64)
    photo = np.clip(np.clip(blurred, 0, 1) ** (1 / GAMMA) + rng.normal(0, 0.004, blurred.shape), 0, 1)
    lit, clipped = light_and_clipped(photo)
    assert len(isolated_streaks(lit, clipped, 75, width_max=np.inf)) >= 3
    assert isolated_streaks(lit, clipped, 75) == []
    assert streak_kernel(photo, 75) is None


def test_streaks_come_least_clipped_first_and_clipped_ones_weigh_less():
    y, k = _night(size=288, spacing=64, bright=(1.0, 40.0), seed=5)
    light, clipped = light_and_clipped(y)
    found = isolated_streaks(light, clipped, 31)
    shares = [share for _, share in found]
    assert len(found) >= 3 and shares == sorted(shares) and shares[0] < shares[-1]
    # a clipped streak is flat; averaged with an unclipped one it counts for less
    sharp = np.zeros((15, 15))
    sharp[7, 3:12] = np.linspace(1, 3, 9)
    flat = np.where(sharp > 0, 1.0, 0.0)
    got = streaks.agreed_kernel([(sharp / sharp.sum(), 0.0), (flat / flat.sum(), 1.0), (sharp / sharp.sum(), 0.0)], 1).kernel
    even = (2 * sharp / sharp.sum() + flat / flat.sum()) / 3
    assert kernel_similarity(got, sharp) > kernel_similarity(even / even.sum(), sharp) + 1e-3


def test_the_reference_is_the_streak_most_others_agree_with_and_copies_are_aligned():
    line = np.zeros((21, 21))
    line[10, 4:15] = np.linspace(1.0, 2.0, 11)
    hook = np.zeros((21, 21))
    hook[4:15, 10] = 1.0
    hook[14, 10:15] = 1.0

    def moved(k, dy, dx):
        return np.roll(k, (dy, dx), axis=(0, 1)) / k.sum()

    # the hooks are the least clipped (listed first), but three lines agree against two hooks
    found = [(moved(hook, 0, 0), 0.0), (moved(hook, 1, -2), 0.1), (moved(line, 2, 1), 0.2),
             (moved(line, -3, 0), 0.3), (moved(line, 0, 3), 0.4)]
    got = streaks.agreed_kernel(found, 2)
    assert got is not None and got.agreeing == 2 and got.streaks == 5
    assert kernel_similarity(got.kernel, line) > 0.99  # shifted copies averaged onto one another, not smeared
    assert streaks.agreed_kernel(found, 3) is None


def test_a_streak_kernel_goes_through_the_predictors_checks_deconvolved_as_it_will_be(monkeypatch):
    """A kernel read from streaks skips the guard, but a blur the predictor recognises still
    takes the blind path, and the check deconvolves as the kernel path will (as a given kernel)."""
    from deblurkit.deconv import photo
    from deblurkit.kernel_path import KernelChoice, decide

    y, k = _night(size=256)
    est = photo.KernelEstimate(k, True, 9.0, 1.0, (0, 0, 256, 256), 2)
    monkeypatch.setattr(photo, "estimate_photo_kernel", lambda *a, **kw: est)
    seen = []
    real = photo.deconvolve_photo

    def recording(rgb, kernel, *a, **kw):
        seen.append(kw.get("estimated", True))
        return real(rgb, kernel, *a, **kw)

    monkeypatch.setattr(photo, "deconvolve_photo", recording)
    image = torch.from_numpy(np.ascontiguousarray(y.transpose(2, 0, 1), np.float32))[None]
    kept = decide(image, KernelChoice("auto"), predictor=lambda t: t.clone())
    assert kept.path == "kernel" and kept.estimated is False and "5 x 5" not in kept.reason and "3 light streaks" in kept.reason
    assert seen == [False]
    moved = decide(image, KernelChoice("auto"), predictor=lambda t: (t + 0.5).clamp(0, 1))
    assert moved.path == "blind" and "recognises" in moved.reason


def test_separate_lights_close_together_are_all_streaks():
    """Point lights 60 px apart, looked for with a 75 px kernel: each is its own streak (only a
    faint bridge of light between two pieces makes them one broken streak)."""
    spots = [(y, x) for y in range(50, 440, 60) for x in range(50, 600, 60)]
    y, k = _night(size=640, spots=spots, bright=(4.0, 10.0))
    light, clipped = light_and_clipped(y)
    assert len(isolated_streaks(light, clipped, 75)) >= 10
    found = streak_kernel(y, 75)
    assert found is not None and kernel_similarity(found.kernel, k) > 0.85


def test_copies_are_aligned_without_wrapping_round():
    ref = np.zeros((21, 21))
    ref[10, 2] = 1.0
    a = np.zeros((21, 21))
    a[10, 14:20] = 0.05
    a[10, 20] = 1.0
    out = streaks._shifted_onto(a, ref)
    assert out[10, 2] == 1.0 and out[:, 17:].sum() == 0 and out.sum() < a.sum()  # the faint line falls off the left, it does not wrap


def test_a_streak_that_centring_would_cut_is_left_out_not_cut():
    """A 27 px stroke whose light sits at one end: centred on its centre of mass it no longer
    fits a 31 px kernel, so it is left out there (not cut and renormalised); with room for
    it (41 px) it is found whole."""
    k = np.zeros((41, 41))
    k[20, 7:34] = np.linspace(1.0, 0.12, 27)  # all of it above a tenth of its peak: one piece 27 px long
    k /= k.sum()
    y, _ = _night(size=384, kernel=k, spacing=96, bright=(4.0, 6.0))
    light, clipped = light_and_clipped(y)
    assert isolated_streaks(light, clipped, 31) == []
    whole = isolated_streaks(light, clipped, 41)
    assert len(whole) >= 2 and all(kernel_similarity(f, k) > 0.9 for f, _ in whole)
