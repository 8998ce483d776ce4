"""Scoring after alignment (metrics.align) and the kernel similarity (deconv.similarity)."""

import numpy as np
import pytest
import torch

from deblurkit.deconv import kernel_similarity
from deblurkit.metrics import psnr
from deblurkit.metrics.align import aligned, best_shift

from conftest import smooth_image


def _img(h=64, w=72, seed=0):
    rng = np.random.default_rng(seed)
    x = smooth_image(h, w, seed) * 0.5 + 0.5 * rng.random((h, w, 3))  # texture, so every shift differs
    return torch.from_numpy(x).permute(2, 0, 1)[None].float()


@pytest.mark.parametrize("dy, dx", [(0, 0), (3, -2), (-5, 5), (4, 0)])
def test_best_shift_finds_the_shift_that_moved_the_photo(dy, dx):
    x = _img()
    moved = torch.roll(x, shifts=(dy, dx), dims=(-2, -1))  # pred[i + dy] == x[i]
    assert best_shift(moved, x, 6) == (dy, dx)
    out, ref, shift = aligned(moved, x, 6)
    assert shift == (dy, dx) and out.shape == ref.shape == (1, 3, 64 - 12, 72 - 12)
    assert torch.equal(out, ref)


def test_alignment_scores_a_shifted_copy_as_perfect_but_not_a_different_image():
    x = _img()
    moved = torch.roll(x, shifts=(2, 1), dims=(-2, -1))
    assert psnr(moved, x) < 30
    out, ref, _ = aligned(moved, x, 4)
    assert psnr(out, ref) > 60
    other = _img(seed=5)
    out, ref, _ = aligned(other, x, 4)
    assert psnr(out, ref) < 30


def test_a_shift_beyond_the_window_is_not_found():
    x = _img()
    moved = torch.roll(x, shifts=(8, 0), dims=(-2, -1))
    assert best_shift(moved, x, 3) != (8, 0)


def test_no_inside_to_score_is_an_error():
    with pytest.raises(ValueError, match="no inside"):
        best_shift(_img(20, 20), _img(20, 20), 10)


def _streak(n, length):
    k = np.zeros((n, n))
    k[n // 2, n // 2 - length // 2 : n // 2 - length // 2 + length] = 1.0
    return k / k.sum()


def test_kernel_similarity_is_one_for_the_same_kernel_anywhere_in_any_window():
    k = _streak(15, 7)
    assert kernel_similarity(k, k) == pytest.approx(1.0)
    moved = np.zeros((31, 25))
    moved[3:18, 9:24] = k  # off-centre in a larger window
    assert kernel_similarity(moved, k) == pytest.approx(1.0)
    assert kernel_similarity(k, moved) == pytest.approx(1.0)


def test_kernel_similarity_of_a_dot_against_a_streak_and_of_crossed_streaks():
    dot = np.zeros((5, 5))
    dot[2, 2] = 1
    assert kernel_similarity(dot, _streak(15, 9)) == pytest.approx(1 / 3, abs=1e-6)  # 1/sqrt(9)
    assert kernel_similarity(_streak(15, 9), _streak(15, 9).T) == pytest.approx(1 / 9, abs=1e-6)
    assert kernel_similarity(np.zeros((5, 5)), dot) == 0.0
