"""Schedule definition and the samplers, through one shared contract (diffusers-style)."""

import math

import numpy as np
import pytest
import torch

from deblurkit.diffusion import NoiseSchedule, ddim_sample, ddpm_sample, initial_state, sample_training_levels, train_schedule


def test_linear_schedule_definition():
    s = NoiseSchedule(5, 0.5)
    np.testing.assert_allclose(s.betas(), [1e-6, 0.12500075, 0.2500005, 0.37500025, 0.5])
    np.testing.assert_allclose(s.alpha_bars(), np.cumprod(1 - s.betas()))
    assert NoiseSchedule(1, 0.3).betas().tolist() == [0.3]
    lv = s.levels()
    assert lv[0] == 1.0 and np.all(np.diff(lv) < 0)


@pytest.mark.parametrize("bad", [(0, 0.1), (10, 0.0), (10, 1.0), (10, 1.5)])
def test_schedule_rejects_invalid(bad):
    with pytest.raises(ValueError):
        NoiseSchedule(*bad)


def test_training_levels_lie_between_neighbouring_schedule_levels():
    s = train_schedule()
    g = torch.Generator().manual_seed(0)
    lv = sample_training_levels(s, 20000, g)
    assert lv.min() > 0 and lv.max() <= 1
    levels = s.levels()
    assert lv.min() >= levels[-1] - 1e-7
    # Uniform over steps: a good share of draws sits in the low-noise half of the steps.
    assert 0.3 < float((lv > levels[s.steps // 2]).float().mean()) < 0.7
    assert torch.equal(lv, sample_training_levels(s, 20000, torch.Generator().manual_seed(0)))


def test_initial_state_scale():
    s = NoiseSchedule(4, 0.1)  # alpha_bar_T far from 0
    noise = torch.randn(200000)
    z = initial_state(s, noise)
    assert abs(z.std().item() - math.sqrt(1 - s.alpha_bars()[-1])) < 0.01


class SamplerContract:
    """Every sampler must satisfy these; subclasses supply the sampler."""

    sampler = None
    stochastic = True

    def run(self, denoise, schedule, shape, seed=0, **kw):
        g = torch.Generator().manual_seed(seed)
        z = initial_state(schedule, torch.randn(shape, generator=g))
        noise = lambda like: torch.randn(like.shape, generator=g)  # noqa: E731
        return type(self).sampler(denoise, schedule, z, noise, **kw)

    @pytest.mark.parametrize("steps,ceiling", [(1, 0.5), (10, 0.9), (50, 0.2), (200, 0.05)])
    def test_perfect_denoiser_recovers_the_residual(self, steps, ceiling):
        residual = torch.rand(2, 3, 8, 8) - 0.5

        def perfect(z, level):
            ab = level**2
            return (z - level * residual) / math.sqrt(1 - ab)

        out = self.run(perfect, NoiseSchedule(steps, ceiling), residual.shape)
        torch.testing.assert_close(out, residual, atol=1e-4, rtol=0)

    def test_gaussian_posterior_has_the_right_spread(self):
        # Data ~ N(0, s^2): the exact noise predictor is known in closed form, and a
        # correct sampler must then produce samples with standard deviation s.
        s = 0.3

        def exact(z, level):
            ab = level**2
            return math.sqrt(1 - ab) * z / (ab * s * s + 1 - ab)

        out = self.run(exact, NoiseSchedule(200, 0.05), (200000,))
        assert abs(out.std().item() - s) < 0.02
        assert abs(out.mean().item()) < 0.01

    def test_callback_reports_every_step(self):
        seen = []
        out = self.run(lambda z, lv: torch.zeros_like(z), NoiseSchedule(7, 0.5), (4,), callback=lambda i: seen.append(i.index))
        assert seen == list(range(1, 8))
        assert out.abs().sum() > 0  # a sampler that returned zeros would still call back

    def test_callback_reports_total_level_and_estimate(self):
        infos = []
        self.run(lambda z, lv: torch.zeros_like(z), NoiseSchedule(7, 0.5), (4,),
                 callback=lambda i: infos.append((i.total, i.level, None if i.x0 is None else i.x0.clone())))
        assert [t for t, _, _ in infos] == [7] * 7
        levels = [lv for _, lv, _ in infos]
        assert all(lv is not None and 0.0 < lv <= 1.0 for lv in levels) and len(set(levels)) == 7
        assert all(x0 is not None and x0.shape == (4,) for _, _, x0 in infos)

    def test_same_seed_same_result(self):
        f = lambda z, lv: 0.5 * z  # noqa: E731
        a = self.run(f, NoiseSchedule(10, 0.5), (3, 8), seed=3)
        b = self.run(f, NoiseSchedule(10, 0.5), (3, 8), seed=3)
        assert torch.equal(a, b)
        # ... and the seed matters (a constant output is "reproducible" too).
        assert not torch.equal(a, self.run(f, NoiseSchedule(10, 0.5), (3, 8), seed=4))
        assert a.abs().sum() > 0

    def test_clip_is_applied_to_the_estimate(self):
        out = self.run(lambda z, lv: torch.zeros_like(z), NoiseSchedule(10, 0.5), (1000,), clip=lambda x: x.clamp(-0.1, 0.1))
        assert out.abs().max() <= 0.1 + 1e-6
        # With a zero noise estimate the unclipped x0 estimate is z / sqrt(alpha_bar), mostly
        # far beyond 0.1: the output sits at the clip bounds, not at zero.
        assert (out.abs() > 0.09).float().mean() > 0.5


class TestDDPM(SamplerContract):
    sampler = staticmethod(ddpm_sample)


class TestDDIM(SamplerContract):
    sampler = staticmethod(ddim_sample)
    stochastic = False

    def test_matches_the_ddim_update_written_out(self):
        # eta = 0: z_{t-1} = sqrt(ab_{t-1}) x0 + sqrt(1 - ab_{t-1}) eps, with a denoiser that is
        # not exact, so every step's target level shows in the result.
        f = lambda z, lv: 0.5 * z + 0.1  # noqa: E731
        s = NoiseSchedule(4, 0.5)
        ab = [float(a) for a in s.alpha_bars()]
        z = torch.linspace(-1.0, 1.0, 6, dtype=torch.float64)
        ref = z.clone()
        for i in reversed(range(4)):
            eps = f(ref, math.sqrt(ab[i]))
            x0 = (ref - math.sqrt(1 - ab[i]) * eps) / math.sqrt(ab[i])
            if i == 0:
                ref = x0
                break
            ref = math.sqrt(ab[i - 1]) * x0 + math.sqrt(1 - ab[i - 1]) * eps
        torch.testing.assert_close(ddim_sample(f, s, z.clone()), ref, atol=1e-10, rtol=0)

    def test_deterministic_given_the_start(self):
        f = lambda z, lv: 0.5 * z  # noqa: E731
        s = NoiseSchedule(10, 0.5)
        z = torch.randn(5)
        a = ddim_sample(f, s, z.clone(), lambda like: torch.randn(like.shape))
        b = ddim_sample(f, s, z.clone(), lambda like: torch.randn(like.shape))
        assert torch.equal(a, b)
