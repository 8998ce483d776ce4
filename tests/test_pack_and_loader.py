"""The packed training-data file, and batches from worker processes."""

from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from deblurkit.cli.app import app
from deblurkit.data.datasets import Mixture, PairedFolder, SharpFolder, Source
from deblurkit.data.loader import step_batches
from deblurkit.data.pack import read_pack
from deblurkit.train import DataSpec, TrainConfig, train

from conftest import save_photo


_png = save_photo


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    root = tmp_path_factory.mktemp("packdata")
    for i in range(3):
        _png(root / "sharp" / f"s{i}.png", 80, 96, i)
        _png(root / "pairs" / "sharp" / f"{i:06d}.png", 64, 80, 20 + i)
        _png(root / "pairs" / "blur" / f"{i:06d}.png", 64, 80, 30 + i)
    return root


def test_pack_round_trips_sources_weights_and_pixels(data, tmp_path):
    out = tmp_path / "p.safetensors"
    r = CliRunner().invoke(app, ["pack", str(out), "--sharp", f"{data / 'sharp'}:2", "--pairs", str(data / "pairs"),
                                 "--quality", "98", "--pair-quality", "98"])
    assert r.exit_code == 0, r.output
    sources = read_pack(out, crop=32)
    assert [type(ds) for ds, _, _ in sources] == [SharpFolder, PairedFolder]
    assert [w for _, w, _ in sources] == [2.0, 1.0]
    packed = sources[0][0].images[0].astype(np.float32)
    original = SharpFolder(data / "sharp", 32).images[0].astype(np.float32)
    assert packed.shape == original.shape
    # JPEG (4:2:0) at q98 on a saturated test picture: a few grey levels, nothing more.
    assert np.abs(packed - original).mean() < 3.0
    assert 10 * np.log10(255**2 / np.mean((packed - original) ** 2)) > 35.0
    # Never overwritten silently; a size budget is enforced.
    r = CliRunner().invoke(app, ["pack", str(out), "--sharp", str(data / "sharp")])
    assert r.exit_code == 2 and "already exists" in r.output
    r = CliRunner().invoke(app, ["pack", str(tmp_path / "big.safetensors"), "--sharp", str(data / "sharp"), "--max-mb", "0.001"])
    assert r.exit_code == 2 and "over --max-mb" in r.output and not (tmp_path / "big.safetensors").exists()


def test_a_corrupt_pack_is_a_one_line_error(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a pack")
    r = CliRunner().invoke(app, ["train", "--pack", str(bad), "--out", str(tmp_path / "o"), "--size", "tiny", "--steps", "1"])
    assert r.exit_code == 1 and "not a readable training pack" in r.output


def test_worker_batches_equal_inline_batches(data):
    mix = Mixture([Source(SharpFolder(data / "sharp", 32), 1.0), Source(PairedFolder(data / "pairs", 32), 1.0)])
    inline = list(step_batches(mix, seed=5, rank=0, batch=2, start=3, end=8))
    workers = list(step_batches(mix, seed=5, rank=0, batch=2, start=3, end=8, workers=2))
    assert [b[0] for b in workers] == list(range(3, 8))
    for a, b in zip(inline, workers, strict=True):
        assert a[0] == b[0] and a[3] == b[3]
        assert torch.equal(a[1], b[1]) and torch.equal(a[2], b[2])


def test_training_from_a_pack_runs(data, tmp_path):
    out = tmp_path / "p.safetensors"
    assert CliRunner().invoke(app, ["pack", str(out), "--sharp", str(data / "sharp"), "--pairs", str(data / "pairs")]).exit_code == 0
    cfg = TrainConfig(out=str(tmp_path / "run"), data=[DataSpec(str(out), "pack", 1.0)], size="tiny", steps=2, batch=2,
                      crop=32, warmup=1, log_every=1, ckpt_every=2, device="cpu", phase="predictor")
    result = train(cfg)
    assert result.steps_done == 2 and np.isfinite(result.last_loss)
