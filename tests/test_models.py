import pytest
import torch

from deblurkit.models import ModelConfig, UNetConfig, build_model, icdpm_config, tiny_config
from deblurkit.models.unet import UNet, sinusoidal_embedding
from deblurkit.train import model_size

from conftest import random_tiny_model


@pytest.mark.parametrize("arch", ["dvsr", "icdpm"])
@pytest.mark.parametrize("hw", [(16, 16), (32, 48), (64, 16)])
def test_shapes_at_valid_sizes(arch, hw):
    model = random_tiny_model(arch)
    y = torch.rand(2, 3, *hw) * 2 - 1
    with torch.no_grad():
        assert model.predict(y).shape == y.shape
        assert model.denoise(y, torch.tensor([0.3, 0.9]), y).shape == y.shape


def test_unet_rejects_sizes_that_are_not_a_multiple():
    net = UNet(UNetConfig(channel_mults=(1, 2, 2)))
    with pytest.raises(ValueError, match="multiples of 4"):
        net(torch.zeros(1, 3, 30, 32))


def test_small_config_multiple_and_pixel_shuffle_shapes():
    cfg = model_size("dvsr", "small")
    assert cfg.multiple == 16
    model = build_model(cfg)
    y = torch.rand(1, 3, 48, 80)
    with torch.no_grad():
        assert model.predict(y).shape == y.shape
        assert model.denoise(y, torch.tensor([0.5]), y).shape == y.shape


def test_fresh_predictor_is_identity_and_icdpm_predicts_zero():
    y = torch.rand(1, 3, 32, 32)
    fresh = build_model(tiny_config("dvsr"))
    assert torch.equal(fresh.predict(y), y)  # zero-initialised tail: g(y) = y + 0
    icdpm = build_model(tiny_config("icdpm"))
    assert torch.equal(icdpm.predict(y), torch.zeros_like(y))


def test_noise_level_conditioning_changes_the_output():
    model = random_tiny_model()
    z = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        a = model.denoise(z, torch.tensor([0.2]), z)
        b = model.denoise(z, torch.tensor([0.21]), z)
    assert (a - b).abs().max() > 1e-4


def test_embedding_resolves_levels_near_one():
    # The embedding scale must separate the small-noise levels that most steps use.
    e1 = sinusoidal_embedding(torch.tensor([0.9999]), 32, 5000.0)
    e2 = sinusoidal_embedding(torch.tensor([0.9990]), 32, 5000.0)
    assert (e1 - e2).abs().max() > 0.5


def test_config_json_round_trip_and_validation():
    for cfg in (ModelConfig(), icdpm_config(), model_size("dvsr", "small")):
        assert ModelConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(ValueError):
        ModelConfig(arch="icdpm")  # has a predictor by default
    with pytest.raises(ValueError):
        ModelConfig(arch="nope")


def test_fresh_denoiser_is_the_gaussian_optimal_noise_estimate():
    # Zero-initialised backbone: only the preconditioning skip remains, which is the
    # exact E[eps | z] for a N(0, s^2) residual.
    model = build_model(tiny_config())
    s = model.config.residual_std
    z, y = torch.randn(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    lv = torch.tensor([0.3, 0.95])
    with torch.no_grad():
        out = model.denoise(z, lv, y)
    l4 = lv.view(-1, 1, 1, 1)
    torch.testing.assert_close(out, torch.sqrt(1 - l4**2) * z / (l4**2 * s * s + 1 - l4**2))
    plain = build_model(ModelConfig(arch="dvsr", predictor=tiny_config().predictor, denoiser=tiny_config().denoiser, residual_std=0.0))
    with torch.no_grad():
        assert torch.equal(plain.denoise(z, lv, y), torch.zeros_like(z))
