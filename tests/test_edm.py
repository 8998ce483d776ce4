"""The "edm" denoiser objective, the training phases and starting from another run."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from deblurkit.diffusion import PHASES, predictor_loss, sample_edm_sigmas, train_schedule, training_loss
from deblurkit.models import ModelConfig, UNetConfig, build_model, tiny_config
from deblurkit.restorer import Restorer, SamplingOptions, sample_generators
from deblurkit.train.loop import init_from, set_trainable
from deblurkit.weights import save_checkpoint


def tiny_edm_config(conditioned: bool = True) -> ModelConfig:
    den = UNetConfig(in_channels=9 if conditioned else 6, base_channels=8, channel_mults=(1, 2), embed_scale=100.0)
    return ModelConfig(arch="dvsr", predictor=tiny_config().predictor, denoiser=den, residual_std=0.1,
                       objective="edm", condition_on_prediction=conditioned)


def randomised(model, scale=0.05, seed=0):
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * scale)
    return model


def test_config_round_trips_and_rejects_inconsistent_inputs():
    cfg = tiny_edm_config()
    assert ModelConfig.from_json(cfg.to_json()) == cfg
    with pytest.raises(ValueError, match="9"):
        ModelConfig(arch="dvsr", predictor=cfg.predictor, denoiser=tiny_config().denoiser, residual_std=0.1,
                    objective="edm", condition_on_prediction=True)
    with pytest.raises(ValueError, match="objective"):
        ModelConfig(objective="v")
    with pytest.raises(ValueError, match="residual_std"):
        ModelConfig(arch="dvsr", predictor=cfg.predictor, denoiser=tiny_config().denoiser, residual_std=0.0, objective="edm")


def test_fresh_edm_denoiser_equals_the_gaussian_optimal_estimate():
    # A zero backbone leaves D = c_skip x, which must be the same E[eps | z] for a
    # N(0, s^2) residual as the eps parameterisation's skip.
    model = build_model(tiny_edm_config())
    s = model.config.residual_std
    z, y = torch.randn(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    lv = torch.tensor([0.3, 0.95])
    with torch.no_grad():
        out = model.denoise(z, lv, y, y)
    l4 = lv.view(-1, 1, 1, 1)
    torch.testing.assert_close(out, torch.sqrt(1 - l4**2) * z / (l4**2 * s * s + 1 - l4**2))


def test_edm_target_reconstructs_the_residual_exactly():
    # If F hit its target, D = c_skip x + c_out F would be the clean residual.
    model = randomised(build_model(tiny_edm_config()))
    x0, y = torch.rand(2, 3, 16, 16) * 2 - 1, torch.rand(2, 3, 16, 16) * 2 - 1
    sigma, eps = torch.tensor([0.002, 3.0]), torch.randn(2, 3, 16, 16)
    with torch.no_grad():
        _, target, x_init, _ = model(x0, y, sigma, eps)
    s, sig = model.config.residual_std, sigma.view(-1, 1, 1, 1)
    x_noisy = (x0 - x_init) + sig * eps
    c_skip, c_out = s**2 / (sig**2 + s**2), sig * s / torch.sqrt(sig**2 + s**2)
    torch.testing.assert_close(c_skip * x_noisy + c_out * target, x0 - x_init, atol=1e-5, rtol=1e-5)


def test_edm_sigmas_cover_every_level_the_presets_visit():
    sig = sample_edm_sigmas(20000, 0.1, torch.Generator().manual_seed(0))
    assert sig.min() < 1.5e-3 and sig.max() > 10.0
    assert 0.03 < sig.median() < 0.1  # most draws near the residual's own spread


def _grads(net):
    return sum(float(p.grad.abs().sum()) for p in net.parameters() if p.grad is not None)


@pytest.mark.parametrize("phase", PHASES)
def test_each_phase_trains_only_its_networks(phase):
    from dataclasses import replace

    from deblurkit.models.config import refiner_config

    # Every model here has a refiner: only its own phase may reach it.
    model = randomised(build_model(replace(tiny_edm_config(), refiner=refiner_config(8, kernel=True)))).train()
    set_trainable(model, phase)
    x0, y = torch.rand(2, 3, 16, 16) * 2 - 1, torch.rand(2, 3, 16, 16) * 2 - 1
    kernel = None
    if phase == "refiner":  # its crops carry their deconvolution, and come with the kernel of it
        y = torch.cat([y, torch.rand(2, 3, 16, 16) * 2 - 1], dim=1)
        kernel = torch.rand(2, 5, 5)
    training_loss(model, model.config, x0, y, train_schedule(), torch.Generator().manual_seed(1),
                  phase=phase, fft_weight=0.1, kernel=kernel).backward()
    assert (_grads(model.predictor) > 0) == (phase in ("joint", "predictor"))
    assert (_grads(model.denoiser) > 0) == (phase in ("joint", "denoiser"))
    assert (_grads(model.refiner) > 0) == (phase == "refiner")
    assert (_grads(model.refiner.kernel_embed) > 0) == (phase == "refiner")  # its kernel condition learns with it


def test_edm_joint_training_keeps_the_denoiser_gradient_out_of_the_predictor():
    model = randomised(build_model(tiny_edm_config())).train()
    x0, y = torch.rand(2, 3, 16, 16) * 2 - 1, torch.rand(2, 3, 16, 16) * 2 - 1
    training_loss(model, model.config, x0, y, train_schedule(), torch.Generator().manual_seed(1),
                  phase="joint", predictor_weight=0.0).backward()
    assert _grads(model.predictor) == 0 and _grads(model.denoiser) > 0


def test_frequency_term_is_zero_only_for_a_perfect_prediction():
    x = torch.rand(1, 3, 16, 16)
    assert float(predictor_loss(x, x, fft_weight=1.0)) == 0.0
    blurred = torch.nn.functional.avg_pool2d(x, 3, 1, 1)
    assert float(predictor_loss(blurred, x, fft_weight=1.0)) > float(predictor_loss(blurred, x, fft_weight=0.0))


def test_edm_model_samples_reproducibly_through_the_tiled_restorer():
    model = randomised(build_model(tiny_edm_config()), scale=0.02)
    image = torch.rand(1, 3, 40, 56)
    restorer = Restorer(model, "cpu", tile=32, overlap=8)
    opts = SamplingOptions(steps=5, noise_ceiling=0.5, samples=2)
    a = restorer.restore(image, opts, sample_generators(3, "x.png", 2, torch.device("cpu")))
    b = restorer.restore(image, opts, sample_generators(3, "x.png", 2, torch.device("cpu")))
    assert a.shape == (2, 3, 40, 56) and torch.isfinite(a).all()
    assert torch.equal(a, b)
    assert not torch.equal(a[0], a[1])  # two samples, two generators


def test_init_from_copies_matching_tensors_only(tmp_path):
    source = randomised(build_model(tiny_config()), seed=1)  # eps model: predictor matches, denoiser does not
    save_checkpoint(source, tmp_path / "pred.safetensors")
    target = build_model(tiny_edm_config())
    den_before = {k: v.clone() for k, v in target.denoiser.state_dict().items()}
    note = init_from(target, tmp_path / "pred.safetensors")
    assert "predictor" in note
    for k, v in target.predictor.state_dict().items():
        assert torch.equal(v, source.predictor.state_dict()[k])
    # Every tensor whose name and shape match came across, in every network; the others
    # (the denoiser's first conv: 9 vs 6 inputs) kept their fresh values.
    src = source.state_dict()
    matching = [k for k, v in target.state_dict().items() if k in src and src[k].shape == v.shape]
    assert any(k.startswith("denoiser.") for k in matching)  # not only the predictor
    for k, v in target.state_dict().items():
        if k in matching:
            assert torch.equal(v, src[k]), k
        elif k.startswith("denoiser."):
            assert torch.equal(v, den_before[k.split(".", 1)[1]]), k
    assert "head.weight" not in {k.split(".", 1)[1] for k in matching if k.startswith("denoiser.")}
    assert f"{len(matching)}/" in note
    assert np.isfinite(math.fsum(float(v.sum()) for v in target.state_dict().values()))
