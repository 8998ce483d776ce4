"""`deblur bench kernels`: real kernels read from PNG / .npy / .mat, the benchmark protocol,
per-kernel rows, and one-line errors."""

import json

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from deblurkit.bench.kernels import blur_with_kernel, load_kernels, prepare_kernel, read_kernel_array
from deblurkit.cli.app import app
from deblurkit.data.blur import convolve

from conftest import SHARED_DATA, save_photo


def _streak(n=9):
    k = np.zeros((n, n))
    k[n // 2, 1 : n - 1] = 1.0
    return k


def test_png_npy_and_mat_give_the_same_kernel(tmp_path):
    scipy_io = pytest.importorskip("scipy.io")
    k = _streak()
    Image.fromarray((k * 255).astype(np.uint8)).save(tmp_path / "a.png")
    np.save(tmp_path / "b.npy", k)
    scipy_io.savemat(tmp_path / "c.mat", {"kernel": k})
    ks = load_kernels(tmp_path)
    assert [p.name.rsplit("/", 1)[-1] for p in ks] == ["a.png", "b.npy", "c.mat"]
    for x in ks[1:]:
        np.testing.assert_allclose(x.array, ks[0].array, atol=1e-6)
    assert abs(ks[0].array.sum() - 1) < 1e-6 and ks[0].extent == 7


def test_faint_noise_is_zeroed_and_the_kernel_centred():
    a = np.full((21, 21), 0.01)  # estimation noise everywhere
    a[3, 2:6] = 1.0  # the real kernel, far off-centre
    k = prepare_kernel(a, "k", threshold=0.05)
    assert k.array.shape[0] % 2 == 1 and np.count_nonzero(k.array) == 4
    h = k.array.shape[0] // 2
    g = np.arange(k.array.shape[1]) - h
    assert abs(float((k.array.sum(0) * g).sum())) <= 0.5  # centroid within half a pixel of the centre
    kept = prepare_kernel(a, "k", threshold=0.05, centre=False)
    assert kept.offset[0] < -3  # as stored it sits left of the middle


def test_protocol_is_convolution_of_8_bit_values_plus_noise_rounded(tmp_path):
    rng = np.random.default_rng(0)
    u8 = rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)
    k = prepare_kernel(_streak(), "k").array
    out = blur_with_kernel(u8, k, 0.01, np.random.default_rng(3))
    expect = convolve(u8.astype(np.float32) / 255, k) + 0.01 * np.random.default_rng(3).standard_normal(u8.shape).astype(np.float32)
    np.testing.assert_array_equal(out, np.round(np.clip(expect, 0, 1) * 255) / 255)
    lin = blur_with_kernel(u8, k, 0.0, np.random.default_rng(3), linear=True)
    assert np.abs(lin - blur_with_kernel(u8, k, 0.0, np.random.default_rng(3))).max() > 2 / 255


def test_cli_reports_every_kernel_and_the_mean(tmp_path, tiny_weights):
    kdir = tmp_path / "k"
    kdir.mkdir()
    np.save(kdir / "k1.npy", _streak(5))
    np.save(kdir / "k2.npy", _streak(9).T)
    for i in range(3):
        save_photo(tmp_path / "sharp" / f"{i}.png", 48, 56, seed=i)
    out = tmp_path / "r.json"
    r = CliRunner().invoke(app, ["bench", "kernels", "--kernels", str(kdir), "--sharp", str(tmp_path / "sharp"),
                                 "--weights", str(tiny_weights), "--presets", "blurry,fast", "--crop", "32", "-o", str(out)])
    assert r.exit_code == 0, r.output
    rec = json.loads(out.read_text())
    assert rec["dataset"] == "kernels" and rec["kernel_count"] == 2 and rec["pairs"] == 3
    blurry = next(m for m in rec["methods"] if m["name"] == "blurry")
    groups = blurry["by_group"]
    assert sorted(groups) == [str(kdir / "k1.npy"), str(kdir / "k2.npy")]
    assert groups[str(kdir / "k1.npy")]["n"] == 2 and groups[str(kdir / "k2.npy")]["n"] == 1  # photo i by kernel i mod K
    # The mean is the mean over the pairs of every kernel's rows.
    k1, k2 = groups[str(kdir / "k1.npy")], groups[str(kdir / "k2.npy")]
    assert abs(blurry["psnr"] - (2 * k1["psnr"] + k2["psnr"]) / 3) < 2e-3
    assert k1["psnr"] != k2["psnr"]
    assert "k1.npy" in r.output and "k2.npy" in r.output


@pytest.mark.parametrize("make, reason", [
    (lambda d: (d / "bad.npy").write_bytes(b"not an array"), "not a readable .npy"),
    (lambda d: np.save(d / "bad.npy", np.zeros((4, 4, 4))), "2-D numeric array"),
    (lambda d: np.save(d / "bad.npy", np.zeros((5, 5))), "no positive values"),
    (lambda d: (d / "bad.png").write_bytes(b"junk"), "not a readable PNG"),
])
def test_bad_kernels_get_one_line(tmp_path, tiny_weights, make, reason):
    kdir = tmp_path / "k"
    kdir.mkdir()
    make(kdir)
    save_photo(tmp_path / "sharp" / "0.png", 32, 32)
    r = CliRunner().invoke(app, ["bench", "kernels", "--kernels", str(kdir), "--sharp", str(tmp_path / "sharp"),
                                 "--weights", str(tiny_weights), "--presets", "blurry"])
    assert r.exit_code == 2, r.output
    assert reason in r.output and "bad." in r.output and "Traceback" not in r.output


def test_empty_kernel_folder(tmp_path, tiny_weights):
    (tmp_path / "k").mkdir()
    save_photo(tmp_path / "sharp" / "0.png", 32, 32)
    r = CliRunner().invoke(app, ["bench", "kernels", "--kernels", str(tmp_path / "k"), "--sharp", str(tmp_path / "sharp"),
                                 "--weights", str(tiny_weights)])
    assert r.exit_code == 2 and "no kernels found" in r.output


@pytest.mark.skipif(not (SHARED_DATA / "kernels" / "kohler12_estimated").is_dir(), reason="../shared/data/kernels not present")
def test_the_real_kohler_kernels_load():
    ks = load_kernels(SHARED_DATA / "kernels" / "kohler12_estimated")
    assert len(ks) == 12
    assert all(abs(k.array.sum() - 1) < 1e-5 and k.array.shape[0] % 2 == 1 for k in ks)
    assert max(k.extent for k in ks) > 100


def _textured_photos(folder, n=2, h=96, w=96):
    from PIL import Image

    folder.mkdir(parents=True)
    for i in range(n):
        rng = np.random.default_rng(i)
        blocks = rng.random((h // 8, w // 8, 3))  # hard edges: something to deblur
        Image.fromarray(np.round(np.kron(blocks, np.ones((8, 8, 1))) * 255).astype(np.uint8)).save(folder / f"{i}.png")


def test_model_free_rows_need_no_model_and_score_the_kernel(tmp_path):
    kdir = tmp_path / "k"
    kdir.mkdir()
    np.save(kdir / "k1.npy", _streak(9))
    _textured_photos(tmp_path / "sharp")
    out = tmp_path / "r.json"
    r = CliRunner().invoke(app, ["bench", "kernels", "--kernels", str(kdir), "--sharp", str(tmp_path / "sharp"),
                                 "--presets", "blurry,true-kernel,estimate", "--crop", "0", "--noise", "0.002", "-o", str(out)])
    assert r.exit_code == 0, r.output
    rec = json.loads(out.read_text())
    assert rec["model"] is None and rec["weights"] is None and rec["crop"] is None  # --crop 0: whole photos
    assert "10 px margin" in rec["align"]["rule"] and rec["align"]["window"] == 10
    m = {x["name"]: x for x in rec["methods"]}
    assert [x["name"] for x in rec["methods"]] == ["blurry", "true-kernel", "estimate"]
    assert m["true-kernel"]["psnr"] > m["blurry"]["psnr"] + 3  # the ceiling: the true kernel inverted
    assert "kernel_similarity" not in m["true-kernel"]  # nothing estimated
    sim = m["estimate"]["kernel_similarity"]
    assert 0 < sim <= 1 and m["estimate"]["by_group"][str(kdir / "k1.npy")]["kernel_similarity"] == sim
    assert "s=0." in r.output  # the per-kernel table shows it


def test_alignment_is_the_kernel_bench_default_and_can_be_turned_off(tmp_path):
    kdir = tmp_path / "k"
    kdir.mkdir()
    k = np.zeros((9, 9))
    k[4, 8] = 1.0  # a pure shift by 4 px, kept off-centre
    np.save(kdir / "k1.npy", k)
    _textured_photos(tmp_path / "sharp", n=1)
    base = ["bench", "kernels", "--kernels", str(kdir), "--sharp", str(tmp_path / "sharp"), "--presets", "blurry",
            "--keep-offset", "--noise", "0", "--json"]
    on = CliRunner().invoke(app, base)
    off = CliRunner().invoke(app, base + ["--no-align"])
    assert on.exit_code == 0 and off.exit_code == 0, on.output + off.output
    rec_on = json.loads(on.stdout[on.stdout.index("{"):])
    rec_off = json.loads(off.stdout[off.stdout.index("{"):])
    assert rec_off["align"] is None
    assert rec_on["methods"][0]["psnr"] > 60 > rec_off["methods"][0]["psnr"]  # a shifted copy is perfect once aligned


def test_model_free_rows_are_refused_where_no_true_kernel_is_known(tmp_path, tiny_weights):
    save_photo(tmp_path / "b" / "0.png", 32, 32)
    save_photo(tmp_path / "s" / "0.png", 32, 32)
    r = CliRunner().invoke(app, ["bench", "pairs", "--blur", str(tmp_path / "b"), "--sharp", str(tmp_path / "s"),
                                 "--weights", str(tiny_weights), "--presets", "blurry,estimate"])
    assert r.exit_code == 2 and "estimate" in r.output and "bench kernels only" in r.output


def test_an_alignment_window_too_large_for_the_photos_is_one_line(tmp_path):
    kdir = tmp_path / "k"
    kdir.mkdir()
    np.save(kdir / "k1.npy", _streak(5))
    _textured_photos(tmp_path / "sharp", n=1, h=40, w=40)
    r = CliRunner().invoke(app, ["bench", "kernels", "--kernels", str(kdir), "--sharp", str(tmp_path / "sharp"),
                                 "--presets", "blurry", "--align-window", "20"])
    assert r.exit_code == 2 and "--align-window 20" in r.output and "Traceback" not in r.output


def test_blur_seed_range_huge_values_and_oversized_kernels_or_crops(tmp_path):
    kdir = tmp_path / "k"
    kdir.mkdir()
    np.save(kdir / "k1.npy", _streak(9) * 1e308)  # finite, but the sum overflows
    _textured_photos(tmp_path / "sharp", n=1)
    base = ["bench", "kernels", "--kernels", str(kdir), "--sharp", str(tmp_path / "sharp"), "--presets", "blurry", "--json"]
    r = CliRunner().invoke(app, [*base, "--blur-seed", "-1"])
    assert r.exit_code == 2 and "--blur-seed -1: must be in [0, 2^64)" in r.output, r.output
    r = CliRunner().invoke(app, base)
    assert r.exit_code == 0 and "Traceback" not in r.output, r.output
    h, w = np.asarray(Image.open(next((tmp_path / "sharp").iterdir()))).shape[:2]
    r = CliRunner().invoke(app, [*base, "--crop", str(max(h, w) + 8)])
    assert r.exit_code == 0 and f"is larger than the {w}x{h} photo" in r.output, r.output
    np.save(kdir / "k1.npy", _streak(min(h, w) + 6))  # a streak longer than the photo is wide
    r = CliRunner().invoke(app, base)
    assert r.exit_code == 0 and "k1.npy: the kernel" in r.output and "is larger than the" in r.output, r.output
