"""The kernel read from a photo's light streaks (deconv.streaks) and where the kernel path uses it."""

import numpy as np
import pytest
import torch

from deblurkit.data.blur import convolve
from deblurkit.deconv import kernel_similarity
from deblurkit.deconv.photo import estimate_photo_kernel
from deblurkit.deconv.streaks import GAMMA, streak_kernel


def _hook_kernel():
    """An 11 px shake that is not symmetric (a stroke and a hook), sum 1."""
    k = np.zeros((11, 11))
    k[5, 1:9] = 1.0
    k[2:6, 8] = 0.6
    return k / k.sum()


def _night(lights=9, size=192, seed=0, kernel=None):
    """A dark textured scene with `lights` point lights 2-6x white on a grid, blurred in light
    by the kernel, back to values, a little noise: (photo in [0, 1], kernel)."""
    rng = np.random.default_rng(seed)
    k = _hook_kernel() if kernel is None else kernel
    light = np.kron(rng.uniform(0.005, 0.04, (size // 16, size // 16, 3)), np.ones((16, 16, 1)))
    spots = [(y, x) for y in range(32, size - 31, 48) for x in range(32, size - 31, 48)][:lights]
    for y, x in spots:
        light[y, x] = rng.uniform(2.0, 6.0) * np.array([1.0, 0.9, 0.7])
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
