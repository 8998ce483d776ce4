"""The kernel path (issue 35): photo-level kernel estimation, tiled deconvolution, kernel
files, and the restorer / API / CLI taking the path the photo needs."""

import json
from dataclasses import replace

import cv2
import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from deblurkit.deconv import kernel_similarity, tv_deconvolve
from deblurkit.deconv import photo
from deblurkit.deconv.blind import BlindConfig
from deblurkit.deconv.photo import deconvolve_photo, estimate_photo_kernel, kernel_image, read_kernel
from deblurkit.kernel_path import KernelChoice, kernel_choice
from deblurkit.restorer import Restorer, SamplingOptions, sample_generators

from conftest import random_tiny_model, smooth_image

CPU = torch.device("cpu")


def line_kernel(n, angle):
    k = np.zeros((n, n))
    c = n // 2
    t = np.deg2rad(angle)
    for s in np.linspace(-c, c, 4 * n):
        k[int(round(c + s * np.sin(t))), int(round(c + s * np.cos(t)))] = 1
    return k / k.sum()


def blocks(h, w, seed=0):
    """Piecewise-constant rectangles: strong edges in every direction."""
    rng = np.random.default_rng(seed)
    x = np.full((h, w), 0.5)
    for _ in range(h * w // 600):
        y0, x0 = rng.integers(0, h - 8), rng.integers(0, w - 8)
        x[y0:y0 + rng.integers(6, 40), x0:x0 + rng.integers(6, 40)] = rng.random()
    return x


def shaken(h, w, k, noise=0.003, seed=0):
    """An (h, w, 3) photo blurred by k (replicated borders), a little noise, uint8."""
    x = np.repeat(blocks(h, w, seed)[..., None], 3, 2)
    y = cv2.filter2D(x, -1, k[::-1, ::-1], borderType=cv2.BORDER_REPLICATE)
    y = y + np.random.default_rng(seed).normal(0, noise, y.shape)
    return np.round(np.clip(y, 0, 1) * 255).astype(np.uint8), x


def test_the_photo_kernel_is_found_and_accepted():
    k = line_kernel(9, 30)
    y, _ = shaken(200, 260, k)
    est = estimate_photo_kernel(y, size=15, cfg=BlindConfig(prune=0.2))  # a thin toy line: tests/test_deconv.py TOY_PRUNE
    assert est.accepted and est.scale == 1 and est.kernel.shape == (15, 15)
    assert est.kernel.sum() == pytest.approx(1) and est.kernel.min() >= 0
    assert kernel_similarity(est.kernel, k) > 0.7
    assert est.region == (0, 0, 260, 200)  # smaller than the window: all of it


def test_a_large_photo_is_estimated_shrunk_and_the_kernel_enlarged(monkeypatch):
    monkeypatch.setattr(photo, "ESTIMATE_LONG_SIDE", 200)
    monkeypatch.setattr(photo, "ESTIMATE_SIDE", 160)
    k = line_kernel(17, 0)
    y, _ = shaken(240, 400, k, seed=1)
    est = estimate_photo_kernel(y, size=31)
    assert est.scale == pytest.approx(0.5)
    assert est.kernel.shape[0] == 35  # 31 px asked: 17 px at half size, enlarged back
    assert est.region == (40, 0, 320, 240)  # the centre window, in full-resolution pixels
    assert kernel_similarity(est.kernel, k) > 0.6


def test_the_region_is_where_the_kernel_is_estimated():
    k = line_kernel(9, 90)
    y, _ = shaken(160, 320, k)
    flat = y.copy()
    flat[:, 160:] = 128  # nothing to estimate from on the right
    est = estimate_photo_kernel(flat, size=15, region=(0, 0, 160, 160))
    assert est.region == (0, 0, 160, 160) and kernel_similarity(est.kernel, k) > 0.7
    for bad in [(0, 0, 400, 100), (-1, 0, 64, 64), (0, 0, 16, 64)]:
        with pytest.raises(ValueError, match="region"):
            estimate_photo_kernel(flat, size=15, region=bad)


def test_a_second_longer_estimate_only_where_the_first_fails_or_fills_its_window(monkeypatch):
    """The largest kernel looked for comes from the photo: a 141 px estimate only where the
    75 px one is refused or nearly fills its window, taken where the guard accepts it."""
    line = {75: line_kernel(31, 0), 141: line_kernel(101, 0)}
    residual = {}
    calls = []

    def fake_estimate(gray, cfg):
        calls.append(cfg.kernel_size)
        k = np.zeros((cfg.kernel_size, cfg.kernel_size))
        src = line[cfg.kernel_size]
        t = (cfg.kernel_size - src.shape[0]) // 2
        k[t:t + src.shape[0], t:t + src.shape[0]] = src
        return k

    monkeypatch.setattr(photo, "estimate_kernel", fake_estimate)
    monkeypatch.setattr(photo, "residual_ratio", lambda gray, k: residual[k.shape[0]])
    y = np.zeros((400, 400, 3), np.uint8)

    residual.update({75: 1.1, 141: 1.0})  # a short kernel, accepted: no second estimate
    est = estimate_photo_kernel(y)
    assert calls == [75] and est.accepted and est.size == 75

    calls.clear(); residual.update({75: 2.0, 141: 1.2})  # refused: the long one is tried and taken
    est = estimate_photo_kernel(y)
    assert calls == [75, 141] and est.accepted and est.size == 141 and est.residual == 1.2

    calls.clear(); line[75] = line_kernel(73, 0); residual.update({75: 1.1, 141: 2.5})  # fills its window
    est = estimate_photo_kernel(y)
    assert calls == [75, 141] and not est.accepted and est.size == 141 and est.residual == 2.5  # neither is trusted

    calls.clear()
    est = estimate_photo_kernel(y, size=75)  # a size the user gave: one estimate, as asked
    assert calls == [75] and est.accepted
    calls.clear()
    est = estimate_photo_kernel(y[:200, :200])  # no room for a 141 px kernel: one estimate
    assert calls == [75]


def test_a_long_first_kernel_is_looked_for_again_at_half_the_scale(monkeypatch):
    """A first kernel longer than HALF_LOOK_EXTENT that fits its window is estimated again on
    the photo at half the scale; that kernel, enlarged twice, replaces it only where its guard
    residual is at most HALF_LOOK_RESIDUAL and it is at least as long, or where the guard
    accepts it and it deconvolves the window sharper."""
    found = {}  # window side -> (kernel length, residual)
    calls = []

    def fake_estimate(gray, cfg):
        calls.append(gray.shape[0])
        k = np.zeros((cfg.kernel_size, cfg.kernel_size))
        n = found[gray.shape[0]][0]
        t = (cfg.kernel_size - n) // 2
        k[cfg.kernel_size // 2, t:t + n] = 1.0 / n
        return k

    monkeypatch.setattr(photo, "estimate_kernel", fake_estimate)
    monkeypatch.setattr(photo, "residual_ratio", lambda gray, k: found[gray.shape[0]][1])
    monkeypatch.setattr(photo, "ESTIMATE_SIDE", 384)
    y = np.zeros((400, 400, 3), np.uint8)  # full scale: a 384 px window; at half the scale, 200 px

    found.update({384: (31, 1.1)})  # a short first kernel: one estimate
    assert estimate_photo_kernel(y).size == 75 and calls == [384]

    calls.clear(); found.update({384: (51, 1.1), 200: (41, 0.9)})  # long: looked for again, taken
    est = estimate_photo_kernel(y)
    assert calls == [384, 200] and est.accepted and est.size == 151 and est.residual == 0.9
    assert photo.kernel_extent(est.kernel) >= 80 and est.region == (0, 0, 400, 400)

    sharper = []  # what sharper_deconvolution answers (the half-scale kernel's deconvolution the sharper one?)

    def sharper_answer(gray, k_a, k_b):  # asked about the first window, half-scale kernel (enlarged) first
        assert gray.shape == (384, 384) and k_a.shape[0] > k_b.shape[0] == 75
        return sharper[0]

    monkeypatch.setattr(photo, "sharper_deconvolution", sharper_answer)
    sharper[:] = [False]
    calls.clear(); found.update({200: (41, 1.2)})  # the half-scale kernel explains less, deconvolves no sharper: kept
    est = estimate_photo_kernel(y)
    assert calls == [384, 200] and est.size == 75 and est.residual == 1.1
    sharper[:] = [True]  # ... but its deconvolution is sharper and the guard accepts it: taken
    est = estimate_photo_kernel(y)
    assert est.size == 151 and est.residual == 1.2 and photo.kernel_extent(est.kernel) >= 80
    found.update({200: (41, 1.6)})  # sharper, but the guard refuses it: kept
    assert estimate_photo_kernel(y).size == 75
    sharper[:] = [False]

    calls.clear(); found.update({200: (15, 0.9)})  # shorter than the first, deconvolves no sharper: kept
    assert estimate_photo_kernel(y).size == 75
    sharper[:] = [True]  # shorter but sharper (the sharper rule asks for no length): taken
    assert estimate_photo_kernel(y).size == 151
    sharper[:] = [False]
    calls.clear()
    assert estimate_photo_kernel(y, size=75).size == 75 and calls == [384]  # a size the user gave: as asked


def test_sparsity_prefers_the_sharp_image_and_the_kernel_that_removes_the_whole_blur():
    """gradient_sparsity: a blurred image scores higher than its sharp original, whatever the
    contrast; sharper_deconvolution: the true kernel's deconvolution beats a kernel that
    covers only part of the shake (both explain the photo about as well)."""
    x = blocks(160, 160)
    k = line_kernel(21, 30)
    y = cv2.filter2D(x, -1, k[::-1, ::-1], borderType=cv2.BORDER_REPLICATE)
    assert photo.gradient_sparsity(x) < photo.gradient_sparsity(y)
    assert photo.gradient_sparsity(0.3 * x) == pytest.approx(photo.gradient_sparsity(x))
    y = np.clip(y + np.random.default_rng(0).normal(0, 0.003, y.shape), 0, 1)
    part = line_kernel(9, 30)
    assert photo.sharper_deconvolution(y, k, part)


def test_a_noisy_window_is_denoised_for_the_estimator_and_a_quiet_one_is_left_as_it_is():
    k = line_kernel(9, 30)
    clean = cv2.filter2D(blocks(160, 160), -1, k[::-1, ::-1], borderType=cv2.BORDER_REPLICATE)
    rng = np.random.default_rng(1)
    quiet = np.clip(clean + rng.normal(0, 0.003, clean.shape), 0, 1)
    assert photo.denoised_for_estimation(quiet) is quiet  # under NOISY_SIGMA: untouched
    noisy = np.clip(clean + rng.normal(0, 0.03, clean.shape), 0, 1)
    assert photo.denoised_for_estimation(noisy, 0.0) is noisy  # strength 0: off
    seen = photo.denoised_for_estimation(noisy)
    assert seen.shape == noisy.shape and seen.dtype == np.float64 and 0 <= seen.min() and seen.max() <= 1

    def rms(a):
        return float(np.sqrt(np.mean((a - clean) ** 2)))

    assert rms(seen) < 0.6 * rms(noisy)


def test_the_estimator_reads_the_denoised_window_and_the_guard_the_window_as_it_is(monkeypatch):
    seen = {}  # the first window each one was given

    def fake_estimate(gray, cfg):
        seen.setdefault("estimator", gray)
        return line_kernel(9, 0)

    def fake_guard(gray, k):
        seen.setdefault("guard", gray)
        return 1.0

    monkeypatch.setattr(photo, "estimate_kernel", fake_estimate)
    monkeypatch.setattr(photo, "residual_ratio", fake_guard)
    y, _ = shaken(200, 200, line_kernel(9, 0), noise=0.03)
    estimate_photo_kernel(y)
    assert photo.noise_sigma(seen["estimator"]) < 0.6 * photo.noise_sigma(seen["guard"])
    seen.clear()
    estimate_photo_kernel(y, denoise=0.0)
    assert seen["estimator"] is seen["guard"]


def test_denoising_the_window_finds_the_kernel_of_a_noisy_photo_better():
    k = line_kernel(13, 30)
    y, _ = shaken(256, 256, k, noise=0.03, seed=3)
    cfg = BlindConfig(prune=0.2)  # a thin toy line: tests/test_deconv.py TOY_PRUNE
    with_denoising = kernel_similarity(estimate_photo_kernel(y, size=21, cfg=cfg).kernel, k)
    without = kernel_similarity(estimate_photo_kernel(y, size=21, cfg=cfg, denoise=0.0).kernel, k)
    assert with_denoising > without + 0.05, (with_denoising, without)


def test_tiled_deconvolution_matches_the_whole_photo_and_takes_integer_pixels(monkeypatch):
    k = line_kernel(7, 45)
    y, _ = shaken(150, 170, k)
    whole = deconvolve_photo(y, k, weight=0.004)
    assert whole.dtype == np.float32 and whole.shape == y.shape
    np.testing.assert_allclose(whole, tv_deconvolve(y / 255.0, k, 0.004), atol=1e-6)
    # up to DECONV_TILE a side the photo is solved whole, written straight into the networks' layout
    np.testing.assert_array_equal(deconvolve_photo(y, k, weight=0.004, channels_first=True), whole.transpose(2, 0, 1))
    monkeypatch.setattr(photo, "DECONV_TILE", 64)
    tiled = deconvolve_photo(y, k, weight=0.004)
    # Each tile has a margin of a kernel size: the insides agree closely.
    assert np.abs(tiled - whole)[10:-10, 10:-10].max() < 0.02
    assert np.abs(tiled - whole).mean() < 2e-3


def test_kernel_files_round_trip_and_bad_ones_are_refused(tmp_path):
    from deblurkit.io import encode_image, write_atomic

    k = line_kernel(11, 20)
    path = tmp_path / "k.png"
    write_atomic(path, encode_image(kernel_image(k), "PNG", bit_depth=16, grayscale=True))
    back = read_kernel(path)
    assert back.shape == (11, 11) and np.abs(back - k).max() < 1e-4
    Image.fromarray(np.zeros((5, 5), np.uint8)).save(tmp_path / "black.png")
    (tmp_path / "text.png").write_text("not a picture")
    Image.fromarray(np.ones((1200, 8), np.uint8)).save(tmp_path / "huge.png")
    for name, reason in [("missing.png", "no such file"), ("black.png", "empty"), ("text.png", "not an image"),
                         ("huge.png", "too large")]:
        with pytest.raises(ValueError, match=reason):
            read_kernel(tmp_path / name)
    even = np.ones((4, 6))
    Image.fromarray((even * 255).astype(np.uint8)).save(tmp_path / "even.png")
    assert read_kernel(tmp_path / "even.png").shape == (7, 7)


def test_kernel_choices():
    assert kernel_choice("auto").mode == "auto" and kernel_choice("none").mode == "none"
    c = kernel_choice(np.ones((2, 3)), size=9, region=(1, 2, 40, 50))
    assert c.mode == "given" and c.kernel.shape == (3, 3) and c.kernel.sum() == pytest.approx(1)
    assert c.size == 9 and c.region == (1, 2, 40, 50)
    for bad, match in [(np.zeros((3, 3)), "non-negative"), (-np.ones((3, 3)), "non-negative"), (3, "expected auto"),
                       ("nothing-here.png", "no such file")]:
        with pytest.raises(ValueError, match=match):
            kernel_choice(bad)
    with pytest.raises(ValueError, match="at least 3"):
        kernel_choice("auto", size=1)
    with pytest.raises(ValueError, match="mode"):
        KernelChoice("sometimes")


def _tensor(u8):
    return torch.from_numpy(u8).permute(2, 0, 1)[None]


def test_the_restorer_starts_from_the_deconvolution_on_the_kernel_path():
    model = random_tiny_model()
    r = Restorer(model, CPU, tile=64, overlap=16)
    k = line_kernel(7, 60)
    y, _ = shaken(72, 90, k)
    reports = []
    out = r.restore(_tensor(y), SamplingOptions(steps=0), kernel=KernelChoice("given", k), on_kernel=reports.append)
    assert reports[0].path == "kernel" and reports[0].kernel is k
    expected = torch.from_numpy(deconvolve_photo(y, k)).permute(2, 0, 1)[None]
    assert (out - expected).abs().max() < 1e-6  # 0 steps on the kernel path: the deconvolution itself
    noisy, _ = shaken(72, 90, k, noise=0.03)  # a given kernel keeps the plain TV weight on a noisy photo too
    out = r.restore(_tensor(noisy), SamplingOptions(steps=0), kernel=KernelChoice("given", k))
    assert (out - torch.from_numpy(deconvolve_photo(noisy, k)).permute(2, 0, 1)[None]).abs().max() < 1e-6
    assert np.abs(deconvolve_photo(noisy, k) - deconvolve_photo(noisy, k, estimated=True)).max() > 1e-2
    blind = r.restore(_tensor(y), SamplingOptions(steps=0))
    none = r.restore(_tensor(y), SamplingOptions(steps=0), kernel=KernelChoice("none"), on_kernel=reports.append)
    assert torch.equal(blind, none) and reports[1].path == "blind"
    assert (blind - out).abs().max() > 1e-2
    # Sampling starts from the deconvolution too; mirrored samples get it mirrored.
    opts = SamplingOptions(steps=2, noise_ceiling=0.5, samples=2, flips=2)
    s = r.restore(_tensor(y), opts, sample_generators(0, "a", 2, CPU), kernel=KernelChoice("given", k))
    assert s.shape == (2, 3, 72, 90) and 0 <= s.min() and s.max() <= 1
    again = r.restore(_tensor(y), opts, sample_generators(0, "a", 2, CPU), kernel=KernelChoice("given", k))
    assert torch.equal(s, again)


def test_the_guard_sends_a_photo_no_kernel_explains_to_the_blind_path(monkeypatch):
    import deblurkit.kernel_path as kp

    r = Restorer(random_tiny_model(), CPU, tile=64)
    y, _ = shaken(72, 90, line_kernel(7, 0))
    est = photo.KernelEstimate(line_kernel(7, 0), False, 9.0, 1.0, (0, 0, 90, 72))
    monkeypatch.setattr(photo, "estimate_photo_kernel", lambda *a, **k: est)
    reports = []
    out = r.restore(_tensor(y), SamplingOptions(steps=0), kernel=KernelChoice("auto"), on_kernel=reports.append)
    assert reports[0].path == "blind" and "no kernel explains" in reports[0].reason and reports[0].kernel is est.kernel
    assert torch.equal(out, r.restore(_tensor(y), SamplingOptions(steps=0)))
    tiny = np.zeros((20, 90, 3), np.uint8)
    assert kp.decide(_tensor(tiny), KernelChoice("auto")).path == "blind"


def test_a_near_dot_kernel_takes_the_blind_path(monkeypatch):
    """An accepted kernel no longer than NEAR_DOT_EXTENT (at the estimation scale) leaves the
    deconvolution nothing to undo: the blind path, before the predictor is asked."""
    import deblurkit.kernel_path as kp

    y, _ = shaken(72, 90, line_kernel(7, 0))
    asked = []
    assert kp.NEAR_DOT_EXTENT == 6  # the kernels below are odd: 5 px is near a dot, 7 px is not
    for n, path in ((5, "blind"), (7, "kernel")):
        est = photo.KernelEstimate(line_kernel(n, 0), True, 1.0, 1.0, (0, 0, 90, 72))
        monkeypatch.setattr(photo, "estimate_photo_kernel", lambda *a, **kw: est)
        report = kp.decide(_tensor(y), KernelChoice("auto"), predictor=lambda x: asked.append(n) or x.clone())
        assert report.path == path and (("near a dot" in report.reason) == (path == "blind"))
    assert asked == [7]
    # at a scale of 1/4 (a large photo), a 23 px full-resolution kernel spans under 6 px where it was estimated
    est = photo.KernelEstimate(line_kernel(23, 0), True, 1.0, 0.25, (0, 0, 90, 72))
    monkeypatch.setattr(photo, "estimate_photo_kernel", lambda *a, **kw: est)
    assert kp.decide(_tensor(y), KernelChoice("auto")).path == "blind"


def test_a_blur_the_predictor_recognises_takes_the_blind_path(monkeypatch):
    """An accepted kernel is still refused where the blind predictor changes the photo at
    least RECOGNISED_RATIO times as much as the deconvolution (scene motion it was trained on)."""
    import deblurkit.kernel_path as kp

    k = line_kernel(7, 0)
    y, _ = shaken(72, 90, k)
    est = photo.KernelEstimate(k, True, 1.0, 1.0, (0, 0, 90, 72))
    monkeypatch.setattr(photo, "estimate_photo_kernel", lambda *a, **kw: est)
    seen = []

    def unchanged(x):  # a predictor that leaves the photo as it is: it does not know this blur
        seen.append(tuple(x.shape))
        return x.clone()

    report = kp.decide(_tensor(y), KernelChoice("auto"), predictor=unchanged)
    assert report.path == "kernel" and seen == [(1, 3, 72, 90)]  # smaller than the check's square: all of it
    d = deconvolve_photo(y, k)
    change_d = float(np.sqrt(np.mean((d - y / 255.0)[7:-7, 7:-7] ** 2)))

    def moves_by(amount):  # a predictor that changes every pixel by `amount`
        return lambda x: (x + amount).clamp(0, 1)

    flat = np.full((72, 90, 3), 128, np.uint8)  # mid-grey: + amount is not clipped
    flat_d = deconvolve_photo(flat, k)
    assert np.abs(flat_d - 128 / 255).max() < 1e-3  # a flat photo's deconvolution is flat: only the predictor moves it
    assert kp.decide(_tensor(flat), KernelChoice("auto"), predictor=moves_by(0.1)).path == "blind"
    lots = kp.decide(_tensor(y), KernelChoice("auto"), predictor=moves_by(2 * change_d))
    assert lots.path == "blind" and "recognises" in lots.reason and lots.kernel is k
    little = kp.decide(_tensor(y), KernelChoice("auto"), predictor=moves_by(0.3 * change_d))
    assert little.path == "kernel"
    # A kernel the user gives is taken as it is.
    assert kp.decide(_tensor(y), KernelChoice("given", k), predictor=moves_by(0.5)).path == "kernel"


def test_a_predictor_whose_change_agrees_with_the_deconvolution_keeps_the_kernel_path(monkeypatch):
    """A predictor that changes the photo as much as the deconvolution does, or more, takes the
    blind path only where the two changes point different ways: one that goes part of the
    deconvolution's way (a short shake it half knows) leaves the photo to the kernel path,
    unless the photo is noisy."""
    import deblurkit.kernel_path as kp

    shipped = kp.AGREEING_CHANGE
    k = line_kernel(7, 0)
    y, _ = shaken(72, 90, k)
    est = photo.KernelEstimate(k, True, 1.0, 1.0, (0, 0, 90, 72))
    monkeypatch.setattr(photo, "estimate_photo_kernel", lambda *a, **kw: est)
    d = torch.from_numpy(deconvolve_photo(y, k)).permute(2, 0, 1)[None]
    y01 = _tensor(y).float() / 255

    def along(factor, shift=0):  # the deconvolution's change, scaled (and moved by `shift` px)
        return lambda t: (t + factor * (d - y01).roll(shift, -1)).clamp(0, 1)

    same_way = kp.predictor_check(_tensor(y), est, along(1.2))
    assert same_way.ratio >= kp.RECOGNISED_RATIO and same_way.agreement > 0.95
    # (such a predictor also deblurs along the kernel, the second check's sign: that check is
    # switched off here, this test is about the first)
    assert kp.decide(_tensor(y), KernelChoice("auto"), predictor=along(1.2)).path == "blind"
    monkeypatch.setattr(kp, "DEBLURRED_RATIO", float("-inf"))
    assert kp.decide(_tensor(y), KernelChoice("auto"), predictor=along(1.2)).path == "kernel"
    monkeypatch.setattr(kp, "AGREEING_CHANGE", 1.01)  # without the agreement: the first check's blind path
    assert kp.decide(_tensor(y), KernelChoice("auto"), predictor=along(1.2)).path == "blind"
    monkeypatch.setattr(kp, "AGREEING_CHANGE", shipped)
    # ... and not on a noisy photo (here every photo counts as noisy): the predictor is trusted
    import deblurkit.deconv.nonblind as nonblind
    monkeypatch.setattr(nonblind, "NOISY_SIGMA", 0.0)
    noisy = kp.decide(_tensor(y), KernelChoice("auto"), predictor=along(1.2))
    assert noisy.path == "blind" and "on a noisy photo" in noisy.reason
    # the same amount of change, moved off the edges it belongs to: it no longer agrees
    other_way = kp.predictor_check(_tensor(y), est, along(1.2, shift=5))
    assert other_way.ratio >= kp.RECOGNISED_RATIO and other_way.agreement < kp.AGREEING_CHANGE
    report = kp.decide(_tensor(y), KernelChoice("auto"), predictor=along(1.2, shift=5))
    assert report.path == "blind" and "in another direction: cosine" in report.reason


def test_a_predictor_that_deblurs_along_the_kernel_takes_the_blind_path(monkeypatch):
    """The second sign: the predictor's output, blurred by the kernel, gives the photo back
    better than the photo blurred again (it deblurred it along this kernel), although it
    changes the photo less than the deconvolution does."""
    import deblurkit.kernel_path as kp

    k = line_kernel(7, 0)
    y, x = shaken(72, 90, k)
    est = photo.KernelEstimate(k, True, 1.0, 1.0, (0, 0, 90, 72))
    monkeypatch.setattr(photo, "estimate_photo_kernel", lambda *a, **kw: est)
    sharp = _tensor(np.round(x * 255).astype(np.uint8)).float() / 255

    def halfway(t):  # half of the way to the sharp photo
        return (t + sharp) / 2

    check = kp.predictor_check(_tensor(y), est, halfway)
    assert check.ratio < kp.RECOGNISED_RATIO and check.deblurred < 0.6
    report = kp.decide(_tensor(y), KernelChoice("auto"), predictor=halfway)
    assert report.path == "blind" and "fits the photo" in report.reason
    # One that leaves the photo as it is scores 1: the kernel path.
    assert kp.predictor_check(_tensor(y), est, lambda t: t.clone()).deblurred == pytest.approx(1.0)


def test_the_recognised_blur_check_looks_where_the_kernel_was_estimated_at_its_scale(monkeypatch):
    import deblurkit.kernel_path as kp

    monkeypatch.setattr(kp, "CHECK_SIDE", 40)
    k = line_kernel(5, 0)
    y, _ = shaken(120, 400, k)
    y[:, :200] = 128  # a flat left half: nothing for either to change there
    seen = []

    def unchanged(x):
        seen.append(x.clone())
        return x.clone()

    right = photo.KernelEstimate(k, True, 1.0, 1.0, (250, 20, 100, 80))
    kp.predictor_check(_tensor(y), right, unchanged)
    crop = seen[-1][0].permute(1, 2, 0).numpy()
    assert crop.shape == (50, 50, 3)  # CHECK_SIDE + twice the kernel, around the region's centre
    np.testing.assert_allclose(crop, y[35:85, 275:325] / 255.0, atol=1e-6)
    # Shrunk for the estimate (scale 0.5, a 9 px kernel at full resolution): the crop is taken
    # around the region at twice the size and shrunk, the kernel with it.
    half = photo.KernelEstimate(line_kernel(9, 0), True, 1.0, 0.5, (200, 0, 200, 120))
    kp.predictor_check(_tensor(y), half, unchanged)
    assert tuple(seen[-1].shape[-2:]) == (50, 50)


def test_the_predictor_pass_of_the_check_is_the_restorers_fast_output():
    r = Restorer(random_tiny_model(), CPU, tile=64, overlap=16)
    y, _ = shaken(40, 48, line_kernel(5, 0))
    x = _tensor(y)
    whole = r._predict_whole(x.float() / 255.0)
    assert whole.shape == (1, 3, 40, 48) and whole.device.type == "cpu"
    assert (whole - r.restore(x, SamplingOptions(steps=0))).abs().max() < 1e-5


def test_a_model_without_a_predictor_keeps_the_blind_path():
    r = Restorer(random_tiny_model("icdpm"), CPU, tile=64)
    y, _ = shaken(48, 48, line_kernel(5, 0))
    reports = []
    r.restore(_tensor(y), SamplingOptions(steps=2, noise_ceiling=0.5), sample_generators(0, "a", 1, CPU),
              kernel=KernelChoice("given", line_kernel(5, 0)), on_kernel=reports.append)
    assert reports[0].path == "blind" and "no predictor" in reports[0].reason


@pytest.fixture
def random_predictor_trusts_kernels(monkeypatch):
    """The tiny models' predictors are random: they change every photo a lot, which the
    recognised-blur check reads as a blur they know. These tests are about the kernel path."""
    import deblurkit.kernel_path as kp

    monkeypatch.setattr(kp, "RECOGNISED_RATIO", float("inf"))
    monkeypatch.setattr(kp, "DEBLURRED_RATIO", float("-inf"))


def test_api_reports_the_path_and_estimates_kernels(tiny_weights, random_predictor_trusts_kernels):
    from deblurkit import Deblurrer
    from deblurkit.errors import UsageError

    d = Deblurrer(weights=tiny_weights, device="cpu", precision="fp32")
    k = line_kernel(9, 30)
    y, _ = shaken(120, 140, k)
    res = d.restore(y, preset="fast", kernel=k, return_std=False, return_samples=True)
    assert res.kernel.path == "kernel" and res.image.dtype == np.uint8 and res.image.shape == y.shape
    assert d.restore(y, preset="fast", kernel="none", return_samples=True).kernel.path == "blind"
    assert d.restore(y, preset="fast", return_samples=True).kernel.path == "blind"  # the default
    assert d.restore(y, preset="fast", kernel_size=15, return_samples=True).kernel.path == "kernel"  # implies auto
    est = d.estimate_kernel(y, size=15)
    assert kernel_similarity(est.kernel, k) > 0.7
    with pytest.raises(UsageError, match="region"):
        d.estimate_kernel(y, region=(100, 100, 64, 64))
    with pytest.raises(UsageError, match="no such file"):
        d.restore(y, kernel="missing_kernel.png")


@pytest.fixture
def cli(tiny_weights, tmp_path, monkeypatch, random_predictor_trusts_kernels):
    from deblurkit.cli.app import app

    monkeypatch.chdir(tmp_path)

    def invoke(*args):
        return CliRunner().invoke(app, [*map(str, args), "--weights", str(tiny_weights), "--quiet"], catch_exceptions=False)

    return invoke


def test_cli_saves_the_kernel_and_reads_it_back(cli, tmp_path):
    k = line_kernel(9, 30)
    y, _ = shaken(120, 140, k)
    Image.fromarray(y).save(tmp_path / "shake.png")
    r = cli("shake.png", "--preset", "fast", "--kernel-size", "15", "--save-kernel", "--json")  # imply --kernel auto
    assert r.exit_code == 0, r.output
    info = json.loads(r.stdout)
    assert info["kernel"] == "auto" and info["images"][0]["path"] == "kernel" and info["images"][0]["path_reason"]
    saved = tmp_path / "shake_deblurred_kernel.png"
    assert Image.open(saved).mode.startswith("I") and kernel_similarity(read_kernel(saved), k) > 0.7
    # A known kernel (the one just saved): no estimate, the same kernel path.
    r = cli("shake.png", "--preset", "fast", "--kernel", saved, "-o", "given.png", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["images"][0]["path"] == "kernel"
    r = cli("shake.png", "--preset", "fast", "-o", "blind.png", "--json")  # the default: no kernel step
    assert json.loads(r.stdout)["kernel"] == "none" and json.loads(r.stdout)["images"][0].get("path") is None
    assert not np.array_equal(np.asarray(Image.open(tmp_path / "blind.png")), np.asarray(Image.open(tmp_path / "given.png")))


@pytest.mark.parametrize("args, message", [
    (["--kernel", "nope.png"], "--kernel nope.png"),
    (["--kernel", "none", "--save-kernel"], "--kernel none"),
    (["--kernel-region", "1,2,3"], "--kernel-region 1,2,3"),
    (["--kernel-region", "0,0,64,64", "--preview"], "--kernel-region with --region"),
    (["--kernel-size", "2"], "at least 3"),
])
def test_cli_refuses_bad_kernel_flags_in_one_line(cli, tmp_path, args, message):
    Image.fromarray(np.round(smooth_image(64, 64) * 255).astype(np.uint8)).save(tmp_path / "a.png")
    r = cli("a.png", *args)
    assert r.exit_code != 0 and message in r.output and "Traceback" not in r.output


def test_cli_a_kernel_region_outside_the_photo_fails_that_photo(cli, tmp_path):
    Image.fromarray(np.round(smooth_image(64, 64) * 255).astype(np.uint8)).save(tmp_path / "a.png")
    (tmp_path / "bad.png").write_text("x")
    r = cli("a.png", "--preset", "fast", "--kernel-region", "40,40,64,64", "--json")  # implies --kernel auto
    assert r.exit_code != 0
    img = json.loads(r.stdout)["images"][0]
    assert img["status"] == "failed" and "a.png: --kernel-region" in img["error"] and "outside" in img["error"]
    r = cli("a.png", "--kernel", "bad.png")
    assert r.exit_code != 0 and "bad.png: not an image" in r.output


def test_cli_video_frames_take_the_kernel_step(cli, tmp_path):
    pytest.importorskip("av")
    from conftest import make_clip

    make_clip(tmp_path / "clip.mp4", frames=3, h=64, w=80, audio=False)
    r = cli("clip.mp4", "--preset", "fast", "--kernel", "auto", "-o", "out.mp4")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "out.mp4").stat().st_size > 0
    r = cli("clip.mp4", "--save-kernel")
    assert r.exit_code != 0 and "--save-kernel: not available for videos" in r.output


def test_a_video_manifest_tells_kernel_choices_apart():
    a = KernelChoice("given", line_kernel(7, 0)).fingerprint()
    b = KernelChoice("given", line_kernel(7, 90)).fingerprint()
    assert a != b and a["mode"] == "given" and a["kernel_sha256"]
    # frames a given kernel made before the highlight solver existed are not reused
    assert a["given_step"] == "tv+highlights+centre512" and "given_step" not in KernelChoice("auto").fingerprint()
    assert KernelChoice("auto").fingerprint()["auto_step"] == "streaks+estimate512+agreement-low-noise"  # frames made before the streak step, the agreement or the 512 px window are re-made
    assert KernelChoice("auto", size=31).fingerprint() != KernelChoice("auto").fingerprint()
    assert KernelChoice("auto", region=(0, 0, 64, 64)).fingerprint()["region"] == [0, 0, 64, 64]


def test_a_refiner_starts_the_kernel_path_from_the_deconvolution_plus_its_correction():
    k = line_kernel(7, 60)
    y, _ = shaken(72, 96, k)  # sides a multiple of the refiner's 8: one tile, no padding
    d = torch.from_numpy(deconvolve_photo(y, k)).permute(2, 0, 1)[None]
    plain = random_tiny_model()
    refined = random_tiny_model(refined=True, seed=1)
    refined.load_state_dict({**refined.state_dict(), **plain.state_dict()})  # plain's networks and a refiner
    whole = Restorer(refined, CPU, tile=128)
    out = whole.restore(_tensor(y), SamplingOptions(steps=0), kernel=KernelChoice("given", k))
    with torch.no_grad():
        signed = _tensor(y).float() / 255 * 2 - 1
        expected = ((refined.refine(signed, d * 2 - 1) + 1) / 2).clamp(0, 1)
    assert (out - expected).abs().max() < 1e-5
    assert (out - d).abs().max() > 1e-2  # the correction did something
    # Tiles agree with the whole photo where the overlaps blend them (a network's tiles are
    # not bitwise the whole; the blend keeps them close).
    tiled = Restorer(refined, CPU, tile=48, overlap=16).restore(_tensor(y), SamplingOptions(steps=0),
                                                                 kernel=KernelChoice("given", k))
    assert (tiled - out).abs().mean() < 0.01
    # A fresh refiner is zero at its tail: the deconvolution itself, as a model without one gives.
    from deblurkit.models import build_model
    from deblurkit.models.config import tiny_config

    fresh = build_model(tiny_config(refined=True)).eval()
    fresh.load_state_dict({**fresh.state_dict(), **plain.state_dict()})
    same = Restorer(fresh, CPU, tile=128).restore(_tensor(y), SamplingOptions(steps=0), kernel=KernelChoice("given", k))
    assert (same - d).abs().max() < 1e-6
    # The blind path never sees the refiner.
    a = Restorer(refined, CPU, tile=128).restore(_tensor(y), SamplingOptions(steps=0))
    b = Restorer(plain, CPU, tile=128).restore(_tensor(y), SamplingOptions(steps=0))
    assert torch.equal(a, b)
    # Sampling on the kernel path starts from the refined estimate: its samples differ from
    # the plain model's, and repeat with the same generators.
    opts = SamplingOptions(steps=2, noise_ceiling=0.5)
    s1 = whole.restore(_tensor(y), opts, sample_generators(0, "a", 1, CPU), kernel=KernelChoice("given", k))
    s2 = whole.restore(_tensor(y), opts, sample_generators(0, "a", 1, CPU), kernel=KernelChoice("given", k))
    s0 = Restorer(plain, CPU, tile=128).restore(_tensor(y), opts, sample_generators(0, "a", 1, CPU), kernel=KernelChoice("given", k))
    assert torch.equal(s1, s2) and (s1 - s0).abs().max() > 1e-3


def test_a_refiner_told_the_kernel_gets_the_photos_kernel_and_its_mirror_images():
    k = line_kernel(7, 60)
    y, _ = shaken(72, 96, k)
    d = torch.from_numpy(deconvolve_photo(y, k)).permute(2, 0, 1)[None]
    told = random_tiny_model(refined="kernel", seed=2)
    given = torch.from_numpy(np.ascontiguousarray(KernelChoice("given", k).kernel, np.float32))
    out = Restorer(told, CPU, tile=128).restore(_tensor(y), SamplingOptions(steps=0), kernel=KernelChoice("given", k))
    with torch.no_grad():
        signed = _tensor(y).float() / 255 * 2 - 1
        expected = ((told.refine(signed, d * 2 - 1, given) + 1) / 2).clamp(0, 1)
        other = ((told.refine(signed, d * 2 - 1, given.T.contiguous()) + 1) / 2).clamp(0, 1)
        with pytest.raises(ValueError, match="pass `kernel`"):
            told.refine(signed, d * 2 - 1)
    assert (out - expected).abs().max() < 1e-5
    assert (other - expected).abs().max() > 1e-4  # another kernel, another correction
    # A mirrored pass (the distortion preset's flips) mirrors the kernel with the photo: sample
    # 1 of a two-flip run is the mirror of the mirrored photo restored with the mirrored kernel.
    opts = SamplingOptions(steps=1, noise_ceiling=0.5)
    both = Restorer(told, CPU, tile=128).restore(_tensor(y), replace(opts, samples=2, flips=2),
                                                 sample_generators(0, "a", 2, CPU), kernel=KernelChoice("given", k))
    alone = Restorer(told, CPU, tile=128).restore(torch.flip(_tensor(y), (-1,)), opts, sample_generators(0, "a", 2, CPU)[1:],
                                                  kernel=KernelChoice("given", k[:, ::-1].copy()))
    assert (both[1:] - torch.flip(alone, (-1,))).abs().max() < 2e-3
    # ... and not with the kernel as it was (the mirror matters by more than the tolerance)
    unmirrored = Restorer(told, CPU, tile=128).restore(torch.flip(_tensor(y), (-1,)), opts, sample_generators(0, "a", 2, CPU)[1:],
                                                       kernel=KernelChoice("given", k))
    assert (both[1:] - torch.flip(unmirrored, (-1,))).abs().max() > 1e-2
