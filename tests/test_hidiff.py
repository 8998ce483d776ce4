"""HI-Diff's parts: shapes, the latent sampler, both training stages, checkpoints."""

import math

import pytest
import torch

from deblurkit.models import HIDiff, HIDiffConfig, build_model, config_from_json, tiny_hidiff_config
from deblurkit.models.hidiff import latent_schedule, reverse_chain, stage_one_loss, stage_two_loss
from deblurkit.weights import load_checkpoint, save_checkpoint


def _model(seed=0, scale=0.05):
    torch.manual_seed(seed)
    m = build_model(tiny_hidiff_config())
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn_like(p) * scale)
    return m.eval()


def _noise(model, b, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(model.noise_shape(b), generator=g) for _ in range(model.config.latent_steps)]


@pytest.mark.parametrize("hw", [(8, 8), (24, 40), (56, 16)])
def test_shapes_at_every_valid_size(hw):
    m = _model()
    y = torch.rand(2, 3, *hw) * 2 - 1
    with torch.no_grad():
        prior = m.sample_prior(y, _noise(m, 2))
        assert prior.shape == (2, 16, 16)
        assert m.restore(y, prior).shape == y.shape


def test_sizes_that_are_not_a_multiple_are_refused():
    m = _model()
    assert m.multiple == 8 and HIDiffConfig().multiple == 16  # the CPU size has a 2x stem
    with pytest.raises(ValueError, match="multiples of 8"):
        m.restore(torch.zeros(1, 3, 12, 16), torch.zeros(1, 16, 16))


def test_fresh_transformer_is_the_identity_and_ignores_the_prior():
    m = build_model(tiny_hidiff_config()).eval()
    y = torch.rand(1, 3, 16, 24) * 2 - 1
    with torch.no_grad():
        assert torch.equal(m.restore(y, torch.randn(1, 16, 16)), y)


def test_trained_prior_changes_the_output():
    m = _model()
    y = torch.rand(1, 3, 16, 24) * 2 - 1
    with torch.no_grad():
        a, b = m.restore(y, torch.randn(1, 16, 16)), m.restore(y, torch.randn(1, 16, 16))
    assert (a - b).abs().max() > 1e-4


def test_latent_schedule_is_the_papers():
    b = latent_schedule(8)
    assert b[0].item() == pytest.approx(0.1) and b[-1].item() == pytest.approx(0.99) and len(b) == 8
    assert latent_schedule(1).tolist() == [0.99]


class _Oracle(torch.nn.Module):
    """A denoiser that always estimates the same clean prior."""

    def __init__(self, z0):
        super().__init__()
        self.z0 = z0

    def forward(self, z, c, t):
        return self.z0.expand_as(z)


@pytest.mark.parametrize("steps", [1, 2, 4, 8])
def test_reverse_chain_ends_on_the_denoisers_estimate(steps):
    # The last step returns z0_hat itself, and with an exact estimate every step's mean
    # is the DDPM posterior mean: the chain lands on z0 whatever the noise.
    z0 = torch.randn(1, 16, 8, dtype=torch.float64)
    zT = torch.randn(3, 16, 8, dtype=torch.float64)
    noise = [torch.randn(3, 16, 8, dtype=torch.float64) for _ in range(steps)]
    out = reverse_chain(_Oracle(z0), None, zT, steps, noise)
    torch.testing.assert_close(out, z0.expand(3, -1, -1))


def test_one_reverse_step_is_eq6():
    # Two steps: the first from z_2 must be Eq. 6 with eps taken from the estimate.
    z0, z2, n = torch.randn(1, 4, 4, dtype=torch.float64), torch.randn(1, 4, 4, dtype=torch.float64), torch.randn(1, 4, 4, dtype=torch.float64)
    seen = []

    class Spy(_Oracle):
        def forward(self, z, c, t):
            seen.append((z.clone(), float(t[0])))
            return super().forward(z, c, t)

    reverse_chain(Spy(z0), None, z2, 2, [n])
    betas = latent_schedule(2)
    ab2 = float((1 - betas).prod())
    eps = (z2 - math.sqrt(ab2) * z0) / math.sqrt(1 - ab2)
    z1 = (z2 - float(betas[1]) / math.sqrt(1 - ab2) * eps) / math.sqrt(1 - float(betas[1])) + math.sqrt(float(betas[1])) * n
    torch.testing.assert_close(seen[1][0], z1)
    assert [t for _, t in seen] == [1.0, 0.5]


def test_prior_samples_are_reproducible_and_differ_by_noise():
    m = _model()
    y = torch.rand(2, 3, 16, 16) * 2 - 1
    with torch.no_grad():
        a, b, c = m.sample_prior(y, _noise(m, 2, 1)), m.sample_prior(y, _noise(m, 2, 1)), m.sample_prior(y, _noise(m, 2, 2))
    assert torch.equal(a, b) and (a - c).abs().max() > 1e-4
    with pytest.raises(ValueError, match="noise draws"):
        m.sample_prior(y, _noise(m, 2)[:2])


def _grads(model):
    return {name: any(p.grad is not None and p.grad.abs().sum() > 0 for p in getattr(model, name).parameters())
            for name in ("transformer", "encoder", "condition_encoder", "latent_denoiser")}


def test_stage_one_trains_the_encoder_and_the_transformer():
    m = _model().train()
    x0, y = torch.rand(2, 3, 16, 16) * 2 - 1, torch.rand(2, 3, 16, 16) * 2 - 1
    loss = stage_one_loss(m, x0, y)
    loss.backward()
    assert torch.isfinite(loss)
    assert _grads(m) == {"transformer": True, "encoder": True, "condition_encoder": False, "latent_denoiser": False}


def test_stage_two_trains_the_latent_side_and_the_transformer_through_all_steps():
    m = _model().train()
    x0, y = torch.rand(2, 3, 16, 16) * 2 - 1, torch.rand(2, 3, 16, 16) * 2 - 1
    loss = stage_two_loss(m, x0, y, torch.Generator().manual_seed(0))
    loss.backward()
    assert torch.isfinite(loss)
    # LE is frozen (its z is the target); the chain's gradient reaches LE_DM and the denoiser.
    assert _grads(m) == {"transformer": True, "encoder": False, "condition_encoder": True, "latent_denoiser": True}
    same = stage_two_loss(m, x0, y, torch.Generator().manual_seed(0))
    assert float(same.detach()) == float(loss.detach())  # the generator alone decides the noise


def test_config_validation_and_checkpoint_round_trip(tmp_path):
    for bad in [dict(blocks=(1, 2, 3)), dict(heads=(1, 5, 4, 8)), dict(tokens=12), dict(pixel_shuffle=3), dict(ffn_expansion=0.5),
                dict(arch="dvsr")]:
        with pytest.raises(ValueError):
            HIDiffConfig(**bad)
    cfg = tiny_hidiff_config()
    assert config_from_json(cfg.to_json()) == cfg
    m = _model()
    path = tmp_path / "h.safetensors"
    save_checkpoint(m, path)
    back = load_checkpoint(path).model
    assert isinstance(back, HIDiff) and back.config == cfg
    for k, v in m.state_dict().items():
        assert torch.equal(v, back.state_dict()[k]), k
