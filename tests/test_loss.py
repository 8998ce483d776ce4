import math

import torch

from deblurkit.diffusion import dvsr_loss, sample_training_levels, train_schedule

from conftest import random_tiny_model


def test_loss_matches_equation_6():
    model = random_tiny_model()
    x0 = torch.rand(2, 3, 16, 16) * 2 - 1
    y = torch.rand(2, 3, 16, 16) * 2 - 1
    s = train_schedule()
    loss = dvsr_loss(model, x0, y, s, torch.Generator().manual_seed(7))
    # Recompute by hand with the same draws.
    g = torch.Generator().manual_seed(7)
    level = sample_training_levels(s, 2, g)
    eps = torch.randn(x0.shape, generator=g)
    lv = level.view(2, 1, 1, 1)
    z = lv * (x0 - model.predict(y)) + torch.sqrt(1 - lv**2) * eps
    expected = (eps - model.denoise(z, level, y)).abs().mean()
    torch.testing.assert_close(loss, expected)


def test_gradient_reaches_the_predictor_through_the_residual():
    model = random_tiny_model()
    x0, y = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    dvsr_loss(model, x0, y, train_schedule(), torch.Generator().manual_seed(0)).backward()
    pred_grad = sum(p.grad.abs().sum() for p in model.predictor.parameters() if p.grad is not None)
    assert pred_grad > 0
    assert all(p.grad is not None for p in model.denoiser.parameters())


def test_icdpm_loss_diffuses_the_image_itself():
    model = random_tiny_model("icdpm")
    x0, y = torch.rand(1, 3, 16, 16), torch.rand(1, 3, 16, 16)
    level, eps = torch.tensor([0.6]), torch.randn(1, 3, 16, 16)
    z = 0.6 * x0 + math.sqrt(1 - 0.36) * eps
    eps_hat, target, x_init, _ = model(x0, y, level, eps)
    assert torch.equal(target, eps)
    torch.testing.assert_close(eps_hat, model.denoise(z, level, y))
    assert torch.equal(x_init, torch.zeros_like(x0))


def test_predictor_weight_adds_a_direct_l1_term():
    model = random_tiny_model()
    x0, y = torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16)
    s = train_schedule()
    base = dvsr_loss(model, x0, y, s, torch.Generator().manual_seed(3))
    both = dvsr_loss(model, x0, y, s, torch.Generator().manual_seed(3), predictor_weight=0.5)
    torch.testing.assert_close(both - base, 0.5 * (model.predict(y) - x0).abs().mean())


def test_a_few_optimiser_steps_reduce_the_loss_on_a_fixed_batch():
    torch.manual_seed(0)
    model = random_tiny_model(scale=0.01).train()
    opt = torch.optim.Adam(model.parameters(), 3e-3)
    x0 = torch.rand(4, 3, 16, 16) * 2 - 1
    y = x0.roll(1, dims=-1)
    s = train_schedule()

    def fixed_loss():
        return dvsr_loss(model, x0, y, s, torch.Generator().manual_seed(1))

    before = fixed_loss().item()
    for _ in range(30):
        opt.zero_grad()
        fixed_loss().backward()
        opt.step()
    assert fixed_loss().item() < before * 0.9
