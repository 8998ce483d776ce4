"""GMSD: sanity properties, and agreement with the reference implementation."""

from pathlib import Path

import numpy as np
import pytest
import torch

from deblurkit.data import apply_blur, gaussian_kernel
from deblurkit.io import read_image
from deblurkit.metrics.gmsd import gmsd

EXAMPLE = Path(__file__).resolve().parents[1] / "examples"

# Measured with piq 0.8.0's gmsd(blur, sharp, data_range=1.0) on these GoPro pairs of
# ../shared/data (frames read as 8-bit RGB / 255).
PIQ_REFERENCE = {"000101": 0.17851290106773376, "000110": 0.10931163281202316, "000116": 0.1880362629890442}


def _t(a):
    return torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None]


def test_identity_is_zero_and_blur_raises_it_monotonically():
    sharp = read_image(EXAMPLE / "gopro_000110_sharp.png").rgb[200:456, 400:656]
    assert gmsd(_t(sharp), _t(sharp)) == 0.0
    scores = [gmsd(_t(apply_blur(sharp, np.random.default_rng(0), kernel=gaussian_kernel(s), noise=False).blurry), _t(sharp))
              for s in (0.7, 1.5, 3.0)]
    assert 0 < scores[0] < scores[1] < scores[2]


def test_odd_sizes_work():
    a = torch.rand(1, 3, 31, 45, generator=torch.Generator().manual_seed(0))
    assert gmsd(a, a) == 0.0 and gmsd(a, a.flip(-1)) > 0


@pytest.mark.parametrize("frame,expected", sorted(PIQ_REFERENCE.items()))
def test_agrees_with_piq(shared_data, frame, expected):
    seq = shared_data / "gopro" / "GOPR0372_07_00"
    got = gmsd(_t(read_image(seq / "blur" / f"{frame}.png").rgb), _t(read_image(seq / "sharp" / f"{frame}.png").rgb))
    assert abs(got - expected) < 1e-5
