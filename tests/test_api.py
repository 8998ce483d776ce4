"""The Python API: identical to the CLI for the same seed, and every input kind comes back
as the same kind (dtype, shape, range, mode, alpha)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

import deblurkit
from deblurkit import Deblurrer, Restoration
from deblurkit.cli.app import app
from deblurkit.errors import UsageError
from deblurkit.io import read_image

from conftest import save_photo, smooth_image


@pytest.fixture
def deblurrer(tiny_weights):
    return Deblurrer(weights=tiny_weights, device="cpu", tile=64)


@pytest.mark.parametrize("flags", [["--preset", "fast"], ["--steps", "3", "--samples", "2", "--average"],
                                   ["--preset", "perception"]])
def test_api_and_cli_give_identical_pixels(tiny_weights, tmp_path, flags):
    photo = save_photo(tmp_path / "photo.png", 40, 56, seed=3)
    r = CliRunner().invoke(app, [str(photo), "--weights", str(tiny_weights), "--seed", "5", "--tile", "64", "--quiet", *flags])
    assert r.exit_code == 0, r.output
    cli = np.asarray(Image.open(tmp_path / "photo_deblurred.png"))

    d = Deblurrer(weights=tiny_weights, device="cpu", tile=64)
    kwargs = {"preset": flags[1]} if flags[0] == "--preset" else {"steps": 3, "samples": 2, "average": True}
    api = d.restore(np.asarray(Image.open(photo)), seed=5, key="photo.png", **kwargs)
    assert api.dtype == np.uint8 and api.shape == cli.shape
    np.testing.assert_array_equal(api, cli)


def test_seed_and_key_decide_the_noise(deblurrer):
    x = smooth_image(32, 40, 1)
    a = deblurrer.restore(x, steps=3, seed=1, key="a.png")
    assert np.array_equal(a, deblurrer.restore(x, steps=3, seed=1, key="a.png"))
    assert not np.array_equal(a, deblurrer.restore(x, steps=3, seed=2, key="a.png"))
    assert not np.array_equal(a, deblurrer.restore(x, steps=3, seed=1, key="b.png"))


def _rgba(dtype, h=24, w=40):
    rgb = smooth_image(h, w, 2)
    alpha = np.linspace(0, 1, h * w).reshape(h, w)
    a = np.concatenate([rgb, alpha[:, :, None]], axis=2)
    if dtype == np.uint8:
        return np.round(a * 255).astype(np.uint8)
    if dtype == np.uint16:
        return np.round(a * 65535).astype(np.uint16)
    return a.astype(dtype)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
@pytest.mark.parametrize("channels", [None, 1, 3, 4])
def test_numpy_round_trips_dtype_shape_and_range(deblurrer, dtype, channels):
    full = _rgba(dtype)
    image = {None: full[:, :, 0], 1: full[:, :, :1], 3: full[:, :, :3], 4: full}[channels]
    out = deblurrer.restore(image, preset="fast")
    assert out.dtype == image.dtype and out.shape == image.shape
    if np.issubdtype(out.dtype, np.floating):
        assert 0.0 <= out.min() and out.max() <= 1.0
    if channels == 4:
        np.testing.assert_array_equal(out[:, :, 3], image[:, :, 3])  # alpha untouched
    # The same restoration as float RGB in, at the input's precision (grey: channel mean).
    scale = {np.uint8: 255.0, np.uint16: 65535.0}.get(dtype, 1.0)
    colour_in = (image if image.ndim == 3 else image[:, :, None])[:, :, :3].astype(np.float64) / scale
    ref = deblurrer.restore(np.repeat(colour_in, 3 // colour_in.shape[2], axis=2).astype(np.float32), preset="fast")
    colour = (out if out.ndim == 3 else out[:, :, None])[:, :, :3] / scale
    expected = ref if colour.shape[2] == 3 else ref.mean(axis=2, keepdims=True)
    assert np.abs(colour - expected).max() <= 0.5 / scale + 1e-5


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "LA", "I;16", "P"])
def test_pil_round_trips_mode_and_size(deblurrer, mode):
    base = Image.fromarray(_rgba(np.uint8), "RGBA")
    if mode == "I;16":
        image = Image.fromarray(_rgba(np.uint16)[:, :, 0].astype("<u2"))
    else:
        image = base.convert(mode)
    out = deblurrer.restore(image, preset="fast")
    assert isinstance(out, Image.Image) and out.size == image.size
    assert out.mode == ("RGB" if mode == "P" else mode)
    if mode in ("RGBA", "LA"):
        assert np.array_equal(np.asarray(out)[..., -1], np.asarray(image)[..., -1])


def test_pil_float_premultiplied_and_refused_modes(deblurrer):
    grey = _rgba(np.uint8)[:, :, 0].astype(np.float32) / 255
    out = deblurrer.restore(Image.fromarray(grey, mode="F"), preset="fast")
    ref = deblurrer.restore(np.repeat(grey[:, :, None], 3, axis=2), preset="fast").mean(axis=2)
    assert out.mode == "F" and np.abs(np.asarray(out) - ref).max() < 1e-5  # not an all-black image
    with pytest.raises(UsageError, match="mode F.*accepted"):
        deblurrer.restore(Image.fromarray(grey * 255, mode="F"), preset="fast")
    rgba = Image.fromarray(_rgba(np.uint8), "RGBA")
    for mode in ("RGBa", "La"):
        image = rgba.convert(mode) if mode == "RGBa" else rgba.convert("LA").convert("La")
        out = deblurrer.restore(image, preset="fast")
        assert out.mode == mode and out.size == image.size
        back = np.asarray(out.convert("RGBA" if mode == "RGBa" else "LA"))[..., -1]
        assert np.array_equal(back, np.asarray(image.convert("RGBA" if mode == "RGBa" else "LA"))[..., -1])  # alpha kept
    with pytest.raises(UsageError, match="meta device"):
        deblurrer.restore(torch.empty(3, 8, 8, device="meta"), preset="fast")


@pytest.mark.parametrize("shape", [(3, 24, 40), (1, 3, 24, 40), (1, 24, 40), (4, 24, 40)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.uint8, torch.bfloat16])
def test_torch_round_trips_dtype_shape_and_device(deblurrer, shape, dtype):
    x = torch.rand(shape, generator=torch.Generator().manual_seed(0))
    x = (x * 255).round().to(torch.uint8) if dtype == torch.uint8 else x.to(dtype)
    out = deblurrer.restore(x, preset="fast")
    assert isinstance(out, torch.Tensor)
    assert out.dtype == dtype and tuple(out.shape) == shape and out.device == x.device
    if dtype != torch.uint8:
        assert out.min() >= 0 and out.max() <= 1
    if shape[-3] == 4:
        assert torch.equal(out[..., 3, :, :], x[..., 3, :, :])


def test_samples_and_std_on_request(deblurrer):
    x = smooth_image(32, 40, 4)
    r = deblurrer.restore(x, steps=2, samples=3, seed=0, return_samples=True, return_std=True)
    assert isinstance(r, Restoration) and len(r.samples) == 3
    assert r.std.shape == (32, 40) and r.std.dtype == np.float32 and r.std.max() > 0
    stacked = np.stack(r.samples)
    np.testing.assert_allclose(r.std, stacked.std(axis=0).mean(axis=2), atol=1e-5)
    np.testing.assert_array_equal(r.image, r.samples[0])  # not averaged: the first sample
    averaged = deblurrer.restore(x, steps=2, samples=3, average=True, seed=0)
    np.testing.assert_allclose(averaged, stacked.mean(axis=0), atol=1e-5)


def test_bad_arguments_are_value_errors(deblurrer):
    x = smooth_image(16, 16)
    with pytest.raises(ValueError, match=r"expected \[0, 1\]"):
        deblurrer.restore(x * 255)
    with pytest.raises(ValueError, match="average=True"):
        deblurrer.restore(x, steps=2, samples=2)
    with pytest.raises(ValueError, match="unknown preset"):
        deblurrer.restore(x, preset="sharpest")
    with pytest.raises(UsageError, match="dtype"):
        deblurrer.restore(np.zeros((8, 8, 3), np.int32))
    with pytest.raises(UsageError, match="numpy array, a PIL image or a torch tensor"):
        deblurrer.restore([[0.5]])
    with pytest.raises(UsageError, match="batch of 1"):
        deblurrer.restore(torch.rand(2, 3, 8, 8))


def test_the_model_is_loaded_once(tiny_weights, monkeypatch):
    import deblurkit.api as api

    calls = []
    real = api.load_checkpoint
    monkeypatch.setattr(api, "load_checkpoint", lambda path: calls.append(path) or real(path))
    d = Deblurrer(weights=tiny_weights, device="cpu")
    for seed in range(3):
        d.restore(smooth_image(16, 24, seed), preset="fast")
    assert len(calls) == 1


def test_importing_the_package_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, deblurkit; print('torch' in sys.modules, deblurkit.__version__)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["False", deblurkit.__version__]


def test_read_image_and_api_agree_on_a_file(deblurrer, tmp_path):
    """A photo read by the CLI's reader and handed over as float32 restores like the uint8 array."""
    photo = save_photo(tmp_path / "p.png", 24, 32, seed=6)
    a = deblurrer.restore(read_image(photo).rgb, preset="fast")
    b = deblurrer.restore(np.asarray(Image.open(photo)), preset="fast")
    assert np.abs(np.round(a * 255) - b).max() <= 1
