"""`deblur train` end to end on tiny data: steps, exact resume, export, and DDP on gloo."""

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from deblurkit.cli.app import app
from deblurkit.errors import UsageError
from deblurkit.train import DataSpec, TrainConfig, train
from deblurkit.weights import load_checkpoint, read_metadata

from conftest import save_photo


_png = save_photo


@pytest.fixture(scope="module")
def data_dirs(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    for i in range(3):
        _png(root / "sharp" / f"s{i}.png", 80, 96, i)
        _png(root / "val" / f"v{i}.png", 72, 72, 10 + i)
        _png(root / "gopro" / "SEQ" / "sharp" / f"{i:06d}.png", 64, 80, 20 + i)
        _png(root / "gopro" / "SEQ" / "blur" / f"{i:06d}.png", 64, 80, 30 + i)
    (root / "sharp" / "broken.png").write_text("not an image")
    return root


def _cfg(root, out, steps, arch="dvsr"):
    return TrainConfig(
        out=str(out), data=[DataSpec(str(root / "sharp"), "sharp", 2.0), DataSpec(str(root / "gopro"), "pairs", 1.0)],
        val=str(root / "val"), val_crop=48, val_steps=2, arch=arch, size="tiny", steps=steps, batch=2, crop=32, warmup=2,
        log_every=1, val_every=3, ckpt_every=2, device="cpu",
        # msgd: the denoising loss ramps in over the first 3 steps, so a resume crosses the ramp.
        guidance_ramp=3,
    )


def _state(path):
    return {k: v.clone() for k, v in load_checkpoint(path).model.state_dict().items()}


@pytest.mark.parametrize("arch", ["dvsr", "msgd"])
def test_train_resume_is_exact_and_export_is_slim(data_dirs, tmp_path, arch):
    with pytest.warns(UserWarning, match="broken.png"):
        full = train(_cfg(data_dirs, tmp_path / "full", 4, arch))
    assert full.steps_done == 4 and np.isfinite(full.last_loss)
    log = [json.loads(line) for line in (tmp_path / "full" / "log.jsonl").read_text().splitlines()]
    assert any("val" in r for r in log) and any("loss" in r for r in log)
    # MSGD has no predictor: its validation logs none rather than the PSNR of a grey image.
    runs = {"psnr_blurry", "psnr_sampled"} | ({"psnr_predictor"} if arch == "dvsr" else set())
    assert runs == {k for k in next(r["val"] for r in log if "val" in r) if k.startswith("psnr_")}

    with pytest.warns(UserWarning):
        train(_cfg(data_dirs, tmp_path / "split", 2, arch))
    cfg = _cfg(data_dirs, tmp_path / "split", 4, arch)
    with pytest.warns(UserWarning):
        resumed = train(cfg, resume=True)
    assert resumed.steps_done == 4
    # The resumed part starts where the checkpoint stopped: steps 3 and 4 only, once each
    # (a resume that restarted from 0 would reach the same weights with these seeds).
    lines = [json.loads(x) for x in (tmp_path / "split" / "log.jsonl").read_text().splitlines()]
    first_end = next(i for i, r in enumerate(lines) if r.get("event") == "end")
    assert [r["step"] for r in lines[first_end + 1 :] if "loss" in r] == [3, 4]
    for name in ("model.safetensors", "ema.safetensors"):
        a, b = _state(tmp_path / "full" / name), _state(tmp_path / "split" / name)
        assert a.keys() == b.keys()
        for k in a:
            assert torch.equal(a[k], b[k]), k

    out = tmp_path / "slim.safetensors"
    r = CliRunner().invoke(app, ["export", str(tmp_path / "full"), "-o", str(out)])
    assert r.exit_code == 0, r.output
    info = json.loads(read_metadata(out)["deblur.info"])
    assert info["step"] == 4 and "train_config" in info
    assert out.stat().st_size <= (tmp_path / "full" / "ema.safetensors").stat().st_size


def test_an_existing_run_is_never_replaced_without_being_asked(data_dirs, tmp_path):
    cfg = _cfg(data_dirs, tmp_path / "run", 2)
    cfg.val = None
    with pytest.warns(UserWarning):
        train(cfg)
    before = {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir()}
    with pytest.raises(UsageError, match="--resume .* --overwrite"):
        train(cfg)
    assert {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir()} == before
    args = ["train", "--sharp", str(data_dirs / "sharp"), "--size", "tiny", "--steps", "2", "--batch", "2", "--crop", "32",
            "--device", "cpu", "--out", str(tmp_path / "run")]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 2 and "--resume" in r.output and "--overwrite" in r.output
    assert {p.name: p.read_bytes() for p in (tmp_path / "run").iterdir()} == before
    r = CliRunner().invoke(app, [*args, "--overwrite", "--log-every", "1"])
    assert r.exit_code == 0, r.output
    log = [json.loads(x) for x in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert sum(1 for x in log if x.get("event") == "end") == 1  # a fresh log, not both runs mixed


def test_resume_with_a_damaged_state_is_one_line(data_dirs, tmp_path):
    cfg = _cfg(data_dirs, tmp_path / "run", 2)
    cfg.val = None
    with pytest.warns(UserWarning):
        train(cfg)
    (tmp_path / "run" / "state.pt").write_bytes(b"\x80\x04garbage")
    r = CliRunner().invoke(app, ["train", "--sharp", str(data_dirs / "sharp"), "--size", "tiny", "--steps", "4", "--batch", "2",
                                 "--crop", "32", "--device", "cpu", "--out", str(tmp_path / "run"), "--resume"])
    assert r.exit_code == 3, r.output
    assert "state.pt: damaged training state" in r.output and "Traceback" not in r.output


def test_pairs_smaller_than_the_crop_say_so(data_dirs, tmp_path):
    r = CliRunner().invoke(app, ["train", "--pairs", str(data_dirs / "gopro"), "--size", "tiny", "--crop", "128",
                                 "--steps", "1", "--device", "cpu", "--out", str(tmp_path / "o")])
    assert r.exit_code != 0 and "smaller than the 128x128 training crop" in r.output


def test_fourier_levels_train_from_a_plain_checkpoint_and_are_recorded(data_dirs, tmp_path):
    plain = _cfg(data_dirs, tmp_path / "plain", 2)
    plain.val = None
    with pytest.warns(UserWarning):
        train(plain)
    args = ["train", "--sharp", str(data_dirs / "sharp"), "--size", "tiny", "--steps", "2", "--batch", "2", "--crop", "32",
            "--device", "cpu", "--phase", "predictor", "--init", str(tmp_path / "plain" / "ema.safetensors")]
    r = CliRunner().invoke(app, [*args, "--fourier-levels", "1", "--out", str(tmp_path / "f")])
    assert r.exit_code == 0, r.output
    model = load_checkpoint(tmp_path / "f" / "ema.safetensors").model
    assert model.config.predictor.fourier_levels == (1,)
    assert any(".fourier." in k for k in model.state_dict())
    assert "initialised" in r.output and "from" in r.output
    for flag, bad, why in (("--fourier-levels", "1,x", "comma-separated level numbers"),
                           ("--fourier-levels", "5", "fourier_levels must be"), ("--predictor-scales", "7", "[1, 4]")):
        r = CliRunner().invoke(app, [*args, flag, bad, "--out", str(tmp_path / "bad")])
        assert r.exit_code == 2 and why in r.output and "Traceback" not in r.output
        assert not (tmp_path / "bad").exists()
    r = CliRunner().invoke(app, [*args, "--predictor-scales", "2", "--out", str(tmp_path / "c2f")])
    assert r.exit_code == 0, r.output
    model = load_checkpoint(tmp_path / "c2f" / "ema.safetensors").model
    assert model.config.predictor_scales == 2 and model.config.predictor.in_channels == 6
    r = CliRunner().invoke(app, [*args, "--predictor-scales", "2", "--separate-scales", "--out", str(tmp_path / "sep")])
    assert r.exit_code == 0, r.output
    model = load_checkpoint(tmp_path / "sep" / "ema.safetensors").model
    assert model.config.separate_scale_predictors and len(model.predictor_coarse) == 1
    r = CliRunner().invoke(app, [*args, "--separate-scales", "--out", str(tmp_path / "bad")])
    assert r.exit_code == 2 and "--separate-scales needs --predictor-scales" in r.output and not (tmp_path / "bad").exists()


def test_cli_train_rejects_missing_data(tmp_path):
    r = CliRunner().invoke(app, ["train", "--sharp", str(tmp_path / "nope"), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "training data folder not found" in r.output


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_ddp_two_cpu_processes_end_with_identical_weights(data_dirs, tmp_path):
    worker = Path(__file__).with_name("ddp_worker.py")
    env = dict(os.environ, OMP_NUM_THREADS="1")
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node=2", "--master_addr=127.0.0.1",
           f"--master_port={_free_port()}", str(worker), str(data_dirs), str(tmp_path)]
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{i}.json").read_text()) for i in range(2)]
    assert all(np.isfinite(x["loss"]) for x in ranks)
    assert ranks[0]["sha"] == ranks[1]["sha"]
    assert ranks[0]["world"] == 2


def test_non_finite_loss_stops_and_keeps_the_last_good_checkpoint(data_dirs, tmp_path, monkeypatch):
    from deblurkit.train import NonFiniteLoss
    from deblurkit.train import loop

    real = loop.training_loss
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        loss = real(*args, **kwargs)
        return loss * float("nan") if calls["n"] == 3 else loss

    monkeypatch.setattr(loop, "training_loss", flaky)
    cfg = _cfg(data_dirs, tmp_path / "nan", 6)
    cfg.val = None
    with pytest.warns(UserWarning):
        with pytest.raises(NonFiniteLoss, match="non-finite loss at step 2"):
            train(cfg)
    info = json.loads(read_metadata(tmp_path / "nan" / "model.safetensors")["deblur.info"])
    assert info["step"] == 2  # the checkpoint from before the bad step survives
    assert all(torch.isfinite(v).all() for v in _state(tmp_path / "nan" / "model.safetensors").values())


def test_train_help_describes_every_option_with_its_default(monkeypatch):
    from dataclasses import fields

    from deblurkit.cli.train import TRAIN_DEFAULTS
    from deblurkit.train.config import TrainConfig

    defaults = {f.name: f.default for f in fields(TrainConfig)}
    assert all(defaults[k] == v for k, v in TRAIN_DEFAULTS.items())
    monkeypatch.setenv("COLUMNS", "200")
    r = CliRunner().invoke(app, ["train", "--help"])
    assert r.exit_code == 0
    for flag, value in (("--steps", "10000"), ("--batch", "8"), ("--lr", "0.0002"), ("--val-every", "500"),
                        ("--ckpt-every", "250"), ("--log-every", "10")):
        row = next(line for line in r.output.splitlines() if f"{flag} " in line)
        assert f"[default: {value}]" in row, row
    for flag in ("--val-every", "--ckpt-every", "--log-every", "--debug"):
        row = next(line for line in r.output.splitlines() if f"{flag} " in line)
        assert len(row.split(flag, 1)[1].strip(" │<int>")) > 10, row  # a description, not just the name


def test_objective_override_switches_the_noise_embedding_with_it():
    from deblurkit.train.config import EDM_EMBED_SCALE, model_size

    eps = model_size("msgd", "small")
    edm = model_size("msgd", "small", objective="edm")
    assert eps.objective == "eps" and edm.objective == "edm"
    assert edm.denoiser.embed_scale == EDM_EMBED_SCALE != eps.denoiser.embed_scale
    assert edm.guidance == eps.guidance and edm.residual_std == eps.residual_std
    assert model_size("dvsr", "medium", objective="eps").denoiser.embed_scale == eps.denoiser.embed_scale
    assert model_size("icdpm", "small", objective=None) == model_size("icdpm", "small")
    with pytest.raises(UsageError, match="--objective"):
        model_size("icdpm", "small", objective="v")
    with pytest.raises(UsageError, match="--objective"):
        model_size("hidiff", "small", objective="edm")


def test_cli_train_rejects_an_unknown_objective(data_dirs, tmp_path):
    r = CliRunner().invoke(app, ["train", "--sharp", str(data_dirs / "sharp"), "--objective", "v", "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "--objective v" in r.output


def test_kernel_aware_training_on_precomputed_deconvolutions(data_dirs, tmp_path):
    from deblurkit.data.datasets import SharpFolder, Source
    from deblurkit.data.deconv_pack import DeconvSamples, draw_sample, write_shard

    sources = [Source(SharpFolder(data_dirs / "sharp", 48), 1.0)]
    write_shard(tmp_path / "dc" / "deconv-000000.npz", sources, 5, [0, 1])
    write_shard(tmp_path / "dc" / "deconv-000002.npz", sources, 5, [2])
    samples = DeconvSamples(tmp_path / "dc", 32)
    assert len(samples) == 3
    sharp, inputs = samples.sample(np.random.default_rng(0))
    assert sharp.shape == (32, 32, 3) and inputs.shape == (32, 32, 6)
    # A crop depends only on (seed, index): the stored one is the one drawn again.
    with np.load(tmp_path / "dc" / "deconv-000002.npz") as z:
        x, y = draw_sample(sources, 5, 2)
        np.testing.assert_array_equal(z["sharp"][0], np.round(x * 255).astype(np.uint8))
        np.testing.assert_allclose(z["blurry"][0], y, atol=1e-3)
        assert np.abs(z["deconv"][0].astype(np.float32) - y).max() > 1e-2  # deconvolved, not a copy
    args = ["train", "--size", "tiny", "--steps", "2", "--batch", "2", "--crop", "32", "--device", "cpu",
            "--phase", "predictor", "--predictor-scales", "2"]
    r = CliRunner().invoke(app, [*args, "--deconv", str(tmp_path / "dc"), "--deconv-input", "--out", str(tmp_path / "ka")])
    assert r.exit_code == 0, r.output
    model = load_checkpoint(tmp_path / "ka" / "ema.safetensors").model
    assert model.config.deconv_input and model.config.predictor.in_channels == 9
    r = CliRunner().invoke(app, [*args, "--deconv", str(tmp_path / "dc"), "--deconv-input", "--deconv-gate",
                                 "--init", str(tmp_path / "ka" / "ema.safetensors"), "--out", str(tmp_path / "gate")])
    assert r.exit_code == 0 and "initialised" in r.output, r.output
    model = load_checkpoint(tmp_path / "gate" / "ema.safetensors").model
    assert model.config.deconv_gate and model.config.predictor.out_channels == 4
    # --deconv-gate-start: the run starts with the gate at that value (one step moves it a little).
    r = CliRunner().invoke(app, [*args, "--deconv", str(tmp_path / "dc"), "--deconv-input", "--deconv-gate", "--deconv-gate-start", "1",
                                 "--init", str(tmp_path / "ka" / "ema.safetensors"), "--out", str(tmp_path / "open")])
    assert r.exit_code == 0, r.output
    for run, want in (("gate", 0.0), ("open", 1.0)):
        tail = load_checkpoint(tmp_path / run / "model.safetensors").model.predictor.tail
        per = tail.out_channels // 4
        assert abs(float(tail.bias[3 * per:4 * per].mean()) - want) < 0.05, (run, tail.bias)
    (tmp_path / "empty").mkdir()
    for extra, code, why in ((["--deconv", str(tmp_path / "dc")], 2, "add --deconv-input"),
                             (["--deconv-gate", "--sharp", str(data_dirs / "sharp")], 2, "--deconv-gate weighs the deconvolution"),
                             (["--deconv-input", "--sharp", str(data_dirs / "sharp")], 2, "--deconv data only"),
                             (["--deconv-input", "--deconv", str(tmp_path / "empty")], 1, "no deconvolved training shards")):
        r = CliRunner().invoke(app, [*args, *extra, "--out", str(tmp_path / "bad")])
        assert r.exit_code == code and why in r.output and "Traceback" not in r.output, r.output


def test_noise_rule_pack_trains_only_a_model_that_deconvolves_the_same_way(data_dirs, tmp_path):
    # A model computes its deconvolution at run time: it must use the rule its training
    # crops were deconvolved with, so the pack records the rule and training checks it.
    pack = ["deconv-pack", "--count", "2", "--sharp", str(data_dirs / "sharp"), "--crop", "48", "--seed", "4"]
    assert CliRunner().invoke(app, [*pack, "--wiener", "noise", str(tmp_path / "noisy")]).exit_code == 0
    assert CliRunner().invoke(app, [*pack, str(tmp_path / "fixed")]).exit_code == 0
    with np.load(next((tmp_path / "noisy").glob("deconv-*.npz"))) as a, np.load(next((tmp_path / "fixed").glob("deconv-*.npz"))) as b:
        assert str(a["wiener"]) == "noise" and str(b["wiener"]) == "fixed"
        np.testing.assert_array_equal(a["blurry"], b["blurry"])  # the same crops ...
        assert np.abs(a["deconv"].astype(np.float32) - b["deconv"].astype(np.float32)).max() > 1e-3  # ... deconvolved otherwise
        # Each crop's kernel is kept (sum 1, one per crop), so another rule can reuse it.
        assert a["kernel"].shape[0] == 2 and np.allclose(a["kernel"].sum(axis=(1, 2)), 1, atol=1e-4)
        assert a["fell_back"].dtype == bool and not a["fell_back"].any()  # only the guarded rule falls back
    r = CliRunner().invoke(app, [*pack, str(tmp_path / "noisy")])  # resuming with another rule
    assert r.exit_code == 2 and "made with --wiener noise" in r.output, r.output
    args = ["train", "--size", "tiny", "--steps", "1", "--batch", "2", "--crop", "32", "--device", "cpu",
            "--phase", "predictor", "--deconv-input"]
    r = CliRunner().invoke(app, [*args, "--deconv", str(tmp_path / "noisy"), "--deconv-wiener", "noise", "--out", str(tmp_path / "ok")])
    assert r.exit_code == 0, r.output
    assert load_checkpoint(tmp_path / "ok" / "ema.safetensors").model.config.deconv_wiener == "noise"
    for extra, why in ((["--deconv", str(tmp_path / "noisy")], "deconvolved with --wiener noise"),
                       (["--deconv", str(tmp_path / "fixed"), "--deconv-wiener", "noise"], "deconvolved with --wiener fixed"),
                       (["--deconv", str(tmp_path / "fixed"), "--deconv-wiener", "loud"], "--deconv-wiener loud")):
        r = CliRunner().invoke(app, [*args, *extra, "--out", str(tmp_path / "bad")])
        assert r.exit_code == 2 and why in r.output and "Traceback" not in r.output, r.output
    # The guarded rule: recorded like the others, and a model trained on it deconvolves with it.
    assert CliRunner().invoke(app, [*pack, "--wiener", "guarded", str(tmp_path / "guarded")]).exit_code == 0
    with np.load(next((tmp_path / "guarded").glob("deconv-*.npz"))) as g:
        assert str(g["wiener"]) == "guarded" and g["fell_back"].shape == (2,)
        for deconv, blurry, fell in zip(g["deconv"], g["blurry"], g["fell_back"]):  # a fallback stores the input itself
            assert (np.abs(deconv.astype(np.float32) - blurry.astype(np.float32)).max() < 1e-3) == fell
    r = CliRunner().invoke(app, [*args, "--deconv", str(tmp_path / "guarded"), "--deconv-wiener", "guarded", "--out", str(tmp_path / "g")])
    assert r.exit_code == 0 and load_checkpoint(tmp_path / "g" / "ema.safetensors").model.config.deconv_wiener == "guarded", r.output
    # Shards of both rules in one folder are refused.
    (tmp_path / "fixed" / "deconv-000000-of-2-seed4.npz").rename(tmp_path / "noisy" / "deconv-000001-mixed.npz")
    r = CliRunner().invoke(app, [*args, "--deconv", str(tmp_path / "noisy"), "--deconv-wiener", "noise", "--out", str(tmp_path / "bad2")])
    assert r.exit_code == 1 and "different Wiener rules" in r.output, r.output


def test_deconv_pack_command_writes_resumable_shards_that_agree_across_processes(data_dirs, tmp_path):
    args = ["deconv-pack", "--count", "3", "--sharp", str(data_dirs / "sharp"), "--crop", "48", "--chunk", "2", "--seed", "4"]
    r = CliRunner().invoke(app, [*args, str(tmp_path / "one")])
    assert r.exit_code == 0, r.output
    files = sorted(p.name for p in (tmp_path / "one").glob("deconv-*.npz"))
    assert files == ["deconv-000000-of-3-seed4.npz", "deconv-000002-of-3-seed4.npz"]
    r = CliRunner().invoke(app, [*args, str(tmp_path / "one")])
    assert r.exit_code == 0 and "0 shard(s) written, 2 already there" in r.output
    for s in ("0/2", "1/2"):  # two processes, one crop each per chunk
        assert CliRunner().invoke(app, [*args, "--shard", s, str(tmp_path / "two")]).exit_code == 0
    with np.load(tmp_path / "one" / "deconv-000000-of-3-seed4.npz") as a, np.load(tmp_path / "two" / "deconv-000001-of-3-seed4.npz") as b:
        assert list(a["index"]) == [0, 1] and list(b["index"]) == [1]
        np.testing.assert_array_equal(a["sharp"][1], b["sharp"][0])
        np.testing.assert_array_equal(a["deconv"][1], b["deconv"][0])
    for extra, why in ((["--shard", "2/2"], "0 <= I < N"), (["--shard", "x"], "expected I/N"),
                       (["--blur-model", "nope"], "unknown blur model")):
        r = CliRunner().invoke(app, [*args, *extra, str(tmp_path / "bad")])
        assert r.exit_code == 2 and why in r.output and not (tmp_path / "bad").exists(), r.output


def test_a_gate_started_open_predicts_the_deconvolution(data_dirs, tmp_path):
    """--deconv-gate-start 1: a fresh gated predictor (zero tail) gives g(y) = deconv exactly."""
    from dataclasses import replace

    from deblurkit.models import build_model
    from deblurkit.models.config import tiny_config
    from deblurkit.train.loop import start_gate

    base = tiny_config("dvsr")
    cfg = replace(base, deconv_input=True, deconv_gate=True,
                  predictor=replace(base.predictor, in_channels=6, out_channels=4))
    model = build_model(cfg).eval()
    y, d = torch.rand(1, 3, 32, 32) * 2 - 1, torch.rand(1, 3, 32, 32) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(model.predict(torch.cat([y, d], 1)), y)  # gate 0: the input
        start_gate(model, 1.0)
        torch.testing.assert_close(model.predict(torch.cat([y, d], 1)), d)
    args = ["train", "--size", "tiny", "--steps", "1", "--batch", "2", "--crop", "32", "--device", "cpu",
            "--sharp", str(data_dirs / "sharp"), "--deconv-gate-start", "1", "--out", str(tmp_path / "bad")]
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 2 and "add --deconv-gate" in r.output, r.output


def test_deconv_pack_refuses_a_crop_mismatch_a_bad_seed_and_junk_shards(data_dirs, tmp_path):
    args = ["deconv-pack", "--count", "2", "--sharp", str(data_dirs / "sharp"), "--seed", "4"]
    assert CliRunner().invoke(app, [*args, "--crop", "48", str(tmp_path / "p")]).exit_code == 0
    # Resumed with another --crop: refused, naming the shard (not mixed into the folder).
    r = CliRunner().invoke(app, [*args, "--crop", "40", str(tmp_path / "p")])
    assert r.exit_code == 2 and "made with --crop 48" in r.output and "deconv-000000" in r.output, r.output
    r = CliRunner().invoke(app, [*args[:-2], "--seed", "-1", "--crop", "48", str(tmp_path / "q")])
    assert r.exit_code == 2 and "--seed -1: must be in [0, 2^64)" in r.output and "Traceback" not in r.output, r.output
    train_args = ["train", "--size", "tiny", "--steps", "1", "--batch", "2", "--crop", "32", "--device", "cpu",
                  "--phase", "predictor", "--deconv-input"]
    # Shards of two crop sizes in one folder (made by hand): the odd one is named.
    assert CliRunner().invoke(app, [*args, "--crop", "40", str(tmp_path / "small")]).exit_code == 0
    (tmp_path / "small" / "deconv-000000-of-2-seed4.npz").rename(tmp_path / "p" / "deconv-000009-small.npz")
    r = CliRunner().invoke(app, [*train_args, "--deconv", str(tmp_path / "p"), "--out", str(tmp_path / "r1")])
    assert r.exit_code == 1 and "deconv-000009-small.npz: crops of 40 px among shards of 48 px" in r.output, r.output
    # A junk shard (pickled objects, or not a zip at all): one line naming the file.
    (tmp_path / "junk").mkdir()
    np.save(tmp_path / "junk" / "x.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    (tmp_path / "junk" / "x.npy").rename(tmp_path / "junk" / "deconv-000000-junk.npz")
    r = CliRunner().invoke(app, [*train_args, "--deconv", str(tmp_path / "junk"), "--out", str(tmp_path / "r2")])
    assert r.exit_code == 1 and "deconv-000000-junk.npz: not a deconvolved training shard" in r.output, r.output
    assert len(r.output.strip().splitlines()) == 1


def test_resume_refuses_other_options_and_gate_start_must_be_finite(data_dirs, tmp_path):
    base = ["train", "--size", "tiny", "--steps", "2", "--batch", "2", "--device", "cpu", "--phase", "predictor",
            "--sharp", str(data_dirs / "sharp"), "--ckpt-every", "1", "--out", str(tmp_path / "run")]
    assert CliRunner().invoke(app, [*base, "--crop", "32", "--steps", "1"]).exit_code == 0
    # Another --crop would no longer be the uninterrupted run: refused, naming the option.
    r = CliRunner().invoke(app, [*base, "--crop", "48", "--resume"])
    assert r.exit_code == 2 and "other --crop (32 there, 48 now)" in r.output and "Traceback" not in r.output, r.output
    # A checkpoint of another shape (gated, resumed without the gate): exit 3, the option named.
    pack = ["deconv-pack", "--count", "2", "--sharp", str(data_dirs / "sharp"), "--crop", "48", "--seed", "4", str(tmp_path / "dc")]
    assert CliRunner().invoke(app, pack).exit_code == 0
    gated = ["train", "--size", "tiny", "--steps", "1", "--batch", "2", "--crop", "32", "--device", "cpu", "--phase", "predictor",
             "--deconv-input", "--deconv", str(tmp_path / "dc"), "--out", str(tmp_path / "gated")]
    assert CliRunner().invoke(app, [*gated, "--deconv-gate"]).exit_code == 0
    r = CliRunner().invoke(app, [*gated, "--steps", "2", "--resume"])
    assert r.exit_code == 3 and "other --deconv-gate" in r.output and "size mismatch" not in r.output, r.output
    assert len(r.output.strip().splitlines()) == 1
    for bad in ("nan", "inf", "-inf"):
        r = CliRunner().invoke(app, [*gated, "--deconv-gate", "--deconv-gate-start", bad, "--out", str(tmp_path / "nan")])
        assert r.exit_code == 2 and "must be a finite number" in r.output and not (tmp_path / "nan").exists(), r.output


def test_a_non_finite_first_step_claims_no_checkpoint(data_dirs, tmp_path, monkeypatch):
    from deblurkit.train import NonFiniteLoss
    from deblurkit.train import loop

    real = loop.training_loss
    monkeypatch.setattr(loop, "training_loss", lambda *a, **k: real(*a, **k) * float("nan"))
    cfg = _cfg(data_dirs, tmp_path / "nan0", 3)
    cfg.val = None
    with pytest.warns(UserWarning):
        with pytest.raises(NonFiniteLoss, match="no checkpoint was written yet") as e:
            train(cfg)
    assert "kept" not in str(e.value) and not (tmp_path / "nan0" / "state.pt").exists()


def test_a_run_stopped_by_ctrl_c_exits_130_with_its_checkpoint(data_dirs, tmp_path):
    import signal
    import time

    args = [sys.executable, "-m", "deblurkit", "train", "--size", "tiny", "--steps", "100000", "--batch", "2", "--crop", "32",
            "--device", "cpu", "--phase", "predictor", "--sharp", str(data_dirs / "sharp"), "--log-every", "1",
            "--out", str(tmp_path / "run")]
    proc = subprocess.Popen(args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True)
    try:
        deadline = time.time() + 120
        for line in proc.stderr:  # wait until training runs
            if line.startswith("step 2/") or time.time() > deadline:
                break
        proc.send_signal(signal.SIGINT)
        rest = proc.stderr.read()
        proc.wait(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130 and "checkpoint saved" in rest, rest
    assert (tmp_path / "run" / "state.pt").is_file()


def test_kernel_path_crops_are_shifted_onto_their_deconvolution(monkeypatch):
    # An estimated kernel is centred on its mass, the true one need not be: the crop's
    # deconvolution then sits off the sharp crop, and the pack shifts the sharp crop onto it.
    import deblurkit.kernel_path as kp
    from deblurkit.data.deconv_pack import kernel_path_sample
    import cv2

    from deblurkit.data.blur import convolve

    rng = np.random.default_rng(3)
    x = cv2.GaussianBlur(rng.random((112, 112, 3)).astype(np.float32), (0, 0), 1.5)
    x = (x - x.min()) / (x.max() - x.min())
    true = np.zeros((15, 15), np.float32)
    true[7, 9:14] = 0.2  # a short line 4 px right of the kernel's centre
    y = np.clip(convolve(x, true), 0, 1).astype(np.float32)
    centred = np.zeros((5, 5))
    centred[2, :] = 0.2  # the same line about its own centre, as an estimate returns it
    monkeypatch.setattr(kp, "decide", lambda image, choice, **_: kp.KernelReport("kernel", centred, "test"))
    xs, ys, ds, k = kernel_path_sample(x, y, window=8)
    assert xs.shape == ys.shape == ds.shape == (96, 96, 3) and k is centred
    torch_ = lambda a: torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1)))[None]  # noqa: E731
    from deblurkit.metrics.align import best_shift

    assert best_shift(torch_(ds), torch_(xs), 4) == (0, 0)  # aligned
    from deblurkit.deconv.photo import deconvolve_photo

    unshifted = deconvolve_photo(y, centred)[8:-8, 8:-8]
    assert np.mean((ds - xs) ** 2) < 0.5 * np.mean((unshifted - xs) ** 2)  # closer than the unshifted pair
    np.testing.assert_array_equal(ys, y[8:-8, 12:-4])  # the blurry crop moved with d (4 px, the line's offset)
    monkeypatch.setattr(kp, "decide", lambda image, choice, **_: kp.KernelReport("blind", None, "test"))
    assert kernel_path_sample(x, y, window=8) is None  # a crop the kernel path would not take


def test_the_refiner_trains_alone_on_kernel_path_crops(data_dirs, tmp_path, monkeypatch):
    import deblurkit.kernel_path as kp

    # Every crop takes the kernel path with a short line kernel (the estimator on 64 px test
    # images is not what is tested here).
    line = np.zeros((5, 5))
    line[2, :] = 0.2
    monkeypatch.setattr(kp, "decide", lambda image, choice, **_: kp.KernelReport("kernel", line, "test"))
    pack = ["deconv-pack", "--count", "4", "--sharp", str(data_dirs / "sharp"), "--crop", "64", "--seed", "4", "--estimate", "photo"]
    r = CliRunner().invoke(app, [*pack, str(tmp_path / "photo")])
    assert r.exit_code == 0 and "crops on the kernel path" in r.output, r.output
    with np.load(next((tmp_path / "photo").glob("deconv-*.npz"))) as z:
        assert str(z["estimate"]) == "photo" and z["sharp"].shape[1:] == (16, 16, 3) and list(z["drawn"]) == [0, 1, 2, 3]
    r = CliRunner().invoke(app, [*pack, "--crop", "80", str(tmp_path / "photo")])  # resuming another crop size: refused
    assert r.exit_code == 2 and "made with --crop 64" in r.output, r.output
    r = CliRunner().invoke(app, [*pack[:-2], "--estimate", "crop", str(tmp_path / "photo")])
    assert r.exit_code == 2 and "made with --estimate photo" in r.output, r.output
    # Training the refiner: from --init, only the refiner changes.
    base = ["train", "--size", "tiny", "--batch", "2", "--crop", "16", "--device", "cpu", "--seed", "1"]
    r = CliRunner().invoke(app, [*base, "--steps", "1", "--phase", "predictor", "--sharp", str(data_dirs / "sharp"),
                                 "--out", str(tmp_path / "start")])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(app, [*base, "--steps", "3", "--phase", "refiner", "--deconv", str(tmp_path / "photo"),
                                 "--init", str(tmp_path / "start" / "ema.safetensors"), "--out", str(tmp_path / "ref")])
    assert r.exit_code == 0 and "by the kernel path" in r.output, r.output
    before, after = _state(tmp_path / "start" / "ema.safetensors"), _state(tmp_path / "ref" / "model.safetensors")
    assert load_checkpoint(tmp_path / "ref" / "model.safetensors").model.config.refiner is not None
    assert all(torch.equal(before[k], after[k]) for k in before)  # predictor and denoiser frozen
    assert any(after[k].abs().max() > 0 for k in after if k.startswith("refiner.tail."))  # the refiner learned
    # A later phase from this run keeps the refiner only when asked, and is refused otherwise.
    r = CliRunner().invoke(app, [*base, "--steps", "1", "--phase", "predictor", "--sharp", str(data_dirs / "sharp"),
                                 "--init", str(tmp_path / "ref" / "ema.safetensors"), "--out", str(tmp_path / "later")])
    assert r.exit_code == 2 and "add --refiner to keep it" in r.output and "Traceback" not in r.output, r.output
    r = CliRunner().invoke(app, [*base, "--steps", "1", "--phase", "predictor", "--sharp", str(data_dirs / "sharp"), "--refiner",
                                 "--init", str(tmp_path / "ref" / "ema.safetensors"), "--out", str(tmp_path / "later")])
    assert r.exit_code == 0, r.output
    kept, ref_ema = _state(tmp_path / "later" / "model.safetensors"), _state(tmp_path / "ref" / "ema.safetensors")
    assert all(torch.equal(kept[k], ref_ema[k]) for k in ref_ema if k.startswith("refiner."))  # frozen outside its phase
    # The shipped file keeps the refiner (export's fp16 check runs it on the kernel path too).
    r = CliRunner().invoke(app, ["export", str(tmp_path / "ref"), "-o", str(tmp_path / "ref.safetensors")])
    assert r.exit_code == 0 and "fp16 check (sampling, and the refiner on the kernel path)" in r.output, r.output
    shipped, ema = _state(tmp_path / "ref.safetensors"), _state(tmp_path / "ref" / "ema.safetensors")
    assert any(k.startswith("refiner.") for k in shipped)
    assert all((shipped[k].float() - ema[k].float()).abs().max() < 1e-2 for k in ema)
    # The wrong data or options for each design: one line each.
    for extra, code, why in ((["--phase", "refiner", "--sharp", str(data_dirs / "sharp")], 2, "--deconv data only"),
                             (["--deconv", str(tmp_path / "photo"), "--phase", "predictor", "--deconv-input"], 2, "for --phase refiner"),
                             (["--phase", "refiner", "--deconv", str(tmp_path / "photo"), "--deconv-input"], 2, "the other design"),
                             (["--phase", "refiner", "--deconv", str(tmp_path / "photo"), "--val", str(data_dirs / "val")], 2,
                              "bench kernels"),
                             (["--phase", "predictor", "--sharp", str(data_dirs / "sharp"), "--refiner-kernel"], 2,
                              "add --phase refiner or --refiner")):
        r = CliRunner().invoke(app, [*base, "--steps", "1", *extra, "--out", str(tmp_path / "bad")])
        assert r.exit_code == code and why in r.output and "Traceback" not in r.output, (extra, r.output)
    # A refiner told the kernel trains on each crop's kernel: its embedding, zero at its end
    # when new, has learned.
    r = CliRunner().invoke(app, [*base, "--steps", "3", "--phase", "refiner", "--refiner-kernel", "--deconv", str(tmp_path / "photo"),
                                 "--init", str(tmp_path / "start" / "ema.safetensors"), "--out", str(tmp_path / "told")])
    assert r.exit_code == 0, r.output
    told = load_checkpoint(tmp_path / "told" / "model.safetensors").model
    r = CliRunner().invoke(app, [*base, "--steps", "4", "--phase", "refiner", "--deconv", str(tmp_path / "photo"),
                                 "--out", str(tmp_path / "told"), "--resume"])  # resumed without the condition: refused
    assert r.exit_code in (2, 3) and "other --refiner-kernel" in r.output and "Traceback" not in r.output, r.output
    assert told.config.refiner.kernel_grid > 0
    assert float(told.refiner.kernel_embed[-1].weight.abs().max()) > 0
    # Shards whose kernels do not match their crops: one line naming the shard, no run folder.
    (tmp_path / "badk").mkdir()
    shard = next((tmp_path / "photo").glob("deconv-*.npz"))
    with np.load(shard) as z:
        np.savez(tmp_path / "badk" / shard.name, **{k: (z[k][:-1] if k == "kernel" else z[k]) for k in z.files})
    r = CliRunner().invoke(app, [*base, "--steps", "1", "--phase", "refiner", "--refiner-kernel", "--deconv", str(tmp_path / "badk"),
                                 "--init", str(tmp_path / "start" / "ema.safetensors"), "--out", str(tmp_path / "badrun")])
    assert r.exit_code != 0 and "not one odd square per crop" in r.output and shard.name in r.output.replace("\n", ""), r.output
    assert "Traceback" not in r.output and not (tmp_path / "badrun").exists()
    # Without --refiner-kernel the kernels are not read: the same shards train.
    r = CliRunner().invoke(app, [*base, "--steps", "1", "--phase", "refiner", "--deconv", str(tmp_path / "badk"),
                                 "--init", str(tmp_path / "start" / "ema.safetensors"), "--out", str(tmp_path / "untold")])
    assert r.exit_code == 0, r.output
    # A later phase keeps the condition only when asked, in one line otherwise (and the other way round).
    later = [*base, "--steps", "1", "--phase", "predictor", "--sharp", str(data_dirs / "sharp"), "--refiner"]
    r = CliRunner().invoke(app, [*later, "--init", str(tmp_path / "told" / "ema.safetensors"), "--out", str(tmp_path / "l1")])
    assert r.exit_code == 2 and "add --refiner-kernel" in r.output and "Traceback" not in r.output, r.output
    r = CliRunner().invoke(app, [*later, "--refiner-kernel", "--init", str(tmp_path / "ref" / "ema.safetensors"), "--out", str(tmp_path / "l2")])
    assert r.exit_code == 2 and "leave out --refiner-kernel" in r.output and "Traceback" not in r.output, r.output
    r = CliRunner().invoke(app, [*later, "--refiner-kernel", "--init", str(tmp_path / "told" / "ema.safetensors"), "--out", str(tmp_path / "l3")])
    assert r.exit_code == 0, r.output


def test_a_crops_kernel_is_turned_and_flipped_with_it():
    from deblurkit.data.blur import convolve
    from deblurkit.data.datasets import augment

    # Blurring the turned crop with the turned kernel is turning the blurred crop: the
    # refiner's kernel condition stays true to its crop under every augmentation.
    rng = np.random.default_rng(0)
    x = rng.random((24, 24, 3)).astype(np.float32)
    k = np.zeros((7, 7), np.float32)
    k[3, 3:] = [0.4, 0.3, 0.2, 0.1]  # one-sided: every turn and flip differs
    k[1, 5] = 0.1
    k /= k.sum()
    seen = set()
    for seed in range(48):
        (xa, ka), (ya,) = augment(np.random.default_rng(seed), x, k), augment(np.random.default_rng(seed), convolve(x, k))
        np.testing.assert_allclose(convolve(xa, ka)[4:-4, 4:-4], ya[4:-4, 4:-4], atol=1e-5)
        seen.add(ka.tobytes())
    assert len(seen) == 8


def test_kernel_features_centre_the_kernel_and_keep_its_mass():
    from deblurkit.models.unet import kernel_features

    # A kernel's centre pixel lands on the same pixel of the 24 px square (11: cell 2 of 6)
    # whether the kernel is smaller than the square (padded) or larger (cut), and a dot holds
    # the whole mass (grid^2, where an evenly spread kernel reads 1 per cell).
    for n in (5, 23, 25, 27):
        dot = torch.zeros(1, n, n)
        dot[0, n // 2, n // 2] = 1.0
        f = kernel_features(dot, grid=6, cell=4).reshape(6, 6)
        assert float(f.sum()) == pytest.approx(36.0) and float(f[2, 2]) == pytest.approx(36.0), n
        dot[0, n // 2, n // 2 + 1] = 1.0  # one pixel right of the centre: the next cell (12 is cell 3)
        assert float(kernel_features(dot, grid=6, cell=4).reshape(6, 6)[2, 3]) == pytest.approx(36.0), n
    # a line sideways spreads along a row; a kernel larger than the square is cut, centred
    line = torch.zeros(1, 41, 41)
    line[0, 20, :] = 1 / 41
    g = kernel_features(line, grid=6, cell=4).reshape(6, 6)
    assert int((g.sum(dim=1) > 0).sum()) == 1 and int((g.sum(dim=0) > 0).sum()) == 6
    assert float(g.sum()) == pytest.approx(36.0 * 24 / 41, rel=1e-5)
    # batches: one row per kernel
    assert kernel_features(torch.rand(3, 9, 9), grid=4, cell=2).shape == (3, 16)
