"""Geometric self-ensemble: samples cycle through mirror images of the input."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from deblurkit.cli.app import app
from deblurkit.presets import PRESETS, check_settings, resolve_settings
from deblurkit.errors import UsageError
from deblurkit.restorer import FLIP_DIMS, Restorer, SamplingOptions, sample_generators

from conftest import random_tiny_model, smooth_image

CPU = torch.device("cpu")


def _x(h=36, w=52):
    return torch.from_numpy(smooth_image(h, w, 0)).permute(2, 0, 1)[None]


def test_each_sample_is_the_restoration_of_its_mirror_image_mirrored_back():
    model = random_tiny_model()
    r = Restorer(model, CPU, tile=32, overlap=8)
    x = _x()
    gens = sample_generators(4, "k", 8, CPU)
    out = r.restore(x, SamplingOptions(steps=3, noise_ceiling=0.5, samples=8, flips=4), gens)
    assert out.shape == (8, 3, 36, 52)
    for i in range(8):
        dims = FLIP_DIMS[i % 4]
        alone = r.restore(torch.flip(x, dims) if dims else x, SamplingOptions(steps=3, noise_ceiling=0.5),
                          [sample_generators(4, "k", 8, CPU)[i]])
        expected = torch.flip(alone, dims) if dims else alone
        assert (out[i] - expected[0]).abs().max() < 1e-4  # (batched float rounding only)
    # Mirroring matters: a mirrored sample differs from the unmirrored one with the same noise.
    plain = r.restore(x, SamplingOptions(steps=3, noise_ceiling=0.5, samples=8), sample_generators(4, "k", 8, CPU))
    assert torch.allclose(plain[0], out[0], atol=1e-4) and (plain[1] - out[1]).abs().max() > 1e-3


def test_one_sample_is_unaffected_by_flips():
    r = Restorer(random_tiny_model(), CPU, tile=32, overlap=8)
    a = r.restore(_x(), SamplingOptions(steps=2, noise_ceiling=0.5, flips=4), sample_generators(0, "k", 1, CPU))
    b = r.restore(_x(), SamplingOptions(steps=2, noise_ceiling=0.5), sample_generators(0, "k", 1, CPU))
    assert torch.equal(a, b)


def test_progress_counts_every_mirror_run():
    r = Restorer(random_tiny_model(), CPU, tile=32, overlap=8)
    seen = []
    r.restore(_x(), SamplingOptions(steps=2, noise_ceiling=0.5, samples=4, flips=2), sample_generators(0, "k", 4, CPU),
              on_step=lambda i, t: seen.append((i, t)))
    assert seen == [(1, 4), (2, 4), (3, 4), (4, 4)]


def test_flips_out_of_range_are_refused():
    r = Restorer(random_tiny_model(), CPU, tile=32)
    with pytest.raises(ValueError):
        r.restore(_x(), SamplingOptions(steps=1, noise_ceiling=0.5, samples=2, flips=5))
    with pytest.raises(UsageError, match="--flips 3"):
        check_settings(resolve_settings("distortion", flips=3))


def test_the_distortion_preset_averages_over_four_mirror_images_and_flags_override_it():
    s = resolve_settings("distortion")
    assert s.flips == PRESETS["distortion"].flips == 4 and s.average and s.samples == 8
    assert resolve_settings("balanced").flips == 1
    o = resolve_settings("distortion", flips=1)
    assert o.flips == 1 and "--flips" in o.overridden_by


def test_cli_reports_and_applies_flips(tiny_weights, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Image.fromarray(np.round(smooth_image(40, 56, 1) * 255).astype(np.uint8)).save(tmp_path / "a.png")
    runner = CliRunner()
    base = ["a.png", "--weights", str(tiny_weights), "--quiet", "--steps", "2", "--samples", "4", "--average", "--seed", "1"]
    r = runner.invoke(app, [*base, "--flips", "2", "--json", "-o", "f2.png"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert json.loads(r.output)["flips"] == 2
    r = runner.invoke(app, [*base, "-o", "f1.png"], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    assert not np.array_equal(np.asarray(Image.open("f1.png")), np.asarray(Image.open("f2.png")))
    r = runner.invoke(app, [*base, "--flips", "3"], catch_exceptions=False)
    assert r.exit_code == 2 and "--flips 3" in r.output
