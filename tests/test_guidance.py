"""MSGD's multiscale structure guidance: shapes, the regression loss, the warm-start
ramp, once-per-tile reuse, checkpoints and `--save-guidance`."""

import json

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from deblurkit.cli.app import app
from deblurkit.diffusion import guidance_ramp, train_schedule, training_loss
from deblurkit.models import GuidanceConfig, ModelConfig, UNetConfig, build_model, msgd_config, tiny_config
from deblurkit.models.guidance import Guidance, grey_targets, regression_loss, scaled_noise, to_grey
from deblurkit.restorer import Restorer, SamplingOptions, guidance_bytes_per_pixel, sample_generators
from deblurkit.train import TrainConfig, model_size
from deblurkit.weights import load_checkpoint, save_checkpoint

from conftest import random_tiny_model, save_photo, smooth_image

CPU = torch.device("cpu")


def _randomised(model, seed=0, scale=0.05):
    torch.manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(torch.randn_like(p) * scale)
    return model.eval()


def _small_msgd(seed=0):
    """The paper's layout: guidance at 1/2, 1/4, 1/8 on a denoiser whose levels run there."""
    den = UNetConfig(in_channels=6, base_channels=8, channel_mults=(1, 2, 4), embed_scale=5000.0, pixel_shuffle=2)
    return _randomised(build_model(msgd_config(den, GuidanceConfig(scales=(2, 4, 8), channels=4, num_blocks=1))), seed)


def test_guidance_feeds_the_matching_encoder_levels():
    model = _small_msgd()
    y = torch.rand(2, 3, 40, 56) * 2 - 1
    g = model.guide(y)
    widths = [8, 8, 16]  # where each level begins: the stem's width, then the level above's
    for k, b in enumerate(g.biases):
        assert b.shape == (2, widths[k], 40 // 2 ** (k + 1), 56 // 2 ** (k + 1))
    assert [r.shape for r in g.regression] == [(2, 1, 20, 28), (2, 1, 10, 14), (2, 1, 5, 7)]


@pytest.mark.parametrize("h,w", [(1, 1), (7, 5), (37, 53), (45, 71)])
def test_restore_and_guidance_maps_at_odd_sizes(h, w):
    r = Restorer(_small_msgd(), CPU, tile=32, overlap=8)
    x = torch.from_numpy(smooth_image(h, w)).permute(2, 0, 1)[None]
    out = r.restore(x, SamplingOptions(steps=3, noise_ceiling=0.5, samples=2), sample_generators(0, "a", 2, CPU))
    assert out.shape == (2, 3, h, w) and torch.isfinite(out).all()
    maps = r.guidance_maps(x)
    assert [m.shape for m in maps] == [(1, 1, -(-h // s), -(-w // s)) for s in (2, 4, 8)]
    assert all(m.min() >= 0 and m.max() <= 1 for m in maps)


def test_guidance_maps_do_not_depend_on_the_tiling_inside_a_tile():
    # Where one tile covers a block, the map is that tile's regression output exactly;
    # a single tile over the whole image is the untiled guidance.
    model = _small_msgd()
    x = torch.from_numpy(smooth_image(64, 96)).permute(2, 0, 1)[None]
    maps = Restorer(model, CPU, tile=128).guidance_maps(x)
    with torch.no_grad():
        ref = model.guide(x * 2 - 1).regression
    for m, rr in zip(maps, ref, strict=True):
        torch.testing.assert_close(m, ((rr + 1) / 2).clamp(0, 1))


def test_fresh_guidance_leaves_the_denoiser_unchanged():
    # The projections start at zero: a fresh guided denoiser is the unguided one.
    guided = build_model(tiny_config("msgd"))
    plain = build_model(tiny_config("icdpm"))
    plain.load_state_dict({k: v for k, v in guided.state_dict().items() if not k.startswith("guidance.")})
    z, y = torch.randn(2, 3, 16, 24), torch.rand(2, 3, 16, 24) * 2 - 1
    lv = torch.tensor([0.3, 0.9])
    with torch.no_grad():
        torch.testing.assert_close(guided.denoise(z, lv, y), plain.denoise(z, lv, y), rtol=0, atol=0)


def test_trained_guidance_changes_the_denoiser_and_cached_equals_recomputed():
    model = random_tiny_model("msgd")
    z, y = torch.randn(2, 3, 16, 24), torch.rand(2, 3, 16, 24) * 2 - 1
    lv = torch.tensor([0.3, 0.9])
    with torch.no_grad():
        cached = model.denoise(z, lv, y, guidance=model.guide(y))
        torch.testing.assert_close(model.denoise(z, lv, y), cached)
        zero = Guidance([torch.zeros_like(b) if b is not None else None for b in model.guide(y).biases], [])
        assert (model.denoise(z, lv, y, guidance=zero) - cached).abs().max() > 1e-4


def test_guidance_is_computed_once_per_tile_not_per_step(monkeypatch):
    model = _small_msgd()
    calls = []
    original = model.guidance.forward
    monkeypatch.setattr(model.guidance, "forward", lambda y, noise=None: calls.append(y.shape[0]) or original(y, noise))
    r = Restorer(model, CPU, tile=32, overlap=8)
    x = torch.from_numpy(smooth_image(48, 80)).permute(2, 0, 1)[None]
    r.restore(x, SamplingOptions(steps=6, noise_ceiling=0.5, samples=3), sample_generators(0, "k", 3, CPU))
    # 48 x 80 in 32 px tiles with 8 px overlap: 2 x 3 tiles, each guided once, for all samples.
    assert sum(calls) == 6


def test_guided_restore_is_reproducible_and_samples_are_independent():
    r = Restorer(_small_msgd(), CPU, tile=32, overlap=8)
    x = torch.from_numpy(smooth_image(40, 56)).permute(2, 0, 1)[None]
    opts = SamplingOptions(steps=4, noise_ceiling=0.5, samples=2)
    a = r.restore(x, opts, sample_generators(3, "k", 2, CPU))
    b = r.restore(x, opts, sample_generators(3, "k", 2, CPU))
    one = r.restore(x, SamplingOptions(steps=4, noise_ceiling=0.5, samples=1), sample_generators(3, "k", 1, CPU))
    assert torch.equal(a, b)
    assert (a[0] - one[0]).abs().max() < 1e-4


def test_scaled_noise_keeps_unit_variance():
    g = torch.Generator().manual_seed(0)
    noise = torch.randn(4, 1, 256, 256, generator=g)
    for s in (1, 2, 4, 8):
        n = scaled_noise(noise, s)
        assert n.shape[-1] == 256 // s
        assert abs(float(n.std()) - 1.0) < 0.05


def test_regression_loss_is_zero_at_the_target_and_trains_only_the_guidance():
    model = random_tiny_model("msgd")
    x0 = torch.rand(2, 3, 16, 24) * 2 - 1
    scales = model.config.guidance.scales
    exact = Guidance([None, None], grey_targets(x0, scales))
    assert float(regression_loss(exact, x0, scales)) == 0.0
    off = Guidance([None, None], [t + 0.1 for t in grey_targets(x0, scales)])
    assert abs(float(regression_loss(off, x0, scales)) - 0.01) < 1e-6

    y = torch.rand(2, 3, 16, 24) * 2 - 1
    loss = regression_loss(model.guide(y), x0, scales)
    loss.backward()
    assert all(p.grad is None for p in model.denoiser.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in model.guidance.parameters())


def test_grey_is_luma_on_the_signed_scale():
    x = torch.tensor([1.0, -1.0, 0.0]).view(1, 3, 1, 1)
    assert abs(float(to_grey(x)) - (0.299 - 0.587)) < 1e-6


def test_warm_start_ramp():
    assert guidance_ramp(0, 100) == 0.0
    assert guidance_ramp(25, 100) == 0.25
    assert guidance_ramp(100, 100) == guidance_ramp(5000, 100) == 1.0
    assert guidance_ramp(0, 0) == 1.0  # unguided runs: the denoising loss at full weight
    assert TrainConfig(arch="msgd", steps=1000).guidance_ramp_steps() == 60  # the paper's 6%
    assert TrainConfig(arch="dvsr", steps=1000, guidance=True, guidance_ramp=100).guidance_ramp_steps() == 100
    assert TrainConfig(arch="dvsr", steps=1000).guidance_ramp_steps() == 0
    assert TrainConfig(arch="icdpm", steps=1000).guidance_ramp_steps() == 0


@pytest.mark.parametrize("objective", ["eps", "edm"])
def test_weight_zero_leaves_only_the_regression_loss(objective):
    cfg = tiny_config("msgd")
    if objective == "edm":
        cfg = ModelConfig.from_dict({**cfg.to_dict(), "objective": "edm", "residual_std": 0.5})
    model = random_tiny_model("msgd")
    model = build_model(cfg).eval() if objective == "edm" else model
    x0, y = torch.rand(2, 3, 16, 24) * 2 - 1, torch.rand(2, 3, 16, 24) * 2 - 1

    def loss(w):
        return training_loss(model, cfg, x0, y, train_schedule(), torch.Generator().manual_seed(1), denoise_weight=w)

    # The regression term with the same guidance noise the loss draws (after the level and eps).
    g = torch.Generator().manual_seed(1)
    if objective == "eps":
        from deblurkit.diffusion import sample_training_levels
        sample_training_levels(train_schedule(), 2, g)
    else:
        from deblurkit.diffusion import sample_edm_sigmas
        sample_edm_sigmas(2, 0.5, g)
    torch.randn(x0.shape, generator=g)
    noise = torch.randn((2, 1, 16, 24), generator=g)
    with torch.no_grad():
        reg = regression_loss(model.guide(y, noise), x0, cfg.guidance.scales)
        torch.testing.assert_close(loss(0.0), reg)
        assert float(loss(1.0)) > float(loss(0.0))


def test_config_validation_and_checkpoint_round_trip(tmp_path):
    with pytest.raises(ValueError, match="needs a guidance"):
        ModelConfig(arch="msgd", predictor=None, denoiser=tiny_config().denoiser)
    with pytest.raises(ValueError, match="no guidance"):
        ModelConfig(arch="icdpm", predictor=None, denoiser=tiny_config().denoiser, guidance=GuidanceConfig(scales=(1, 2)))
    with pytest.raises(ValueError, match="matches no level"):
        msgd_config(tiny_config().denoiser, GuidanceConfig(scales=(2, 4)))  # tiny levels run at 1/1 and 1/2
    for bad in [dict(scales=(3,)), dict(scales=(2, 2)), dict(scales=()), dict(channels=0), dict(noise_std=-1.0)]:
        with pytest.raises(ValueError):
            GuidanceConfig(**bad)
    cfg = model_size("dvsr", "medium", guidance=True)
    assert cfg.guidance.scales == (2, 4, 8) and cfg.multiple == 16
    assert model_size("msgd", "base").guidance.scales == (2, 4)  # only the scales its levels run at

    model = random_tiny_model("msgd")
    path = tmp_path / "m.safetensors"
    save_checkpoint(model, path)
    back = load_checkpoint(path).model
    assert back.config == model.config and back.config.guidance == model.config.guidance
    for k, v in model.state_dict().items():
        assert torch.equal(v, back.state_dict()[k]), k


def test_guidance_memory_estimate_counts_the_cached_biases():
    model = _small_msgd()
    # levels 0..2 begin at widths 8, 8, 16 at 1/2, 1/4, 1/8: 4 bytes x (8/4 + 8/16 + 16/64)
    assert guidance_bytes_per_pixel(model) == pytest.approx(4 * (2 + 0.5 + 0.25))
    assert guidance_bytes_per_pixel(random_tiny_model()) == 0.0


def test_cli_save_guidance_writes_one_grey_map_per_scale(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    weights = tmp_path / "msgd.safetensors"
    save_checkpoint(_small_msgd(), weights)
    save_photo(tmp_path / "a.png", 45, 71)
    r = CliRunner().invoke(app, ["a.png", "--weights", str(weights), "--steps", "2", "--seed", "0",
                                 "--save-guidance", "g", "--quiet", "--json"])
    assert r.exit_code == 0, r.output
    for s in (2, 4, 8):
        im = Image.open(tmp_path / "g" / f"a_guidance_x{s}.png")
        assert im.size == (-(-71 // s), -(-45 // s)) and im.mode == "L"
    assert json.loads(r.stdout)  # the summary is still machine-readable


def test_cli_save_guidance_needs_a_guided_model(tmp_path, monkeypatch, tiny_weights):
    monkeypatch.chdir(tmp_path)
    save_photo(tmp_path / "a.png", 32, 32)
    r = CliRunner().invoke(app, ["a.png", "--weights", str(tiny_weights), "--save-guidance", "g"])
    assert r.exit_code != 0
    lines = [ln for ln in r.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "no structure guidance" in lines[0]
    assert not (tmp_path / "g").exists() and not (tmp_path / "a_deblurred.png").exists()


def test_api_guidance_maps():
    from deblurkit.api import Deblurrer

    d = Deblurrer.__new__(Deblurrer)  # a Deblurrer around a model in memory
    d.restorer, d.model_name = Restorer(_small_msgd(), CPU, tile=64), "msgd-test"
    img = (smooth_image(40, 56) * 255).astype(np.uint8)
    maps = d.guidance_maps(img)
    assert sorted(maps) == [2, 4, 8] and maps[2].shape == (20, 28) and maps[2].dtype == np.float32


@pytest.mark.parametrize("args", [["--preset", "fast"], ["--steps", "0"]])
def test_models_without_a_predictor_refuse_zero_steps(tmp_path, monkeypatch, args):
    # icDPM / MSGD sample the image itself: 0 steps would write a flat grey image.
    monkeypatch.chdir(tmp_path)
    weights = tmp_path / "msgd.safetensors"
    save_checkpoint(_small_msgd(), weights)
    save_photo(tmp_path / "a.png", 32, 32)
    r = CliRunner().invoke(app, ["a.png", "--weights", str(weights), *args])
    assert r.exit_code != 0
    lines = [ln for ln in r.output.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "has no predictor" in lines[0], r.output
    assert not (tmp_path / "a_deblurred.png").exists()


def test_bench_leaves_out_zero_step_presets_for_models_without_a_predictor(tmp_path):
    weights = tmp_path / "msgd.safetensors"
    save_checkpoint(_small_msgd(), weights)
    for i in range(2):
        save_photo(tmp_path / "sharp" / f"{i}.png", 48, 48, i)
    r = CliRunner().invoke(app, ["bench", "synthetic", "--sharp", str(tmp_path / "sharp"), "--weights", str(weights),
                                 "--presets", "blurry,fast,balanced", "--json"])
    assert r.exit_code == 0, r.output
    assert "fast left out" in r.output
    rec = json.loads(r.stdout[r.stdout.index("{"):])
    assert [m["name"] for m in rec["methods"]] == ["blurry", "balanced"]


def test_restorer_refuses_zero_steps_and_validation_logs_no_predictor_for_msgd():
    from deblurkit.train.loop import validate

    model = _small_msgd().eval()
    restorer = Restorer(model, torch.device("cpu"))
    with pytest.raises(ValueError, match="no predictor"):
        restorer.restore(torch.rand(1, 3, 32, 32), SamplingOptions(steps=0))
    pair = ((smooth_image(32, 32) * 1.0).astype(np.float32),) * 2
    scores = validate(model, [pair], torch.device("cpu"), 2, 0)
    assert "psnr_sampled" in scores and "psnr_blurry" in scores and not any("predictor" in k for k in scores)
