"""HI-Diff's parts: shapes, the latent sampler, both training stages, checkpoints."""

import math

import pytest
import torch
from typer.testing import CliRunner

from deblurkit.cli.app import app
from deblurkit.models import HIDiff, HIDiffConfig, build_model, config_from_json, tiny_hidiff_config
from deblurkit.models.hidiff import latent_schedule, reverse_chain, stage_one_loss, stage_two_loss
from deblurkit.restorer import Restorer, SamplingOptions, sample_generators
from deblurkit.tiling import TileGrid
from deblurkit.weights import load_checkpoint, save_checkpoint

from conftest import save_photo, smooth_image


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
        assert m.predict(y, prior).shape == y.shape


def test_sizes_that_are_not_a_multiple_are_refused():
    m = _model()
    assert m.multiple == 8 and HIDiffConfig().multiple == 16  # the CPU size has a 2x stem
    with pytest.raises(ValueError, match="multiples of 8"):
        m.predict(torch.zeros(1, 3, 12, 16), torch.zeros(1, 16, 16))


def test_fresh_transformer_is_the_identity_and_ignores_the_prior():
    m = build_model(tiny_hidiff_config()).eval()
    y = torch.rand(1, 3, 16, 24) * 2 - 1
    with torch.no_grad():
        assert torch.equal(m.predict(y, torch.randn(1, 16, 16)), y)


def test_trained_prior_changes_the_output():
    m = _model()
    y = torch.rand(1, 3, 16, 24) * 2 - 1
    with torch.no_grad():
        a, b = m.predict(y, torch.randn(1, 16, 16)), m.predict(y, torch.randn(1, 16, 16))
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


# ---- through the restorer, the CLI and the trainer ------------------------------------
CPU = torch.device("cpu")


def _x(h, w, seed=0):
    return torch.from_numpy(smooth_image(h, w, seed)).permute(2, 0, 1)[None]


@pytest.mark.parametrize("h,w", [(1, 1), (7, 5), (37, 53), (45, 71)])
def test_restore_at_odd_sizes(h, w):
    r = Restorer(_model(), CPU, tile=32, overlap=8)
    out = r.restore(_x(h, w), SamplingOptions(steps=3, samples=2), sample_generators(0, "a", 2, CPU))
    assert out.shape == (2, 3, h, w) and out.min() >= 0 and out.max() <= 1


def test_restore_is_reproducible_steps_zero_is_deterministic_and_samples_independent():
    r = Restorer(_model(), CPU, tile=32, overlap=8)
    x = _x(40, 56)
    opts = SamplingOptions(steps=4, samples=2)
    a = r.restore(x, opts, sample_generators(5, "k", 2, CPU))
    assert torch.equal(a, r.restore(x, opts, sample_generators(5, "k", 2, CPU)))
    assert (a[0] - a[1]).abs().max() > 1e-4  # two prior samples, two results
    one = r.restore(x, SamplingOptions(steps=4, samples=1), sample_generators(5, "k", 1, CPU))
    assert (one[0] - a[0]).abs().max() < 1e-4
    d = r.restore(x, SamplingOptions(steps=0))
    assert d.shape[0] == 1 and torch.equal(d, r.restore(x, SamplingOptions(steps=0)))


def test_prior_is_computed_once_per_image_and_shared_by_every_tile(monkeypatch):
    model = _model()
    calls, priors = [], []
    original_prior, original_predict = model.image_prior, model.predict
    monkeypatch.setattr(model, "image_prior", lambda y, noise, steps=None: calls.append(y.shape) or original_prior(y, noise, steps))
    monkeypatch.setattr(model, "predict", lambda y, prior=None: priors.append(prior.clone()) or original_predict(y, prior))
    r = Restorer(model, CPU, tile=32, overlap=8)
    r.restore(_x(48, 80), SamplingOptions(steps=5, samples=2), sample_generators(0, "k", 2, CPU))
    assert len(calls) == 1 and calls[0][-2:] == (48, 80)  # the whole image, once
    # Every tile batch sees the same two priors, sample s always under prior s.
    first = priors[0][:2]
    assert len(priors) >= 2 and all(torch.equal(p, first.repeat(p.shape[0] // 2, 1, 1)) for p in priors)


def test_large_photos_give_the_prior_a_downscaled_copy():
    from deblurkit.restorer import PRIOR_MAX_PIXELS

    r = Restorer(_model(), CPU)
    y = r._prior_input(torch.zeros(1, 3, 1500, 1000, dtype=torch.uint8))
    assert y.shape[-2] * y.shape[-1] <= PRIOR_MAX_PIXELS * 1.01 and y.shape[-2] % 8 == 0 and y.shape[-1] % 8 == 0
    assert float(y.max()) == -1.0  # black in [-1, 1]


def test_tiles_agree_at_their_seams():
    # The transformer's channel attention sees the whole tile, so the tile size changes the
    # result everywhere a little (measured on tiny random models: max 0.029, mean 0.0022 on
    # [0, 1] between 64 px and whole-image tiles), but the difference must not concentrate
    # at the tile borders: the blend hides them.
    model = _model()
    x = _x(96, 160)
    opts = SamplingOptions(steps=4, samples=1)
    whole = Restorer(model, CPU, tile=256).restore(x, opts, sample_generators(1, "x", 1, CPU))
    tiled = Restorer(model, CPU, tile=64, overlap=24).restore(x, opts, sample_generators(1, "x", 1, CPU))
    err = (whole - tiled).abs()
    assert err.max() < 0.05 and err.mean() < 0.005
    grid = TileGrid.build(96, 160, 64, 24)
    borders = sorted({l for _, l in grid.boxes if l > 0} | {l + 64 for _, l in grid.boxes if l + 64 < 160})
    col = err.mean(dim=(0, 1, 2))
    off = col[[c for c in range(160) if all(abs(c - b) > 4 for b in borders)]].mean()
    assert col[borders].mean() < 2 * off + 1e-4


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("hidiff-data")
    for i in range(3):
        save_photo(root / "sharp" / f"s{i}.png", 80, 96, i)
        save_photo(root / "val" / f"v{i}.png", 72, 72, 10 + i)
    return root


def _train(root, out, steps, stage=1, init=None, resume=False):
    from deblurkit.train import DataSpec, TrainConfig, train

    cfg = TrainConfig(out=str(out), data=[DataSpec(str(root / "sharp"), "sharp")], val=str(root / "val"), val_crop=48,
                      arch="hidiff", size="tiny", steps=steps, batch=2, crop=32, warmup=2, log_every=1, val_every=3,
                      ckpt_every=2, device="cpu", stage=stage, init=str(init) if init else None)
    return train(cfg, resume=resume)


def test_both_training_stages_and_an_exact_resume(data, tmp_path):
    one = _train(data, tmp_path / "s1", 3)
    assert one.steps_done == 3 and math.isfinite(one.last_loss)
    # Stage two from stage one: LE is frozen, so it stays exactly stage one's.
    full = _train(data, tmp_path / "s2", 4, stage=2, init=tmp_path / "s1" / "ema.safetensors")
    s1 = load_checkpoint(tmp_path / "s1" / "ema.safetensors").model.state_dict()
    s2 = load_checkpoint(tmp_path / "s2" / "model.safetensors").model.state_dict()
    assert all(torch.equal(s1[k], s2[k]) for k in s1 if k.startswith("encoder."))
    assert any(not torch.equal(s1[k], s2[k]) for k in s1 if k.startswith("latent_denoiser."))
    assert math.isfinite(full.last_loss)
    # Stopped after 2 steps and resumed to 4: the same weights as the straight run.
    _train(data, tmp_path / "split", 2, stage=2, init=tmp_path / "s1" / "ema.safetensors")
    _train(data, tmp_path / "split", 4, stage=2, init=tmp_path / "s1" / "ema.safetensors", resume=True)
    a = load_checkpoint(tmp_path / "split" / "model.safetensors").model.state_dict()
    for k, v in s2.items():
        assert torch.equal(v, a[k]), k


def test_cli_flags_that_do_not_apply_are_errors(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    weights = tmp_path / "h.safetensors"
    save_checkpoint(_model(), weights)
    save_photo(tmp_path / "a.png", 40, 48)
    run = lambda *a: CliRunner().invoke(app, ["a.png", "--weights", str(weights), "--quiet", *a])  # noqa: E731
    for flags, what in ((["--noise-ceiling", "0.3"], "--noise-ceiling"), (["--sampler", "ddim"], "--sampler"),
                        (["--steps", "8", "--save-trajectory", "t"], "--save-trajectory")):
        r = run(*flags)
        assert r.exit_code == 2 and what in r.output and len(r.output.strip().splitlines()) == 1, r.output
    assert not (tmp_path / "a_deblurred.png").exists()
    # --steps sets the prior chain's T; several samples average over priors; std works.
    r = run("--steps", "2", "--samples", "2", "--average", "--std", "--seed", "1")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "a_deblurred.png").exists() and (tmp_path / "a_deblurred_std.png").exists()


def test_cli_train_stage_flags(tmp_path, data):
    r = CliRunner().invoke(app, ["train", "--arch", "hidiff", "--size", "tiny", "--stage", "2", "--sharp", str(data / "sharp"),
                                 "--out", str(tmp_path / "x")])
    assert r.exit_code == 2 and "--init" in r.output
    r = CliRunner().invoke(app, ["train", "--arch", "dvsr", "--size", "tiny", "--stage", "1", "--sharp", str(data / "sharp"),
                                 "--out", str(tmp_path / "x")])
    assert r.exit_code == 2 and "--stage is for --arch hidiff" in r.output


def test_bench_presets_grid_and_speed_for_a_latent_prior_model(tmp_path):
    import json

    from PIL import Image

    weights = tmp_path / "h.safetensors"
    save_checkpoint(_model(), weights)
    for i in range(2):
        save_photo(tmp_path / "b" / f"{i}.png", 200, 200, i)  # NIQE (for the plot) needs 2 blocks of 96 px
        save_photo(tmp_path / "s" / f"{i}.png", 200, 200, 10 + i)
    pairs = ["bench", "pairs", "--blur", str(tmp_path / "b"), "--sharp", str(tmp_path / "s"), "--weights", str(weights), "--limit", "1"]
    r = CliRunner().invoke(app, [*pairs, "--presets", "blurry,fast,balanced", "-o", str(tmp_path / "p.json")])
    assert r.exit_code == 0, r.output
    steps = {m["name"]: m["steps"] for m in json.loads((tmp_path / "p.json").read_text())["methods"]}
    assert steps == {"blurry": -1, "fast": 0, "balanced": 4}  # a preset's steps mean the model's own T
    # The paper's ablation over T: one point per T, plus the deterministic path.
    r = CliRunner().invoke(app, [*pairs, "--grid", "1,2,4:0.5", "-o", str(tmp_path / "g.json"), "--plot", str(tmp_path / "g.png")])
    assert r.exit_code == 0, r.output
    names = [m["name"] for m in json.loads((tmp_path / "g.json").read_text())["methods"]]
    assert names == ["blurry", "deterministic", "T=1", "T=2", "T=4"] and Image.open(tmp_path / "g.png").size == (900, 640)
    r = CliRunner().invoke(app, [*pairs, "--sweep"])
    assert r.exit_code == 2 and "--grid" in r.output
    r = CliRunner().invoke(app, ["bench", "speed", "--weights", str(weights), "--sizes", "64x48", "--steps", "2",
                                 "--presets", "fast,balanced", "-o", str(tmp_path / "s.json")])
    assert r.exit_code == 0, r.output
    rec = json.loads((tmp_path / "s.json").read_text())
    assert rec["sizes"][0]["predictor_gflop"] >= 0 and rec["presets"]["balanced"]["seconds_per_image"] > 0
    # A prior step is microseconds: no rate below the timing noise (it read 2e6 GFLOP/s once).
    rate = rec["sizes"][0]["denoiser_gflops"]
    assert rate is None or rate < 1e4
