import torch

from deblurkit.restorer import Restorer, SamplingOptions, sample_generators

from conftest import random_tiny_model, smooth_image

CPU = torch.device("cpu")


def _x(h=40, w=56, seed=0):
    return torch.from_numpy(smooth_image(h, w, seed)).permute(2, 0, 1)[None]


def test_output_shape_range_and_odd_sizes():
    r = Restorer(random_tiny_model(), CPU, tile=32, overlap=8)
    for h, w in [(1, 1), (2, 3), (1, 37), (37, 5), (45, 71)]:
        out = r.restore(_x(h, w), SamplingOptions(steps=3, noise_ceiling=0.5, samples=2), sample_generators(0, "a", 2, CPU))
        assert out.shape == (2, 3, h, w)
        assert out.min() >= 0 and out.max() <= 1


def test_same_seed_same_output_different_seed_different_output():
    r = Restorer(random_tiny_model(), CPU, tile=64)
    opts = SamplingOptions(steps=5, noise_ceiling=0.5, samples=2)
    a = r.restore(_x(), opts, sample_generators(42, "img.png", 2, CPU))
    b = r.restore(_x(), opts, sample_generators(42, "img.png", 2, CPU))
    c = r.restore(_x(), opts, sample_generators(43, "img.png", 2, CPU))
    assert torch.equal(a, b)
    assert (a - c).abs().max() > 1e-3
    assert (a[0] - a[1]).abs().max() > 1e-3  # samples differ from each other


def test_a_sample_does_not_depend_on_the_other_samples_in_the_batch():
    r = Restorer(random_tiny_model(), CPU, tile=64)
    one = r.restore(_x(), SamplingOptions(steps=5, noise_ceiling=0.5, samples=1), sample_generators(7, "k", 1, CPU))
    three = r.restore(_x(), SamplingOptions(steps=5, noise_ceiling=0.5, samples=3), sample_generators(7, "k", 3, CPU))
    # Same generator for sample 0; only float rounding of batched convolutions may differ.
    assert (one[0] - three[0]).abs().max() < 1e-4


def test_generators_are_per_image_key():
    a = sample_generators(1, "a.png", 1, CPU)[0]
    b = sample_generators(1, "b.png", 1, CPU)[0]
    assert not torch.equal(torch.randn(8, generator=a), torch.randn(8, generator=b))


def test_ddim_is_deterministic_given_the_seed_and_differs_from_ddpm():
    r = Restorer(random_tiny_model(), CPU, tile=64)
    d1 = r.restore(_x(), SamplingOptions(steps=5, noise_ceiling=0.5, sampler="ddim"), sample_generators(1, "k", 1, CPU))
    d2 = r.restore(_x(), SamplingOptions(steps=5, noise_ceiling=0.5, sampler="ddim"), sample_generators(1, "k", 1, CPU))
    p = r.restore(_x(), SamplingOptions(steps=5, noise_ceiling=0.5, sampler="ddpm"), sample_generators(1, "k", 1, CPU))
    assert torch.equal(d1, d2) and (d1 - p).abs().max() > 1e-4


def test_steps_zero_is_the_predictor():
    model = random_tiny_model()
    r = Restorer(model, CPU, tile=64)
    out = r.restore(_x(32, 32), SamplingOptions(steps=0))
    with torch.no_grad():
        ref = ((model.predict(_x(32, 32) * 2 - 1) + 1) / 2).clamp(0, 1)
    torch.testing.assert_close(out, ref, atol=1e-5, rtol=0)


def test_estimates_are_reported_at_requested_steps():
    r = Restorer(random_tiny_model(), CPU, tile=64)
    seen = []
    r.restore(_x(), SamplingOptions(steps=6, noise_ceiling=0.5), sample_generators(0, "k", 1, CPU),
              on_estimate=lambda i, t, est: seen.append((i, tuple(est.shape))), estimate_every={0, 3, 6})
    assert [s[0] for s in seen] == [0, 3, 6] and seen[0][1] == (1, 3, 40, 56)


def test_auto_tile_is_a_multiple_and_bounded():
    r = Restorer(random_tiny_model(), CPU)
    t = r.auto_tile(batch=1)
    assert t % r.multiple == 0 and 64 <= t <= 1024
    assert r.auto_tile(batch=64) <= t


def test_a_kernel_aware_model_restores_any_size_through_the_restorer():
    """The predictor estimates each tile's kernel itself; tiny tiles skip the estimate."""
    from dataclasses import replace

    from deblurkit.deconv import MIN_SIDE, blind_deconvolve
    from deblurkit.models import build_model, tiny_config

    plain = tiny_config("dvsr")
    model = build_model(replace(plain, deconv_input=True, predictor=replace(plain.predictor, in_channels=6)))
    torch.manual_seed(0)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    model.eval()
    r = Restorer(model, CPU, tile=64, overlap=16)
    for h, w in [(1, 1), (37, 5), (45, 71), (96, 80)]:
        out = r.restore(_x(h, w), SamplingOptions(steps=0))
        assert out.shape == (1, 3, h, w) and torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
    # One tile: the restorer's result is the predictor's on [y, its deconvolution].
    x = _x(48, 48, 3)
    rgb = x[0].permute(1, 2, 0).double().numpy()
    assert min(rgb.shape[:2]) >= MIN_SIDE
    d = torch.from_numpy(blind_deconvolve(rgb)).permute(2, 0, 1)[None].float()
    with torch.no_grad():
        direct = (model.predict(torch.cat([x * 2 - 1, d * 2 - 1], 1)) + 1) / 2
    torch.testing.assert_close(r.restore(x, SamplingOptions(steps=0)), direct.clamp(0, 1), atol=2e-3, rtol=0)
