"""Benchmark discovery (both GoPro layouts, malformed trees) and the bench commands end to end."""

import json
import shutil

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from deblurkit.bench.datasets import folder_pairs, gopro_pairs
from deblurkit.cli.app import app
from deblurkit.errors import UsageError

from conftest import smooth_image


def _png(path, seed, h=48, w=64):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.round(smooth_image(h, w, seed) * 255).astype(np.uint8)).save(path)


@pytest.fixture
def gopro_trees(tmp_path):
    official = tmp_path / "GOPRO_Large"
    flat = tmp_path / "GoPro"
    for seq in ("GOPR0384_11_00", "GOPR0385_11_01"):
        for i in range(2):
            _png(official / "test" / seq / "blur" / f"{i:06d}.png", i)
            _png(official / "test" / seq / "sharp" / f"{i:06d}.png", 10 + i)
    for i in range(3):
        _png(flat / "test" / "input" / f"{i}.png", i)
        _png(flat / "test" / "target" / f"{i}.png", 10 + i)
    return official, flat


def test_gopro_layouts_are_discovered(gopro_trees):
    official, flat = gopro_trees
    pairs = gopro_pairs(official)
    assert [p.name for p in pairs] == ["GOPR0384_11_00/000000.png", "GOPR0384_11_00/000001.png",
                                        "GOPR0385_11_01/000000.png", "GOPR0385_11_01/000001.png"]
    assert all(p.sharp.parent.name == "sharp" for p in pairs)
    assert len(gopro_pairs(flat)) == 3 and len(gopro_pairs(flat / "test")) == 3
    with pytest.raises(UsageError, match="blur_gamma"):
        gopro_pairs(official, gamma=True)


def test_malformed_trees_give_the_expected_layout(tmp_path):
    (tmp_path / "test" / "seq" / "blur").mkdir(parents=True)  # no sharp/
    with pytest.raises(UsageError, match="expected the GoPro test set"):
        gopro_pairs(tmp_path)
    with pytest.raises(UsageError, match="not a directory"):
        gopro_pairs(tmp_path / "missing")
    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    with pytest.raises(UsageError, match="no files with matching names"):
        folder_pairs(tmp_path / "a", tmp_path / "b")


def test_real_gopro_fixture_if_present(shared_data, tmp_path):
    seq = shared_data / "gopro" / "GOPR0372_07_00"
    for kind in ("blur", "sharp"):
        (tmp_path / "test" / "GOPR0372_07_00" / kind).mkdir(parents=True)
        shutil.copy(seq / kind / "000047.png", tmp_path / "test" / "GOPR0372_07_00" / kind / "000047.png")
    assert len(gopro_pairs(tmp_path)) == 1


def test_bench_gopro_cli_writes_a_reproducible_record(gopro_trees, tiny_weights, tmp_path):
    official, _ = gopro_trees
    out = tmp_path / "r.json"
    r = CliRunner().invoke(app, ["bench", "gopro", "--root", str(official), "--weights", str(tiny_weights),
                                 "--presets", "blurry,fast", "--limit", "2", "--crop", "32", "-o", str(out)])
    assert r.exit_code == 0, r.output
    rec = json.loads(out.read_text())
    assert rec["pairs"] == 2 and rec["crop"] == 32 and len(rec["weights_sha256"]) == 64
    blurry = next(m for m in rec["methods"] if m["name"] == "blurry")
    assert blurry["n"] == 2 and 5 < blurry["psnr"] < 60 and 0 < blurry["ssim"] <= 1
    assert rec["environment"]["torch"]


def test_identical_pairs_score_perfectly(tmp_path, tiny_weights):
    for i in range(2):
        _png(tmp_path / "b" / f"{i}.png", i)
        _png(tmp_path / "s" / f"{i}.png", i)
    r = CliRunner().invoke(app, ["bench", "pairs", "--blur", str(tmp_path / "b"), "--sharp", str(tmp_path / "s"),
                                 "--weights", str(tiny_weights), "--presets", "blurry", "--json"])
    assert r.exit_code == 0, r.output
    rec = json.loads(r.stdout[r.stdout.index("{"):])
    assert rec["methods"][0]["psnr"] > 80 and rec["methods"][0]["ssim"] > 0.999


def test_names_in_only_one_folder_are_named(tmp_path, tiny_weights):
    for i in range(2):
        _png(tmp_path / "b" / f"{i}.png", i)
        _png(tmp_path / "s" / f"{i}.png", i)
    _png(tmp_path / "b" / "extra_blur.png", 5)
    _png(tmp_path / "s" / "extra_sharp.png", 6)
    r = CliRunner().invoke(app, ["bench", "pairs", "--blur", str(tmp_path / "b"), "--sharp", str(tmp_path / "s"),
                                 "--weights", str(tiny_weights), "--presets", "blurry"])
    assert r.exit_code == 0, r.output
    assert "1 file(s) only in" in r.output and "extra_blur.png" in r.output and "extra_sharp.png" in r.output


def test_bench_synthetic_and_unknown_preset(tmp_path, tiny_weights):
    for i in range(2):
        _png(tmp_path / "sharp" / f"{i}.png", i, 64, 64)
    r = CliRunner().invoke(app, ["bench", "synthetic", "--sharp", str(tmp_path / "sharp"), "--weights", str(tiny_weights),
                                 "--presets", "blurry,fast", "--json"])
    assert r.exit_code == 0, r.output
    rec = json.loads(r.stdout[r.stdout.index("{"):])
    assert rec["dataset"] == "synthetic" and rec["pairs"] == 2
    r = CliRunner().invoke(app, ["bench", "synthetic", "--sharp", str(tmp_path / "sharp"), "--weights", str(tiny_weights),
                                 "--presets", "blurry,sharpest"])
    assert r.exit_code == 2 and "unknown sharpest" in r.output


def test_bench_speed_reports_gflops(tiny_weights, tmp_path):
    out = tmp_path / "speed.json"
    r = CliRunner().invoke(app, ["bench", "speed", "--weights", str(tiny_weights), "--sizes", "64x48", "--steps", "2",
                                 "--presets", "fast", "-o", str(out)])
    assert r.exit_code == 0, r.output
    rec = json.loads(out.read_text())
    assert rec["preset_size"] == "64x48"  # the presets are timed at the size asked for, not 1280x720
    row = rec["sizes"][0]
    assert row["size"] == "64x48" and row["denoiser_step_gflop"] > 0 and row["denoiser_step_s"] > 0
    assert rec["presets"]["fast"]["images_per_hour"] > 0 and rec["peak_memory_mb"] > 0


def test_bench_speed_times_the_kernel_path_with_kernel_auto(tiny_weights, tmp_path):
    """--kernel auto adds the kernel path's time on a made-up shake photo (its kernel passes
    the guard) beside the blind path's on the same photo; without it, no row. (Which path
    the photo then takes is the random tiny predictor's doing: the shipped model takes the
    kernel path on it.)"""
    out = tmp_path / "speed.json"
    args = ["bench", "speed", "--weights", str(tiny_weights), "--sizes", "320x240", "--steps", "1", "--presets", "fast"]
    r = CliRunner().invoke(app, [*args, "--kernel", "auto", "-o", str(out)])
    assert r.exit_code == 0, r.output
    rec = json.loads(out.read_text())
    row, = rec["kernel_path"]
    assert row["size"] == "320x240", row
    assert row["reason"].startswith(("estimated", "the predictor recognises")), row  # the guard accepted its kernel
    assert 0 < row["decide_s"] <= row["kernel_path_s"] and row["blind_s"] > 0
    assert row["peak_memory_mb_blind"] > 0 and row["peak_memory_mb_kernel"] > 0
    assert "--kernel auto" in r.output
    r = CliRunner().invoke(app, [*args, "--json"])
    assert json.loads(r.stdout[r.stdout.index("{"):])["kernel_path"] == []


def test_shake_photo_is_the_same_every_time_and_blurred_by_its_kernel():
    import cv2

    from deblurkit.bench.speed import shake_photo, shake_scene

    a, k = shake_photo(120, 160)
    b, k2 = shake_photo(120, 160)
    assert a.dtype == np.uint8 and a.shape == (120, 160, 3) and (a == b).all() and (k == k2).all()
    assert abs(float(k.sum()) - 1) < 1e-5 and k.shape[0] >= 9
    # The photo is its scene blurred: far fewer fine details than the sharp scene has.
    scene = shake_scene(120, 160, np.random.default_rng([0, 120, 160]))
    detail = lambda im: cv2.Laplacian(im.astype(np.float64), cv2.CV_64F).std()  # noqa: E731
    assert detail(a) < 0.5 * detail(scene)


def test_sweep_writes_table_json_and_plot(tmp_path, tiny_weights):
    for i in range(2):
        _png(tmp_path / "b" / f"{i}.png", i, 100, 200)
        _png(tmp_path / "s" / f"{i}.png", 10 + i, 100, 200)
    out, plot = tmp_path / "sweep.json", tmp_path / "pd.png"
    r = CliRunner().invoke(app, ["bench", "pairs", "--blur", str(tmp_path / "b"), "--sharp", str(tmp_path / "s"),
                                 "--weights", str(tiny_weights), "--sweep", "--limit", "1", "-o", str(out), "--plot", str(plot)])
    assert r.exit_code == 0, r.output
    rec = json.loads(out.read_text())
    names = [m["name"] for m in rec["methods"]]
    assert {"blurry", "predictor", "ddpm T=200", "ddpm T=10 avg8", "ddim T=20"} <= set(names)
    assert all(m["niqe"] is not None for m in rec["methods"])
    img = Image.open(plot)
    assert img.size == (900, 640) and rec["plot"] == str(plot)
    assert "ddpm T=10 avg8" in r.output  # the rich table lists every point


def test_y_channel_metrics(tmp_path, tiny_weights):
    import torch

    from deblurkit.metrics import psnr, to_y

    white = torch.ones(1, 3, 8, 8)
    assert torch.allclose(to_y(white), torch.full((1, 1, 8, 8), 235 / 255))
    # A change orthogonal to the luma weights moves RGB but not Y.
    a = 0.3 + 0.4 * torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    v = torch.tensor([128.553, -65.481, 0.0]).view(1, 3, 1, 1)
    b = a + 0.05 * v / v.norm()
    assert psnr(a, b) < 40 and psnr(a, b, y_channel=True) > 80
    for i in range(1):
        _png(tmp_path / "b" / f"{i}.png", i)
        _png(tmp_path / "s" / f"{i}.png", 5 + i)
    r = CliRunner().invoke(app, ["bench", "pairs", "--blur", str(tmp_path / "b"), "--sharp", str(tmp_path / "s"),
                                 "--weights", str(tiny_weights), "--presets", "blurry", "--y-channel", "--json"])
    assert r.exit_code == 0, r.output
    rec = json.loads(r.stdout[r.stdout.index("{"):])
    assert rec["color"] == "y" and "Y channel" in rec["metrics_note"]


def test_hide_layouts(tmp_path):
    from deblurkit.bench.datasets import hide_pairs

    for sub in ("test-close-ups", "test-long-shot"):
        _png(tmp_path / "HIDE" / "test" / sub / f"{sub}_1.png", 1)
        _png(tmp_path / "HIDE" / "GT" / f"{sub}_1.png", 2)
    pairs = hide_pairs(tmp_path / "HIDE")
    assert [p.name for p in pairs] == ["test-close-ups/test-close-ups_1.png", "test-long-shot/test-long-shot_1.png"]
    assert all(p.sharp.parent.name == "GT" for p in pairs)
    _png(tmp_path / "flat" / "test" / "input" / "a.png", 1)
    _png(tmp_path / "flat" / "test" / "target" / "a.png", 2)
    assert len(hide_pairs(tmp_path / "flat")) == 1
    (tmp_path / "bad" / "test").mkdir(parents=True)
    with pytest.raises(UsageError, match="expected HIDE"):
        hide_pairs(tmp_path / "bad")


def test_realblur_list(tmp_path, tiny_weights):
    from deblurkit.bench.datasets import realblur_pairs

    root = tmp_path / "RealBlur"
    lines = []
    for i in range(2):
        gt, blur = f"RealBlur-J_ECC_IMCORR_centroid_itensity_ref/scene00{i}/gt/gt_1.png", f"RealBlur-J_ECC_IMCORR_centroid_itensity_ref/scene00{i}/blur/blur_1.png"
        _png(root / gt, i)
        _png(root / blur, 10 + i)
        lines.append(f"{gt} {blur}")
    (root / "RealBlur_J_test_list.txt").write_text("\n".join(lines) + "\n")
    pairs = realblur_pairs(root, "J")
    assert len(pairs) == 2 and pairs[0].sharp.name == "gt_1.png" and pairs[0].blur.name == "blur_1.png"
    with pytest.raises(UsageError, match="RealBlur_R_test_list.txt: not found"):
        realblur_pairs(root, "R")
    (root / "RealBlur_J_test_list.txt").write_text(lines[0] + "\nmissing/gt.png missing/blur.png\n")
    with pytest.raises(UsageError, match=":2: .*does not exist"):
        realblur_pairs(root, "J")
    (root / "RealBlur_J_test_list.txt").write_text(lines[0] + "\n")
    r = CliRunner().invoke(app, ["bench", "realblur-j", "--root", str(root), "--weights", str(tiny_weights),
                                 "--presets", "blurry", "--json"])
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout[r.stdout.index("{"):])["dataset"] == "realblur-j"


def test_lpips_without_weights_is_reported_not_invented(tmp_path, tiny_weights, monkeypatch):
    import torch

    from deblurkit.metrics.lpips import load_lpips

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "empty_torch_home"))  # nothing cached here
    metric, note = load_lpips(torch.device("cpu"))
    assert metric is None and note.startswith("n/a (weights not available:")
    for i in range(1):
        _png(tmp_path / "b" / f"{i}.png", i)
        _png(tmp_path / "s" / f"{i}.png", 5 + i)
    r = CliRunner().invoke(app, ["bench", "pairs", "--blur", str(tmp_path / "b"), "--sharp", str(tmp_path / "s"),
                                 "--weights", str(tiny_weights), "--presets", "blurry", "--json"])
    assert r.exit_code == 0, r.output
    rec = json.loads(r.stdout[r.stdout.index("{"):])
    assert rec["methods"][0]["lpips"] is None and rec["lpips_note"].startswith("n/a (weights not available:")


def test_baselines_on_synthetic_and_refused_elsewhere(tmp_path, tiny_weights):
    for i in range(2):
        _png(tmp_path / "sharp" / f"{i}.png", i, 64, 64)
    r = CliRunner().invoke(app, ["bench", "synthetic", "--sharp", str(tmp_path / "sharp"), "--weights", str(tiny_weights),
                                 "--presets", "blurry,fast", "--baselines", "--json"])
    assert r.exit_code == 0, r.output
    rec = json.loads(r.stdout[r.stdout.index("{"):])
    names = [m["name"] for m in rec["methods"]]
    assert names == ["blurry", "wiener", "richardson-lucy", "fast"]
    assert all(np.isfinite(m["psnr"]) for m in rec["methods"])
    _png(tmp_path / "b" / "0.png", 0)
    _png(tmp_path / "s" / "0.png", 1)
    r = CliRunner().invoke(app, ["bench", "pairs", "--blur", str(tmp_path / "b"), "--sharp", str(tmp_path / "s"),
                                 "--weights", str(tiny_weights), "--baselines"])
    assert r.exit_code == 2 and "No such option" in r.output
    # Only the synthetic bench, which knows the true kernels, offers the flag.
    assert "--baselines" not in CliRunner().invoke(app, ["bench", "pairs", "--help"]).output
    assert "--baselines" in CliRunner().invoke(app, ["bench", "synthetic", "--help"]).output


def test_deconvolution_baseline_beats_the_blurry_input():
    from deblurkit.bench.baselines import deconvolve
    from deblurkit.data import apply_blur, gaussian_kernel
    from deblurkit.io import read_image
    from deblurkit.metrics import psnr
    from pathlib import Path
    import torch

    sharp = read_image(Path(__file__).resolve().parents[1] / "examples" / "gopro_000110_sharp.png").rgb[200:392, 400:592]
    k = gaussian_kernel(1.5)
    blurry = apply_blur(sharp, np.random.default_rng(0), kernel=k, noise=False).blurry
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None]  # noqa: E731
    base = psnr(t(blurry), t(sharp))
    assert psnr(t(deconvolve(blurry, k, "richardson-lucy")), t(sharp)) > base + 1.0
    assert psnr(t(deconvolve(blurry, k, "wiener")), t(sharp)) > base


def test_crops_resolution_study(tmp_path, tiny_weights):
    for i in range(2):
        _png(tmp_path / "sharp" / f"{i}.png", i, 96, 128)
    out = tmp_path / "crops.json"
    r = CliRunner().invoke(app, ["bench", "synthetic", "--sharp", str(tmp_path / "sharp"), "--weights", str(tiny_weights),
                                 "--presets", "blurry,fast", "--crops", "32,64,full", "-o", str(out)])
    assert r.exit_code == 0, r.output
    rec = json.loads(out.read_text())
    assert list(rec["crops"]) == ["32", "64", "full"]
    assert rec["crops"]["full"]["blurry"]["n"] == 2
    # Different crop sizes measure different pixels, so the blurry PSNR differs between them.
    assert rec["crops"]["32"]["blurry"]["psnr"] != rec["crops"]["full"]["blurry"]["psnr"]
    r = CliRunner().invoke(app, ["bench", "synthetic", "--sharp", str(tmp_path / "sharp"), "--weights", str(tiny_weights),
                                 "--crops", "8,abc"])
    assert r.exit_code == 2 and "--crops" in r.output


def test_files_and_skip_choose_pairs_and_training_frames_warn(gopro_trees, tiny_weights, tmp_path, monkeypatch):
    from deblurkit.weights import sha256_of

    official, _ = gopro_trees
    reg = tmp_path / "weights.toml"
    reg.write_text(f'[models.t]\narch = "dvsr"\nfile = "t.safetensors"\nsha256 = "{sha256_of(tiny_weights)}"\n'
                   'trained_on = ["GOPR0384_11_00/000000.png", "GOPR0384_11_00/000001.png"]\n')
    monkeypatch.setenv("DEBLUR_WEIGHTS_TOML", str(reg))
    base = ["bench", "gopro", "--root", str(official), "--weights", str(tiny_weights), "--presets", "blurry", "--json"]
    r = CliRunner().invoke(app, base)
    assert r.exit_code == 0, r.output
    rec = json.loads(r.stdout[r.stdout.index("{"):])
    # Matched by checksum although the weights were given as a file.
    assert rec["pairs"] == 4 and len(rec["trained_on_overlap"]) == 2
    assert "2 of 4 pair(s) are frames this model was trained on" in r.output
    r = CliRunner().invoke(app, [*base, "--files", "GOPR0385_11_01/*"])
    rec = json.loads(r.stdout[r.stdout.index("{"):])
    assert rec["pairs"] == 2 and rec["trained_on_overlap"] == [] and "trained on" not in r.output
    r = CliRunner().invoke(app, [*base, "--skip", "3"])
    rec = json.loads(r.stdout[r.stdout.index("{"):])
    assert rec["pairs"] == 1 and rec["methods"][0]["n"] == 1
    r = CliRunner().invoke(app, [*base, "--files", "nothing*"])
    assert r.exit_code == 2 and "no pairs left" in r.output


def test_synthetic_selection_keeps_each_photos_blur(tmp_path, tiny_weights):
    for i in range(3):
        _png(tmp_path / "sharp" / f"{i}.png", i)
    base = ["bench", "synthetic", "--sharp", str(tmp_path / "sharp"), "--weights", str(tiny_weights),
            "--presets", "blurry", "--json"]
    import torch

    from deblurkit.data.blur import apply_blur
    from deblurkit.io import read_image
    from deblurkit.metrics import psnr

    img = read_image(tmp_path / "sharp" / "2.png").rgb
    blurred = apply_blur(img, np.random.default_rng([1234, 2])).blurry  # photo 2's blur in the whole folder
    expected = psnr(*(torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None].float() for a in (blurred, img)))
    for pick in (["--skip", "2"], ["--files", "2.png"]):
        rec = json.loads(CliRunner().invoke(app, [*base, *pick]).stdout)
        assert rec["pairs"] == 1 and abs(rec["methods"][0]["psnr"] - round(expected, 3)) < 1e-3, pick


def test_grid_runs_every_steps_and_ceiling_pair_for_a_guided_model(tmp_path):
    from deblurkit.weights import save_checkpoint

    from conftest import random_tiny_model

    weights = tmp_path / "msgd.safetensors"
    save_checkpoint(random_tiny_model("msgd"), weights)
    for i in range(2):
        _png(tmp_path / "b" / f"{i}.png", i, 100, 200)
        _png(tmp_path / "s" / f"{i}.png", 10 + i, 100, 200)
    out, plot = tmp_path / "grid.json", tmp_path / "grid.png"
    r = CliRunner().invoke(app, ["bench", "pairs", "--blur", str(tmp_path / "b"), "--sharp", str(tmp_path / "s"),
                                 "--weights", str(weights), "--grid", "2,3:0.1,0.5", "--limit", "1", "-o", str(out),
                                 "--plot", str(plot)])
    assert r.exit_code == 0, r.output
    rec = json.loads(out.read_text())
    # No predictor point for a model without one (its g(y) is 0).
    assert [m["name"] for m in rec["methods"]] == ["blurry", "T=2 B=0.1", "T=2 B=0.5", "T=3 B=0.1", "T=3 B=0.5"]
    assert [(m["steps"], m["noise_ceiling"]) for m in rec["methods"][1:]] == [(2, 0.1), (2, 0.5), (3, 0.1), (3, 0.5)]
    assert Image.open(plot).size == (900, 640)


def test_grid_flags_are_checked_before_any_work(tmp_path, tiny_weights):
    from deblurkit.bench.grid import TABLE12_CEILINGS, TABLE12_STEPS, parse_grid

    assert parse_grid("table12") == (list(TABLE12_STEPS), list(TABLE12_CEILINGS))
    (tmp_path / "s").mkdir()
    for bad in ["20,50", "x:0.1", "20:1.5", "0:0.1"]:
        r = CliRunner().invoke(app, ["bench", "synthetic", "--sharp", str(tmp_path / "s"), "--weights", str(tiny_weights),
                                     "--grid", bad])
        assert r.exit_code == 2 and "--grid" in r.output, (bad, r.output)
    r = CliRunner().invoke(app, ["bench", "synthetic", "--sharp", str(tmp_path / "s"), "--weights", str(tiny_weights),
                                 "--grid", "table12", "--sweep"])
    assert r.exit_code == 2 and "give one" in r.output
