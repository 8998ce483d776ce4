"""End-to-end runs of the `deblur` command with a tiny random-initialised checkpoint."""

import json
import re
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from deblurkit.cli.app import app
from deblurkit.presets import PRESETS

from conftest import smooth_image


@pytest.fixture
def run(tiny_weights, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()

    def invoke(*args, weights=True):
        extra = ["--weights", str(tiny_weights)] if weights else []
        return runner.invoke(app, [*map(str, args), *extra, "--quiet"], catch_exceptions=False)

    return invoke


def _photo(path, h=40, w=56, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.round(smooth_image(h, w, seed) * 255).astype(np.uint8)).save(path)
    return path


def test_default_output_beside_input_then_skip_then_overwrite(run, tmp_path):
    src = _photo(tmp_path / "photo.jpg")
    before = src.read_bytes()
    r = run("photo.jpg", "--steps", "3", "--seed", "1")
    assert r.exit_code == 0, r.output
    out = tmp_path / "photo_deblurred.png"
    assert Image.open(out).size == (56, 40)
    stamp = out.stat().st_mtime_ns
    r = run("photo.jpg", "--steps", "3", "--seed", "1", "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["counts"]["skipped"] == 1
    assert out.stat().st_mtime_ns == stamp
    r = run("photo.jpg", "--steps", "3", "--seed", "1", "--overwrite")
    assert r.exit_code == 0 and out.stat().st_mtime_ns != stamp
    assert src.read_bytes() == before


def test_same_seed_is_byte_identical(run, tmp_path):
    _photo(tmp_path / "a.png")
    run("a.png", "-o", "one.png", "--steps", "4", "--seed", "9")
    run("a.png", "-o", "two.png", "--steps", "4", "--seed", "9")
    run("a.png", "-o", "three.png", "--steps", "4", "--seed", "10")
    assert (tmp_path / "one.png").read_bytes() == (tmp_path / "two.png").read_bytes()
    assert (tmp_path / "one.png").read_bytes() != (tmp_path / "three.png").read_bytes()


def test_samples_average_and_std_outputs(run, tmp_path):
    _photo(tmp_path / "a.png")
    r = run("a.png", "--samples", "3", "--std", "--steps", "3", "--seed", "0", "--json")
    assert r.exit_code == 0, r.output
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["a.png", "a_deblurred_s0.png", "a_deblurred_s1.png", "a_deblurred_s2.png", "a_deblurred_std.png"]
    assert json.loads(r.stdout)["images"][0]["std_mean"] > 0
    r = run("a.png", "-o", "avg.png", "--samples", "3", "--average", "--steps", "3", "--seed", "0")
    assert r.exit_code == 0
    s = [np.asarray(Image.open(tmp_path / f"a_deblurred_s{i}.png"), np.float64) for i in range(3)]
    avg = np.asarray(Image.open(tmp_path / "avg.png"), np.float64)
    assert np.abs(avg - np.mean(s, axis=0)).max() <= 1.0  # mean of samples, up to 8-bit rounding


def test_directory_run_recursive_output_dir_and_bad_file(run, tmp_path):
    (tmp_path / "in" / "sub").mkdir(parents=True)
    _photo(tmp_path / "in" / "a.png")
    _photo(tmp_path / "in" / "sub" / "b.jpg", seed=1)
    (tmp_path / "in" / "broken.jpg").write_text("not an image")
    r = run("in", "-r", "-o", "out", "--preset", "fast", "--json")
    assert r.exit_code == 1  # one input failed, the others were processed
    summary = json.loads(r.stdout)
    assert summary["counts"] == {"done": 2, "skipped": 0, "failed": 1}
    failed = [i for i in summary["images"] if i["status"] == "failed"][0]
    assert "broken.jpg" in failed["error"] and "not a recognised image" in failed["error"]
    assert (tmp_path / "out" / "a_deblurred.png").is_file()
    assert (tmp_path / "out" / "sub" / "b_deblurred.png").is_file()
    # Rerun: finished outputs are skipped.
    r = run("in", "-r", "-o", "out", "--preset", "fast", "--json")
    assert json.loads(r.stdout)["counts"]["skipped"] == 2


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--steps", "-1"], "--steps -1: must be >= 0"),
        (["--samples", "0"], "--samples 0: must be >= 1"),
        (["--noise-ceiling", "1.5"], "--noise-ceiling 1.5: must be in [1e-06, 1)"),
        (["--steps", "3", "--noise-ceiling", "1e-7"], "--noise-ceiling 1e-07: must be in [1e-06, 1)"),
        (["--steps", "3", "--seed", "-1"], "--seed -1: must be in [0, 2^64)"),
        (["--steps", "3", "--seed", str(2**64)], "must be in [0, 2^64)"),
        (["--tile", "64", "--overlap", "64"], "--overlap 64: must be in [0, tile)"),
        (["--average"], "--average needs --samples 2"),
        (["--std", "--samples", "1"], "--std needs --samples 2"),
        (["--format", "gif"], "--format gif"),
        (["--quality", "0"], "--quality 0"),
    ],
)
def test_invalid_flags_rejected_before_work(run, tmp_path, args, needle):
    _photo(tmp_path / "a.png")
    r = run("a.png", *args)
    assert r.exit_code == 2
    assert needle in r.output and len(r.output.strip().splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png"]


def test_unknown_preset_is_a_usage_error(run, tmp_path):
    _photo(tmp_path / "a.png")
    assert run("a.png", "--preset", "wild").exit_code == 2


def test_no_images_and_no_model(run, tmp_path, monkeypatch):
    (tmp_path / "empty").mkdir()
    r = run("empty")
    assert r.exit_code == 2 and "no images or videos found" in r.output
    _photo(tmp_path / "a.png")
    registry = tmp_path / "empty_registry.toml"
    registry.write_text("[models]\n")
    monkeypatch.setenv("DEBLUR_WEIGHTS_TOML", str(registry))
    r = run("a.png", weights=False)
    assert r.exit_code == 3 and "no default model is bundled" in r.output
    assert not (tmp_path / "a_deblurred.png").exists()


def test_output_may_not_overwrite_an_input(run, tmp_path):
    src = _photo(tmp_path / "a.png")
    before = src.read_bytes()
    r = run("a.png", "-o", "a.png", "--preset", "fast", "--overwrite", "--json")
    assert r.exit_code == 1 and "would overwrite an input" in r.stdout
    assert src.read_bytes() == before


def test_16bit_input_gives_16bit_output(run, tmp_path):
    rgb16 = (smooth_image(32, 48) * 65535).astype(np.uint16)
    ok, buf = cv2.imencode(".png", cv2.cvtColor(rgb16, cv2.COLOR_RGB2BGR))
    (tmp_path / "deep.png").write_bytes(buf.tobytes())
    r = run("deep.png", "--preset", "fast")
    assert r.exit_code == 0
    out = cv2.imread(str(tmp_path / "deep_deblurred.png"), cv2.IMREAD_UNCHANGED)
    assert out.dtype == np.uint16 and out.shape == (32, 48, 3)
    # Real 16-bit precision through the command: thousands of levels, not 256 of them
    # stretched by 257 (an 8-bit rounding written as 16 bits would pass the checks above).
    levels = np.unique(out)
    assert len(levels) > 1000 and np.mean(levels % 257 != 0) > 0.9


@pytest.mark.parametrize("ext", [".jpg", ".png"])
def test_exif_orientation_and_icc_profile_through_the_command(run, tmp_path, ext):
    # A phone photo stored sideways (EXIF orientation 6: rotate 90 degrees clockwise to
    # view) with a colour profile: the result is upright, says so (orientation 1), keeps
    # the camera's other tags and carries the same ICC profile.
    from PIL import ImageCms, ImageOps

    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    stored = np.round(smooth_image(40, 64, seed=3) * 255).astype(np.uint8)
    stored[:8, :16] = 255  # a bright corner, to see where it ends up
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "TestCam"
    src = tmp_path / f"phone{ext}"
    Image.fromarray(stored).save(src, exif=exif.tobytes(), icc_profile=icc, **({"quality": 95} if ext == ".jpg" else {}))
    r = run(src.name, "--preset", "fast")
    assert r.exit_code == 0, r.output
    out = Image.open(tmp_path / "phone_deblurred.png")
    upright = np.array(ImageOps.exif_transpose(Image.open(src)))
    assert out.size == (40, 64) and upright.shape == (64, 40, 3)
    assert out.getexif().get(0x0112) in (None, 1) and out.getexif().get(0x010F) == "TestCam"
    assert out.info.get("icc_profile") == icc
    res = np.array(out.convert("RGB")).astype(np.float32)
    # The bright corner went to the top right, where the viewer sees it.
    assert res[:16, -8:].mean() > res[-16:, :8].mean() + 40 and np.abs(res - upright).mean() < 30


def test_trajectory_frames_and_contact_sheet(run, tmp_path):
    _photo(tmp_path / "a.png")
    r = run("a.png", "--steps", "20", "--save-trajectory", "traj", "--seed", "0")
    assert r.exit_code == 0, r.output
    names = sorted(p.name for p in (tmp_path / "traj").iterdir())
    assert "a_trajectory.png" in names and "a_step0000.png" in names and "a_step0020.png" in names
    assert len([n for n in names if "_step" in n]) == 11


def test_trajectory_of_a_zero_step_run_is_refused(run, tmp_path):
    _photo(tmp_path / "a.png")
    for args in (["--preset", "fast"], ["--steps", "0"]):
        r = run("a.png", *args, "--save-trajectory", "traj")
        assert r.exit_code == 2 and "no intermediate estimates" in r.output, r.output
        assert not (tmp_path / "traj").exists() and not (tmp_path / "a_deblurred.png").exists()


def test_no_temporary_files_left(run, tmp_path):
    _photo(tmp_path / "a.png")
    r = run("a.png", "--samples", "2", "--std", "--steps", "2")
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "a_deblurred_s0.png", "a_deblurred_s1.png", "a_deblurred_std.png"]
    assert not [p for p in tmp_path.rglob("*") if p.name.endswith(".tmp")]


def test_a_write_that_fails_midway_keeps_the_earlier_output(tiny_weights, tmp_path):
    # A real failure halfway through the write, whatever the writer does: the command runs
    # with a file-size limit (RLIMIT_FSIZE) below the output's size, so the kernel refuses
    # the bytes past it (EFBIG), as a full disk would. The finished output from before must
    # survive byte for byte, with no temporary file left and a one-line error.
    import resource
    import signal
    import subprocess
    import sys

    _photo(tmp_path / "a.png", 64, 96)
    cmd = [sys.executable, "-m", "deblurkit", "a.png", "--weights", str(tiny_weights), "--preset", "fast", "--quiet"]
    assert subprocess.run(cmd, cwd=tmp_path, capture_output=True, timeout=120).returncode == 0
    out = tmp_path / "a_deblurred.png"
    before = out.read_bytes()
    assert len(before) > 4000

    def small_files():
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the write fails instead of killing
        resource.setrlimit(resource.RLIMIT_FSIZE, (2000, 2000))

    r = subprocess.run([*cmd, "--overwrite"], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                       preexec_fn=small_files)
    assert r.returncode != 0
    msg = r.stderr.strip()
    assert len(msg.splitlines()) == 1 and "a_deblurred.png" in msg and "write failed" in msg, msg
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "a_deblurred.png"]


def test_run_help_is_one_screen_grouped_and_flags_show_no_type(monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    r = CliRunner().invoke(app, ["run", "--help"])
    assert r.exit_code == 0
    lines = r.output.splitlines()
    assert len(lines) <= 66, len(lines)  # about one screen
    for panel in ("What to run", "Output", "Performance and limits", "Advanced (sampler)"):
        assert panel in r.output
    for name in PRESETS:
        assert f"  {name}: " in r.output  # every preset described, one per line
    for flag in ("--recursive", "--std", "--overwrite", "--json", "--quiet", "--debug"):
        row = next(line for line in lines if flag + " " in line)
        assert "<bool>" not in row  # an on/off flag takes no value
    assert "alpha_bar" not in r.output  # the schedule's formula lives in docs/cli.md


# The research flags of `run`: the sampler, its schedule and what it can save. They live in
# their own help panel; the default panels speak of the photo and the time.
RUN_ADVANCED = ("--steps", "--noise-ceiling", "--sampler", "--samples", "--average", "--flips", "--std",
                "--save-trajectory", "--save-guidance")
SAMPLER_TERMS = r"\b(ancestral|ddim|mmse|beta)\b|P-D\b|perception-distortion"


def _help(args, columns):
    r = CliRunner().invoke(app, [*args, "--help"], env={"COLUMNS": str(columns), "TERMINAL_WIDTH": str(columns)})
    assert r.exit_code == 0, r.output
    return r.output


def _split_panel(text, title):
    """(the help outside the panel `title`, the panel's own lines)."""
    lines = text.splitlines()
    top = next(i for i, line in enumerate(lines) if line.startswith(f"\u256d\u2500 {title} "))
    bottom = next(i for i in range(top, len(lines)) if lines[i].startswith("\u2570"))
    return "\n".join(lines[:top] + lines[bottom + 1:]), "\n".join(lines[top:bottom + 1])


def _flags_in(text):
    return set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", text))


@pytest.mark.parametrize("columns", [80, 100])
def test_top_level_help_is_short_and_lists_every_command_on_one_line(columns):
    from deblurkit.cli import COMMANDS

    out = _help([], columns)
    lines = out.splitlines()
    assert len(lines) <= 40, len(lines)
    _, box = _split_panel(out, "Commands")
    rows = [line.strip("\u2502 ") for line in box.splitlines()[1:-1]]
    assert sorted(row.split()[0] for row in rows) == sorted(COMMANDS), rows  # each command, one row each


@pytest.mark.parametrize("columns", [80, 120])
def test_run_help_default_panels_speak_of_the_photo_and_the_advanced_panel_holds_the_sampler(columns):
    out = _help(["run"], columns)
    default, advanced = _split_panel(out, "Advanced (sampler)")
    flat = " ".join(default.replace("\u2502", " ").split())  # a term split by wrapping is still found
    found = [m.group(0) for m in re.finditer(SAMPLER_TERMS, flat, re.IGNORECASE)]
    assert not found, found
    assert _flags_in(advanced) >= set(RUN_ADVANCED), set(RUN_ADVANCED) - _flags_in(advanced)
    rows = [line for line in default.splitlines() if line.startswith("\u2502")]
    assert not _flags_in("\n".join(row[:22] for row in rows)) & set(RUN_ADVANCED)  # none of them in a default panel
    for name, p in PRESETS.items():  # each preset: what it does, what it costs (fidelity, time)
        line = next(line for line in out.splitlines() if line.startswith(f"   {name}: "))
        assert f"({p.passes} pass" in line and (p.cost in line if p.cost else True), line


def test_every_option_of_run_is_in_its_help():
    import typer

    command = typer.main.get_command(app).commands["run"]
    shown = _flags_in(_help(["run"], 200)) | set(re.findall(r"(?<![\w-])-[a-z](?![\w-])", _help(["run"], 200)))
    names = [o for p in command.params if p.param_type_name == "option" for o in (*p.opts, *p.secondary_opts)]
    assert len(names) > 40 and "--no-average" in names
    missing = [o for o in names if o not in shown]
    assert not missing, missing


def test_model_recommended_preset_applies_unless_a_preset_is_given(tiny_weights, tmp_path, monkeypatch):
    from deblurkit.weights import registry as registry_mod
    from deblurkit.weights import sha256_of

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(registry_mod, "BUNDLED_DIR", tiny_weights.parent)
    reg = tmp_path / "weights.toml"
    reg.write_text(f'default = "t"\n[models.t]\narch = "dvsr"\nfile = "{tiny_weights.name}"\n'
                   f'sha256 = "{sha256_of(tiny_weights)}"\npreset = "fast"\n')
    monkeypatch.setenv("DEBLUR_WEIGHTS_TOML", str(reg))
    _photo(tmp_path / "a.png")
    r = CliRunner().invoke(app, ["a.png", "--json", "--quiet", "-o", "one.png"])
    assert r.exit_code == 0, r.output
    rec = json.loads(r.stdout)
    assert rec["preset"] == "fast" and rec["steps"] == 0 and rec["model"] == "t"
    r = CliRunner().invoke(app, ["a.png", "--json", "--quiet", "-o", "two.png", "--preset", "balanced", "--seed", "1"])
    rec = json.loads(r.stdout)
    assert rec["preset"] == "balanced" and rec["steps"] == PRESETS["balanced"].steps
    # The design card's sampling commands work under a predictor-only default: the flags
    # imply the preset whose sampling settings they need.
    (tmp_path / "dir").mkdir()
    _photo(tmp_path / "dir" / "b.png")
    r = CliRunner().invoke(app, ["dir", "--samples", "3", "--average", "--json", "--quiet", "-o", "avg"])
    assert r.exit_code == 0, r.output
    rec = json.loads(r.stdout)
    assert rec["preset"] == "distortion" and rec["steps"] == PRESETS["distortion"].steps
    assert rec["samples"] == 3 and rec["average"]
    r = CliRunner().invoke(app, ["a.png", "--samples", "2", "--std", "--json", "--quiet"])
    assert r.exit_code == 0, r.output
    rec = json.loads(r.stdout)
    assert rec["preset"] == "balanced" and rec["steps"] == PRESETS["balanced"].steps
    assert (tmp_path / "a_deblurred_std.png").is_file()


@pytest.mark.parametrize("name", [n for n, p in PRESETS.items() if p.steps > 0])
def test_preset_sampler_applies_unless_given(run, tmp_path, name):
    _photo(tmp_path / "a.png")
    r = run("a.png", "--preset", name, "--steps", "2", "--samples", "1", "--seed", "0", "--json", "-o", "one.png")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["sampler"] == PRESETS[name].sampler
    other = "ddim" if PRESETS[name].sampler == "ddpm" else "ddpm"
    r = run("a.png", "--preset", name, "--steps", "2", "--samples", "1", "--seed", "0", "--sampler", other, "--json", "-o", "two.png")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["sampler"] == other


def test_start_line_and_json_report_effective_settings_only(tiny_weights, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _photo(tmp_path / "a.png")
    w = ["--weights", str(tiny_weights)]
    r = CliRunner().invoke(app, ["a.png", "--preset", "fast", "--json", "-o", "one.png", *w])
    assert r.exit_code == 0, r.output
    assert "initial predictor only" in r.output and "seed" not in r.output.split("\n")[0]
    rec = json.loads(r.stdout)
    assert rec["steps"] == 0 and rec["seed"] is None and rec["noise_ceiling"] is None and rec["sampler"] is None
    r = CliRunner().invoke(app, ["a.png", "--preset", "fast", "--steps", "3", "--seed", "5", "--json", "-o", "two.png", *w])
    assert r.exit_code == 0, r.output
    assert "preset fast with --steps, steps 3" in r.output
    rec = json.loads(r.stdout)
    assert rec["preset_overridden_by"] == ["--steps"] and rec["seed"] == 5 and rec["noise_ceiling"] > 0


def test_plain_progress_lines_when_stderr_is_not_a_terminal(tiny_weights, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _photo(tmp_path / "a.png")
    _photo(tmp_path / "b.png", seed=1)
    r = CliRunner().invoke(app, [".", "--steps", "20", "--seed", "0", "-o", "out", "--weights", str(tiny_weights)])
    assert r.exit_code == 0, r.output
    assert "[1/2] a.png: done" in r.output and "[2/2] b.png: done" in r.output
    assert "a.png: step 2/20" in r.output and "b.png: step 20/20" in r.output
    assert "step 3/20" not in r.output  # every ~10% of the chain, not every step


def test_partial_outputs_are_completed_without_overwriting(run, tmp_path):
    _photo(tmp_path / "a.png")
    keep = tmp_path / "a_deblurred_s0.png"
    keep.write_bytes(b"left by an interrupted run")
    r = run("a.png", "--samples", "2", "--steps", "2", "--seed", "3")
    assert r.exit_code == 0, r.output
    assert keep.read_bytes() == b"left by an interrupted run"
    assert Image.open(tmp_path / "a_deblurred_s1.png").size == (56, 40)


def test_region_and_preview_restore_only_a_crop_under_their_own_name(run, tmp_path):
    _photo(tmp_path / "a.png", h=120, w=160)
    r = run("a.png", "--region", "10,20,64,48", "--preset", "fast", "--json")
    assert r.exit_code == 0, r.output
    out = tmp_path / "a_preview_fast.png"
    assert Image.open(out).size == (64, 48)
    assert "region 10,20,64,48" in json.loads(r.stdout)["images"][0]["notes"][0]
    r = run("a.png", "--region", "150,100,64,48", "--preset", "fast", "--steps", "2", "--seed", "0")
    assert r.exit_code == 0, r.output
    assert Image.open(tmp_path / "a_preview_custom.png").size == (10, 20)  # clipped at the photo's edge
    r = run("a.png", "--preview", "--preset", "fast")
    assert r.exit_code == 0 and Image.open(out).size == (64, 48)  # exists: skipped, not overwritten
    r = run("a.png", "--preview", "--preset", "fast", "--overwrite")
    assert Image.open(out).size == (160, 120)  # the photo is smaller than the preview crop
    assert not (tmp_path / "a_deblurred.png").exists()  # the full run's output is untouched
    r = run("a.png", "--region", "500,500,64,64", "--preset", "fast", "--overwrite")
    assert r.exit_code == 1 and "outside the 160x120 image" in r.output
    r = run("a.png", "--region", "1,2,3")
    assert r.exit_code == 2 and "X,Y,W,H" in r.output
    r = run("a.png", "--region", "0,0,64,64", "--preview")
    assert r.exit_code == 2


def test_file_names_with_brackets_or_newlines_are_printed_not_parsed(tiny_weights, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "x[").mkdir()
    _photo(tmp_path / "in" / "x[" / "b]y.png")  # its path prints as "in/x[/b]y.png", a closing tag
    _photo(tmp_path / "in" / "BAD[backup].png", seed=1)
    (tmp_path / "in" / "broken\nname[red].png").write_bytes(b"not an image")
    r = CliRunner().invoke(app, ["in", "-r", "-o", "out", "--preset", "fast", "--json", "--weights", str(tiny_weights)])
    assert r.exit_code == 1, r.output  # the broken file fails alone; the batch goes on
    rec = json.loads(r.stdout)
    assert rec["counts"] == {"done": 2, "skipped": 0, "failed": 1}
    assert "BAD[backup].png" in r.stderr and "x[/b]y.png" in r.stderr
    error_lines = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(error_lines) == 1 and "broken\\nname[red].png" in error_lines[0]


def test_inputs_sharing_a_stem_get_distinct_outputs(run, tmp_path):
    (tmp_path / "d").mkdir()
    _photo(tmp_path / "d" / "a.png")
    Image.open(tmp_path / "d" / "a.png").save(tmp_path / "d" / "a.jpg")
    _photo(tmp_path / "d" / "b.png", seed=2)
    r = run("d", "--preset", "fast", "--json")
    assert r.exit_code == 0, r.output
    rec = json.loads(r.stdout)
    assert rec["counts"]["done"] == 3
    names = sorted(p.name for p in (tmp_path / "d").iterdir())
    assert names == ["a.jpg", "a.png", "a_jpg_deblurred.png", "a_png_deblurred.png", "b.png", "b_deblurred.png"]
    notes = [i.get("notes", []) for i in rec["images"]]
    assert sum("same name stem" in " ".join(n) for n in notes) == 2


def test_running_out_of_memory_is_a_per_image_failure(run, tmp_path, monkeypatch):
    from deblurkit.restorer import Restorer

    def exhausted(self, *a, **k):
        raise RuntimeError("DefaultCPUAllocator: not enough memory: you tried to allocate 78643200000 bytes.")

    monkeypatch.setattr(Restorer, "restore", exhausted)
    _photo(tmp_path / "a.png")
    r = run("a.png", "--samples", "10000", "--steps", "2", "--average", "--seed", "0")
    assert r.exit_code == 1
    lines = [line for line in r.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "out of memory with 10000 sample(s) at 56x40; use fewer --samples" in lines[0]
    assert "Traceback" not in r.output


def test_too_many_samples_for_memory_are_refused_before_allocating(run, tmp_path, monkeypatch):
    import deblurkit.restorer as restorer_module

    # 10000 finished samples at 256x256 are 7.9 GB: more than the 4 GiB this run is allowed.
    monkeypatch.setattr(restorer_module, "available_memory", lambda device: 4 << 30)
    _photo(tmp_path / "a.png", h=256, w=256)
    r = run("a.png", "--samples", "10000", "--steps", "2", "--average", "--seed", "0")
    assert r.exit_code == 1
    lines = [line for line in r.output.splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "for 10000 sample(s) at 256x256" in lines[0] and "use fewer --samples" in lines[0]


def test_samples_that_do_not_fit_together_are_restored_in_groups_with_a_note(run, tmp_path, monkeypatch):
    import deblurkit.restorer as restorer_module

    _photo(tmp_path / "a.png")
    assert run("a.png", "--samples", "6", "--steps", "2", "--average", "--seed", "0", "-o", "together.png").exit_code == 0
    monkeypatch.setattr(restorer_module, "available_memory", lambda device: 40 * 56 * 12 * 14 + (2 << 20))
    r = run("a.png", "--samples", "6", "--steps", "2", "--average", "--seed", "0", "-o", "grouped.png", "--json")
    assert r.exit_code == 0, r.output
    notes = json.loads(r.output)["images"][0]["notes"]
    assert any("at a time" in n and "6 samples at 56x40" in n for n in notes)
    a = np.asarray(Image.open(tmp_path / "together.png"), dtype=int)
    b = np.asarray(Image.open(tmp_path / "grouped.png"), dtype=int)
    assert np.abs(a - b).max() <= 1  # the same samples; batched float rounding at most


def test_a_folder_run_gives_the_pixels_of_one_by_one_runs(run, tmp_path):
    """Reading ahead and writing behind (threads) change when work happens, not its result."""
    for i, name in enumerate(("a.png", "b.png", "c.png")):
        _photo(tmp_path / "dir" / name, seed=i)
    assert run("dir", "--steps", "2", "--seed", "3").exit_code == 0
    for name in ("a", "b", "c"):
        r = run(f"dir/{name}.png", "--steps", "2", "--seed", "3", "-o", f"single_{name}.png")
        assert r.exit_code == 0, r.output
        together = np.asarray(Image.open(tmp_path / "dir" / f"{name}_deblurred.png"))
        alone = np.asarray(Image.open(tmp_path / f"single_{name}.png"))
        np.testing.assert_array_equal(together, alone)


def test_a_failed_write_behind_is_that_images_failure(run, tmp_path, monkeypatch):
    import deblurkit.pipeline as pipeline
    from deblurkit.errors import ImageWriteError

    real = pipeline.write_atomic

    def picky(path, data):
        if "b_deblurred" in str(path):
            raise ImageWriteError(f"{path}: disk full")
        return real(path, data)

    monkeypatch.setattr(pipeline, "write_atomic", picky)
    for i, name in enumerate(("a.png", "b.png", "c.png")):
        _photo(tmp_path / "dir" / name, seed=i)
    r = run("dir", "--preset", "fast", "--json")
    assert r.exit_code == 1
    summary = json.loads(r.stdout[r.stdout.index("{"):])
    assert summary["counts"] == {"done": 2, "skipped": 0, "failed": 1}
    failed = [i for i in summary["images"] if i["status"] == "failed"]
    assert failed[0]["input"].endswith("b.png") and "disk full" in failed[0]["error"]


def _command_paths(cmd, prefix=()):
    yield prefix
    if getattr(cmd, "commands", None):  # a group (typer 0.29 vendors its own click)
        for name, sub in cmd.commands.items():
            yield from _command_paths(sub, (*prefix, name))


def test_no_flag_of_any_command_shows_a_type(monkeypatch):
    """Every on/off flag of every command, --help included, with whatever typer/click a
    fresh install picks (typer 0.29 + click 8.5 printed `<bool>` for them)."""
    import typer

    monkeypatch.setenv("COLUMNS", "200")
    root = typer.main.get_command(app)
    paths = list(_command_paths(root))
    assert ("bench", "kernels") in paths and ("train",) in paths and ("run",) in paths
    for path in paths:
        r = CliRunner().invoke(app, [*path, "--help"])
        assert r.exit_code == 0, (path, r.output)
        assert "<bool>" not in r.output, (path, [line for line in r.output.splitlines() if "<bool>" in line])


def test_alpha_dropped_by_jpeg_is_noted_and_format_conflicts_refused(run, tmp_path):
    rgba = np.dstack([np.round(smooth_image(32, 40) * 255).astype(np.uint8), np.full((32, 40), 128, np.uint8)])
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    r = run("a.png", "-o", "a.jpg", "--preset", "fast", "--json")
    assert r.exit_code == 0, r.output
    assert "alpha channel is dropped" in r.output
    r = run("a.png", "-o", "b.png", "-f", "jpg", "--preset", "fast")
    assert r.exit_code == 2 and "different formats" in r.output and not (tmp_path / "b.png").exists()


def test_preset_costs_in_help_and_readme_come_from_one_source():
    import re

    from deblurkit.presets import PRESETS

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    help_text = re.sub(r"\s+", "", CliRunner().invoke(app, ["run", "--help"], env={"COLUMNS": "120"}).output.replace("\u2502", ""))
    for name, preset in PRESETS.items():
        assert re.sub(r"\s+", "", preset.help) in help_text, name
        if preset.cost:
            assert preset.cost in preset.help, name
            row = next(line for line in readme.splitlines() if line.startswith(f"| `--preset {name}`"))
            assert preset.cost in row, (name, row)
    assert "fp16(GPU)" in help_text  # every --precision the README offers
