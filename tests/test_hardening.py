"""Bad inputs, odd images, interruptions: clear one-line errors, no damage, nothing left behind."""

import io
import json
import os
import signal
import struct
import subprocess
import sys
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from typer.testing import CliRunner

from deblurkit.cli.app import app
from deblurkit.errors import ImageReadError
from deblurkit.io import read_image
from deblurkit.tiling import TileGrid

from conftest import save_photo, smooth_image


def _rgb(h=24, w=32, seed=0):
    return np.round(smooth_image(h, w, seed) * 255).astype(np.uint8)


def _png_bytes(arr, **kw):
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG", **kw)
    return buf.getvalue()


def _enc(fmt, img, **kw):
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def _png_claiming(w, h):
    """A tiny PNG whose header claims w x h pixels (a decompression-bomb shape)."""
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _chunk(b"IHDR", ihdr) + _chunk(b"IDAT", zlib.compress(b"\x00" * 64)) + _chunk(b"IEND", b"")


def _float_tiff():
    ok, buf = cv2.imencode(".tiff", (smooth_image(16, 20) * 1.2 - 0.1).astype(np.float32))
    assert ok
    return buf.tobytes()


def _png16():
    ok, buf = cv2.imencode(".png", (smooth_image(16, 20) * 65535).astype(np.uint16))
    return buf.tobytes()


def _multi(fmt):
    frames = [Image.fromarray(_rgb(seed=i)) for i in range(3)]
    return _enc(fmt, frames[0], save_all=True, append_images=frames[1:])


JPEG = _enc("JPEG", Image.fromarray(_rgb(64, 64)))
TIFF = _enc("TIFF", Image.fromarray(_rgb()))

# name, file bytes, expected exit code, expected message fragment (for failures) or note fragment
CASES = [
    ("text.jpg", b"hello, I am not a photo\n", 1, "not a recognised image file"),
    ("empty.png", b"", 1, "empty file (0 bytes)"),
    ("random.png", bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8)), 1, "not a recognised image file"),
    ("doc.pdf.jpg", b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n", 1, "not a recognised image file"),
    ("truncated.jpg", JPEG[: len(JPEG) // 2], 1, "corrupt or truncated"),
    ("truncated.png", _png_bytes(_rgb(64, 64))[:300], 1, "corrupt or truncated"),
    ("truncated.tif", TIFF[:200], 1, "corrupt or truncated"),
    ("bomb.png", _png_claiming(60000, 60000), 1, "pixel limit"),
    ("png_named.jpg", _png_bytes(_rgb()), 0, None),
    ("one_pixel.png", _png_bytes(_rgb(1, 1)), 0, None),
    ("two_by_three.png", _png_bytes(_rgb(2, 3)), 0, None),
    ("one_row.png", _png_bytes(_rgb(1, 57)), 0, None),
    ("tall.png", _png_bytes(_rgb(300, 2)), 0, None),
    ("odd.png", _png_bytes(_rgb(37, 53)), 0, None),
    ("palette.png", _enc("PNG", Image.fromarray(_rgb()).convert("P")), 0, None),
    ("gray_alpha.png", _enc("PNG", Image.fromarray(_rgb()).convert("LA")), 0, None),
    ("rgba.png", _enc("PNG", Image.fromarray(_rgb()).convert("RGBA")), 0, None),
    ("cmyk.jpg", _enc("JPEG", Image.fromarray(_rgb()).convert("CMYK")), 0, None),
    ("deep16.png", _png16(), 0, None),
    ("float32.tif", _float_tiff(), 0, "clipped to [0, 1]"),
    ("multi.gif", _multi("GIF"), 0, "3 frames, the first is used"),
    ("multi.tif", _multi("TIFF"), 0, "3 frames, the first is used"),
    ("with space ünïcødé.png", _png_bytes(_rgb()), 0, None),
]


@pytest.fixture
def cli(tiny_weights, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def invoke(*args):
        return runner.invoke(app, [*map(str, args), "--weights", str(tiny_weights)], catch_exceptions=False)

    return invoke


@pytest.mark.parametrize("name,data,code,fragment", CASES, ids=[c[0] for c in CASES])
def test_input_table(cli, tmp_path, name, data, code, fragment):
    src = tmp_path / name
    src.write_bytes(data)
    r = cli(name, "--steps", "2", "--seed", "0", "--json")
    assert r.exit_code == code, r.output
    assert src.read_bytes() == data  # the input is never modified
    out = tmp_path / (src.stem + "_deblurred.png")
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert not leftovers
    if code == 0:
        produced = Image.open(out)
        produced.load()
        # Pillow cannot open 32-bit float RGB TIFF (OpenCV decodes it for us); its size is known.
        expected = (20, 16) if name == "float32.tif" else Image.open(io.BytesIO(data)).size
        assert produced.size == expected
        if fragment:
            assert fragment in r.output
    else:
        assert not out.exists()
        errors = [line for line in r.output.splitlines() if line.startswith("error:")]
        assert len(errors) == 1 and name in errors[0] and fragment in errors[0]


def test_missing_file_and_output_dir_that_cannot_exist(cli, tmp_path):
    r = cli("nope.png")
    assert r.exit_code == 1 and "nope.png: no such file" in r.output
    (tmp_path / "a.png").write_bytes(_png_bytes(_rgb()))
    (tmp_path / "blocker").write_text("a file where a folder should be")
    r = cli("a.png", "-o", "blocker/sub/out.png", "--preset", "fast")
    assert r.exit_code == 1 and "cannot write here" in r.output


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every file, so permissions cannot be tested")
def test_unreadable_file(cli, tmp_path):
    p = tmp_path / "locked.png"
    p.write_bytes(_png_bytes(_rgb()))
    p.chmod(0)
    r = cli("locked.png")
    assert r.exit_code == 1 and "permission denied" in r.output


def test_symlink_loop_in_recursive_run(cli, tmp_path):
    d = tmp_path / "photos"
    (d / "sub").mkdir(parents=True)
    (d / "sub" / "a.png").write_bytes(_png_bytes(_rgb()))
    os.symlink(d, d / "sub" / "loop")
    r = cli(d, "-r", "--preset", "fast", "--json")
    assert r.exit_code == 0 and '"done": 1' in r.output


def test_unknown_model_is_rejected_before_work(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "a.png").write_bytes(_png_bytes(_rgb()))
    r = CliRunner().invoke(app, ["a.png", "--model", "no-such-model"])
    assert r.exit_code == 3 and "unknown model 'no-such-model'" in r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=2048))
def test_loader_raises_only_its_own_error_on_arbitrary_bytes(tmp_path, data):
    p = tmp_path / "fuzz.img"
    p.write_bytes(data)
    try:
        read_image(p)
    except ImageReadError as e:
        assert "fuzz.img" in str(e)


VALID = [_png_bytes(_rgb(8, 8)), _enc("JPEG", Image.fromarray(_rgb(8, 8))), _enc("TIFF", Image.fromarray(_rgb(8, 8))),
         _enc("WEBP", Image.fromarray(_rgb(8, 8))), _enc("BMP", Image.fromarray(_rgb(8, 8)))]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(which=st.integers(0, len(VALID) - 1), cut=st.integers(0, 400), flips=st.lists(st.tuples(st.integers(0, 400), st.integers(0, 255)), max_size=6))
def test_loader_on_damaged_real_files(tmp_path, which, cut, flips):
    data = bytearray(VALID[which])
    for pos, val in flips:
        if pos < len(data):
            data[pos] = val
    data = bytes(data[: max(1, len(data) - cut)])
    p = tmp_path / "damaged.bin"
    p.write_bytes(data)
    try:
        img = read_image(p)
    except ImageReadError:
        return
    assert img.rgb.ndim == 3 and img.rgb.shape[2] == 3 and np.isfinite(img.rgb).all()


@settings(max_examples=120, deadline=None)
@given(h=st.integers(1, 150), w=st.integers(1, 150), tile=st.integers(2, 96), overlap=st.integers(0, 48))
def test_tiling_properties(h, w, tile, overlap):
    overlap = min(overlap, tile - 1)
    grid = TileGrid.build(h, w, tile, overlap)
    covered = np.zeros((h, w), bool)
    for t, l in grid.boxes:
        covered[t : t + grid.tile_h, l : l + grid.tile_w] = True
    assert covered.all()
    np.testing.assert_allclose(grid.normalised_weight_sum().numpy(), 1.0, atol=1e-5)
    x = np.random.default_rng(h * 1000 + w).random((1, 2, h, w)).astype(np.float32)
    import torch

    out = grid.apply(lambda crops: crops[0], [torch.from_numpy(x)], tiles_per_batch=2)
    assert out.shape == (1, 2, h, w)
    np.testing.assert_allclose(out.numpy(), x, atol=1e-5)


def test_sigint_mid_run_leaves_only_complete_outputs_and_rerun_finishes(tiny_weights, tmp_path):
    d = tmp_path / "in"
    d.mkdir()
    # Ten photos: outputs are written behind the next photo's restoration, so the first
    # file appears during the second photo; the other eight leave the signal time to land.
    n = 10
    for i in range(n):
        Image.fromarray(np.round(smooth_image(160, 224, i) * 255).astype(np.uint8)).save(d / f"p{i:02d}.png")
    cmd = [sys.executable, "-m", "deblurkit", str(d), "--steps", "60", "--weights", str(tiny_weights), "--seed", "0", "--quiet"]
    # As from a shell: Ctrl-C at its default disposition, whatever this test process inherited.
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 120
    while time.time() < deadline and not list(d.glob("*_deblurred.png")):
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted after" in err and "rerun the same command" in err
    done = sorted(d.glob("*_deblurred.png"))
    assert 1 <= len(done) < n
    for p in done:
        Image.open(p).load()  # complete, decodable files only
    assert not [p for p in d.iterdir() if p.name.endswith(".tmp")]
    r = subprocess.run(cmd + ["--json"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert len(list(d.glob("*_deblurred.png"))) == n
    assert f'"skipped": {len(done)}' in r.stdout


def _one_line_usage_error(r, needle):
    assert r.exit_code == 2, r.output
    assert needle in r.output and len(r.output.strip().splitlines()) == 1, r.output


def test_export_bench_and_kernel_outputs_never_replace_a_file_silently(tiny_weights, tmp_path):
    photo = tmp_path / "photo.png"
    Image.fromarray(_rgb(64, 64)).save(photo)
    before = photo.read_bytes()
    runner = CliRunner()
    # A photo is not replaced by a checkpoint, a JSON record or a kernel image.
    _one_line_usage_error(runner.invoke(app, ["export", str(tiny_weights), "-o", str(photo)]), "already exists")
    _one_line_usage_error(runner.invoke(app, ["export", str(tiny_weights), "-o", str(tmp_path)]), "is a folder")
    _one_line_usage_error(runner.invoke(app, ["bench", "synthetic", "--sharp", str(tmp_path), "--weights", str(tiny_weights),
                                              "--presets", "blurry", "-o", str(photo)]), "already exists")
    _one_line_usage_error(runner.invoke(app, ["blur", str(photo), "-o", str(tmp_path / "b.png"), "--save-kernel", str(photo)]),
                          "would overwrite an input")
    assert photo.read_bytes() == before and not (tmp_path / "b.png").exists()
    out = tmp_path / "slim.safetensors"
    assert runner.invoke(app, ["export", str(tiny_weights), "-o", str(out), "--fp32"]).exit_code == 0
    stamp = out.stat().st_mtime_ns
    _one_line_usage_error(runner.invoke(app, ["export", str(tiny_weights), "-o", str(out)]), "already exists")
    assert out.stat().st_mtime_ns == stamp
    assert runner.invoke(app, ["export", str(tiny_weights), "-o", str(out), "--fp32", "--overwrite"]).exit_code == 0


@pytest.mark.parametrize(
    "args,needle",
    [
        (["blur", "{photo}", "-o", "{tmp}/b.png", "--seed", "-1"], "--seed -1: must be in [0, 2^64)"),
        (["bench", "speed", "--weights", "{weights}", "--sizes", "0x0"], "at least 16 pixels"),
        (["bench", "synthetic", "--sharp", "{tmp}", "--weights", "{weights}", "--limit", "-1"], "--limit -1: must be >= 1"),
        (["train", "--sharp", "{tmp}:0", "--out", "{tmp}/run"], "mixing weight"),
        (["train", "--sharp", "{tmp}", "--seed", "-5", "--out", "{tmp}/run"], "--seed -5: must be in [0, 2^64)"),
        (["train", "--sharp", "{tmp}", "--val", "{tmp}/nonexistent", "--out", "{tmp}/run"], "--val folder"),
        (["run", "{photo}", "{photo2}", "-o", "{tmp}/out.png", "--weights", "{weights}"], "not an image file name"),
    ],
)
def test_out_of_range_flags_are_one_line_usage_errors(tiny_weights, tmp_path, args, needle):
    photo, photo2 = tmp_path / "photo.png", tmp_path / "photo2.png"
    Image.fromarray(_rgb(64, 64)).save(photo)
    Image.fromarray(_rgb(64, 64, 1)).save(photo2)
    subs = {"{photo}": str(photo), "{photo2}": str(photo2), "{weights}": str(tiny_weights)}
    argv = [subs.get(a, a.replace("{tmp}", str(tmp_path))) for a in args]
    _one_line_usage_error(CliRunner().invoke(app, argv), needle)
    assert not (tmp_path / "out.png").exists() and not (tmp_path / "run").exists()


def test_ctrl_c_during_start_up_is_one_line_and_exit_130(tmp_path):
    # SIGINT while torch is still being imported (a run imports it; --help does not). The
    # moment is a race, so the delay adapts: too early (before Python's handler) or too
    # late (already done: the missing file's error, exit 1 or 2) retries.
    delay = 0.6
    for _ in range(6):
        proc = subprocess.Popen([sys.executable, "-m", "deblurkit", str(tmp_path / "missing.png"), "--weights",
                                 str(tmp_path / "missing.safetensors")], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        time.sleep(delay)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=120)
        if proc.returncode in (1, 2, 3):
            delay /= 2
            continue
        if proc.returncode == -signal.SIGINT:
            delay *= 1.5
            continue
        assert proc.returncode == 130, err.decode()
        assert err.decode().strip() == "interrupted"
        return
    pytest.skip("could not land SIGINT inside start-up on this machine")


def test_a_rerun_removes_only_abandoned_temporaries_of_its_own(tiny_weights, tmp_path):
    Image.fromarray(_rgb(32, 32)).save(tmp_path / "a.png")
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # a PID that no longer runs, as after kill -9
    stale = tmp_path / f".a_deblurred.png.deblur-{dead.pid}-x1.tmp"
    live = tmp_path / f".a_deblurred.png.deblur-{os.getpid()}-x2.tmp"  # a writer still running
    foreign = tmp_path / ".a_deblurred.png.notours.tmp"
    for p in (stale, live, foreign):
        p.write_bytes(b"partial")
    r = CliRunner().invoke(app, [str(tmp_path / "a.png"), "--preset", "fast", "--weights", str(tiny_weights), "--quiet"])
    assert r.exit_code == 0, r.output
    assert not stale.exists() and live.exists() and foreign.exists()
    assert (tmp_path / "a_deblurred.png").is_file()


def test_unreadable_inputs_fail_alone_as_a_non_root_user(tiny_weights):
    """An unreadable file on the command line and an unreadable folder inside a recursive
    run are per-input failures (exit 1); the readable input is still processed. Run as
    `nobody` when the tests run as root, since root reads everything."""
    import shutil
    import tempfile

    prefix = []
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv to drop privileges")
        prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    base = Path(tempfile.mkdtemp(prefix="deblur-perm-"))
    try:
        os.chmod(base, 0o777)
        Image.fromarray(_rgb(32, 32)).save(base / "ok.png")
        Image.fromarray(_rgb(32, 32, 1)).save(base / "locked.png")
        (base / "tree" / "closed").mkdir(parents=True)
        Image.fromarray(_rgb(32, 32, 2)).save(base / "tree" / "open.png")
        Image.fromarray(_rgb(32, 32, 3)).save(base / "tree" / "closed" / "x.png")
        weights = base / "w.safetensors"
        shutil.copy(tiny_weights, weights)
        for p in (base / "tree", base / "ok.png", base / "tree" / "open.png", weights):
            os.chmod(p, 0o777 if p.is_dir() else 0o644)
        os.chmod(base / "locked.png", 0)
        os.chmod(base / "tree" / "closed", 0)
        cmd = [*prefix, sys.executable, "-m", "deblurkit", str(base / "ok.png"), str(base / "locked.png"), str(base / "tree"),
               "-r", "--preset", "fast", "--weights", str(weights), "-o", str(base / "out"), "--json", "--quiet"]
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=base)
        if prefix and "Permission denied" in r.stderr and "python" in r.stderr:
            pytest.skip("the test interpreter is not reachable as nobody")
        assert r.returncode == 1, r.stderr
        rec = json.loads(r.stdout)
        assert rec["counts"] == {"done": 2, "skipped": 0, "failed": 2}, rec
        assert "Traceback" not in r.stderr
        errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
        assert any("locked.png" in e for e in errors) and any("closed" in e and "cannot list" in e for e in errors)
    finally:
        for p in (base / "locked.png", base / "tree" / "closed"):
            if p.exists():
                os.chmod(p, 0o755)
        shutil.rmtree(base, ignore_errors=True)


def test_version_imports_nothing_heavy():
    code = ("import sys; sys.argv = ['deblur', '--version']; from deblurkit.cli.entry import main; main(); "
            "print(sorted(m for m in ('torch', 'typer', 'rich', 'cv2') if m in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    version_line, modules = r.stdout.strip().splitlines()
    assert version_line.startswith("deblur ") and modules == "[]"


def test_start_up_freezes_its_objects_and_the_collector_runs_again(tmp_path, tiny_weights):
    """Start-up imports with the garbage collector off (its full passes over torch's objects
    cost a few hundred ms): no full pass runs before its objects are frozen, and the
    command itself runs with the collector on again."""
    photo = save_photo(tmp_path / "p.png", 24, 24)
    code = ("import atexit, gc, sys\n"
            "full = []\n"
            "atexit.register(lambda: print('GC', gc.isenabled(), gc.get_freeze_count(), len(full), file=sys.stderr))\n"
            f"sys.argv = ['deblur', {str(photo)!r}, '--weights', {str(tiny_weights)!r}, '--steps', '0', '-q']\n"
            "from deblurkit.cli.entry import main\n"
            "gc.callbacks.append(lambda phase, info: phase == 'start' and info['generation'] == 2\n"
            "                    and gc.get_freeze_count() == 0 and full.append(1))\n"
            "main()\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    enabled, frozen, full_passes = r.stderr.strip().splitlines()[-1].split()[1:]
    assert enabled == "True"
    assert int(frozen) > 100_000  # torch and the CLI, frozen out of later passes
    assert full_passes == "0"  # none over them while they were being made


HEAVY = ("torch", "cv2", "PIL", "av", "safetensors", "torchmetrics", "numpy")


@pytest.mark.parametrize("args", [["--help"], ["run", "--help"], ["bench", "--help"], ["bench", "speed", "--help"],
                                  ["train", "--help"], ["weights", "--help"], ["export", "--help"], ["blur", "--help"]])
def test_help_imports_neither_torch_nor_opencv(args):
    """Help is instant: the model stack, OpenCV, Pillow and PyAV load only in commands that work."""
    code = (f"import sys; sys.argv = ['deblur', *{args!r}]; from deblurkit.cli.entry import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            f"print(sorted(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "Usage" in r.stdout, r.stdout + r.stderr
    assert r.stderr.strip().splitlines()[-1] == "[]", r.stderr


def test_importing_the_cli_leaves_torch_out():
    code = "import sys, deblurkit.cli.app; print('torch' in sys.modules, 'cv2' in sys.modules)"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.stdout.split() == ["False", "False"], r.stdout + r.stderr


def _tiff_16bit_5_channels(w=8, h=8):
    """A 16-bit TIFF with 5 samples per pixel, which OpenCV refuses (and logs about)."""
    spp = 5
    data = bytes((i * 7) % 256 for i in range(w * h * spp * 2))
    entries = []
    # header 8 bytes; then BitsPerSample values; then pixel data; then IFD
    bps_off = 8
    bps = struct.pack("<5H", *([16] * spp))
    data_off = bps_off + len(bps)
    ifd_off = data_off + len(data)
    ifd_off += ifd_off % 2
    tags = [(256, 3, 1, w), (257, 3, 1, h), (258, 3, spp, bps_off), (259, 3, 1, 1), (262, 3, 1, 2),
            (273, 4, 1, data_off), (277, 3, 1, spp), (278, 3, 1, h), (279, 4, 1, len(data)), (284, 3, 1, 1)]
    out = b"II*\x00" + struct.pack("<I", ifd_off) + bps + data
    out += b"\x00" * (ifd_off - len(out))
    out += struct.pack("<H", len(tags) + 1)
    for tag, typ, count, value in tags:
        out += struct.pack("<HHI", tag, typ, count) + (struct.pack("<HH", value, 0) if typ == 3 and count == 1 else struct.pack("<I", value))
    out += struct.pack("<HHI", 338, 3, 2) + struct.pack("<HH", 0, 0)
    out += struct.pack("<I", 0)
    return out


def test_decoder_chatter_never_reaches_the_terminal(tiny_weights, tmp_path):
    path = tmp_path / "five.tiff"
    path.write_bytes(_tiff_16bit_5_channels())
    r = subprocess.run([sys.executable, "-m", "deblurkit", str(path), "--preset", "fast", "--weights", str(tiny_weights), "--quiet"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 1
    assert r.stderr.strip().splitlines() == [f"error: {path}: OpenCV could not decode this 16-bit image"], r.stderr


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX file names are bytes")
def test_a_file_name_that_is_not_utf8_is_restored_with_its_neighbours(tmp_path, tiny_weights):
    d = tmp_path / "in"
    d.mkdir()
    Image.fromarray(_rgb(32, 40, 1)).save(os.fsdecode(os.fsencode(str(d)) + b"/b\xff.png"))
    Image.fromarray(_rgb(32, 40, 2)).save(d / "ok.png")
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    cmd = [sys.executable, "-m", "deblurkit", str(d), "--weights", str(tiny_weights), "--steps", "2", "--seed", "3"]
    r = subprocess.run(cmd, capture_output=True, env=env, timeout=300)
    assert r.returncode == 0, r.stderr.decode(errors="replace")[-2000:]
    names = sorted(os.listdir(os.fsencode(str(d))))
    assert b"b\xff_deblurred.png" in names and b"ok_deblurred.png" in names
    # The seed comes from the name's bytes: the same name gives the same pixels again.
    first = (d / os.fsdecode(b"b\xff_deblurred.png")).read_bytes()
    (d / os.fsdecode(b"b\xff_deblurred.png")).unlink()
    assert subprocess.run(cmd, capture_output=True, env=env, timeout=300).returncode == 0
    assert (d / os.fsdecode(b"b\xff_deblurred.png")).read_bytes() == first


def test_seed_keys_with_surrogates():
    import torch

    from deblurkit.restorer import key_bytes, sample_generators

    assert key_bytes("photo.png") == b"photo.png" and key_bytes("é.png") == "é.png".encode()
    assert key_bytes("b\udcff.png") == b"b\xff.png"
    assert key_bytes("\ud800") == "\ud800".encode("utf-8", "surrogatepass")
    g1 = sample_generators(0, "b\udcff.png", 1, torch.device("cpu"))[0]
    g2 = sample_generators(0, "b\udcfe.png", 1, torch.device("cpu"))[0]
    assert torch.randn(3, generator=g1).tolist() != torch.randn(3, generator=g2).tolist()


def test_names_are_printed_as_they_are_never_as_emoji(cli, tmp_path):
    # Rich turns :thumbs_up: into an emoji unless told not to: file names and folder
    # specs must come out exactly as the user typed them, in progress, errors and summary.
    good, bad = "x:thumbs_up:y.png", "bad:thumbs_down:.png"
    (tmp_path / good).write_bytes(_png_bytes(_rgb()))
    (tmp_path / bad).write_bytes(b"not an image at all")
    r = cli(good, bad, "--steps", "1", "--seed", "0")
    assert r.exit_code == 1 and good in r.output and bad in r.output, r.output
    assert "\N{THUMBS UP SIGN}" not in r.output and "\N{THUMBS DOWN SIGN}" not in r.output
    (tmp_path / "d").mkdir()
    for spec, needle in (("nowhere:abc:", "nowhere:abc:"), ("d:-1", "d:-1: the mixing weight")):
        r = CliRunner().invoke(app, ["train", "--sharp", spec, "--out", str(tmp_path / "run")])
        assert r.exit_code == 2 and needle in r.output and "\N{INPUT SYMBOL FOR LATIN LETTERS}" not in r.output, r.output


def _commands(group, prefix=()):
    import click

    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from _commands(command, (*prefix, name))
        else:
            yield (*prefix, name), command


def test_every_help_text_is_shown_as_its_source_gives_it():
    # Square brackets are text, not markup: "pip install 'deblurkit[serve]'", "[seed, i]",
    # "[default: ...]" must reach the reader as written.
    import re

    import typer

    root = typer.main.get_command(app)
    flat = lambda s: re.sub(r"\s+", "", s.replace("\u2502", ""))  # noqa: E731 (wrapping and the panels' borders out)
    seen = 0
    for path, command in _commands(root):
        r = CliRunner().invoke(app, [*path, "--help"], env={"COLUMNS": "100", "TERMINAL_WIDTH": "100"})
        assert r.exit_code == 0, (path, r.output)
        shown = flat(r.output)
        texts = [command.help or ""] + [p.help for p in command.params if getattr(p, "help", None) and not p.hidden]
        for text in texts:
            assert flat(text.replace("\\[", "[")) in shown, (path, text)  # escaped for Rich once, shown as written
            seen += 1
    assert seen > 100
    serve = flat(CliRunner().invoke(app, ["serve", "--help"]).output)
    assert flat("pip install 'deblurkit[serve]'") in serve and flat("[default: 1 on a CPU") in serve
