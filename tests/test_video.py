"""Videos: same size, frame rate and frame count out, audio copied, resumable, seeded per
frame (or one noise field), and bad files as one-line errors with no finished-looking output."""

from __future__ import annotations

import json
import os
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

av = pytest.importorskip("av")

from deblurkit import Deblurrer  # noqa: E402
from deblurkit.cli.app import app  # noqa: E402
from deblurkit.video import frame_key, probe, read_frames  # noqa: E402

from conftest import make_clip, save_photo  # noqa: E402


def run(args, tiny_weights):
    return CliRunner().invoke(app, [*map(str, args), "--weights", str(tiny_weights), "--quiet", "--tile", "64"])


def test_video_keeps_size_rate_frames_and_audio(tiny_weights, tmp_path):
    clip = tmp_path / "clip.mp4"
    make_clip(clip, frames=6, rate=Fraction(30000, 1001))
    r = run([clip, "--preset", "fast"], tiny_weights)
    assert r.exit_code == 0, r.output
    out = tmp_path / "clip_deblurred.mp4"
    src, dst = probe(clip), probe(out)
    assert (dst.width, dst.height, dst.rate, dst.audio_streams) == (src.width, src.height, Fraction(30000, 1001), 1)
    decoded = [f for _, f in read_frames(out)]
    assert len(decoded) == 6
    # Each frame is the photo path's restoration of the decoded input frame (up to the codec).
    d = Deblurrer(weights=tiny_weights, device="cpu", tile=64)
    for (_, frame), got in zip(read_frames(clip), decoded):
        want = d.restore(frame, preset="fast")
        # H.264 (CRF 16, 4:2:0) costs a few levels on the tiny model's busy output; a swapped
        # frame or channel order would cost tens.
        assert np.abs(got.astype(float) - want).mean() < 5.0
        assert np.abs(got.astype(float) - want[:, :, ::-1]).mean() > 15.0
    assert not list(tmp_path.glob("*.partial"))  # the work folder is gone


def test_odd_sizes_and_no_audio(tiny_weights, tmp_path):
    clip = tmp_path / "odd.mkv"
    make_clip(clip, frames=3, h=47, w=63, audio=False)
    r = run([clip, "--preset", "fast"], tiny_weights)
    assert r.exit_code == 0, r.output
    info = probe(tmp_path / "odd_deblurred.mkv")
    assert (info.width, info.height, info.audio_streams) == (63, 47, 0)


def test_interrupted_run_resumes_without_redoing_frames(tiny_weights, tmp_path, monkeypatch):
    clip = tmp_path / "clip.mp4"
    make_clip(clip, frames=5)
    calls = []
    real = Deblurrer.restore_tensor

    def flaky(self, *a, **k):
        calls.append(1)
        if len(calls) == 3 and not resumed:
            raise KeyboardInterrupt
        return real(self, *a, **k)

    resumed = False
    monkeypatch.setattr(Deblurrer, "restore_tensor", flaky)
    r = run([clip, "--preset", "fast"], tiny_weights)
    assert r.exit_code == 130
    assert not (tmp_path / "clip_deblurred.mp4").exists()  # nothing that looks finished
    partial = tmp_path / "clip_deblurred.mp4.frames.partial"
    assert sorted(p.name for p in partial.iterdir()) == ["000000.png", "000001.png", "made_by.json"]

    calls.clear()
    resumed = True
    r = CliRunner().invoke(app, [str(clip), "--preset", "fast", "--weights", str(tiny_weights), "--tile", "64"])
    assert r.exit_code == 0, r.output
    assert len(calls) == 3 and "resumed: 2 of 5 frames" in r.output
    assert len(list(read_frames(tmp_path / "clip_deblurred.mp4"))) == 5 and not partial.exists()


def test_temporal_noise_modes(tiny_weights, tmp_path):
    assert frame_key("c.mp4", 3, "fixed") == frame_key("c.mp4", 4, "fixed")
    assert frame_key("c.mp4", 3, "per-frame") != frame_key("c.mp4", 4, "per-frame")
    clip = tmp_path / "still.mp4"
    make_clip(clip, frames=3, audio=False, repeat=True)  # the same picture three times
    outputs = {}
    for mode in ("fixed", "per-frame"):
        out = tmp_path / f"{mode}.mp4"
        r = run([clip, "--steps", "3", "--seed", "2", "--temporal-noise", mode, "-o", out], tiny_weights)
        assert r.exit_code == 0, r.output
        outputs[mode] = [f.astype(float) for _, f in read_frames(out)]
    flicker = {m: np.mean([np.abs(a - b).mean() for a, b in zip(f, f[1:])]) for m, f in outputs.items()}
    assert flicker["fixed"] < 0.05 < flicker["per-frame"], flicker


def test_truncated_video_is_a_one_line_error_and_no_output(tiny_weights, tmp_path):
    clip = tmp_path / "clip.mp4"
    make_clip(clip, frames=4)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(clip.read_bytes()[: clip.stat().st_size // 3])
    r = run([broken, "--preset", "fast"], tiny_weights)
    assert r.exit_code == 1
    lines = [line for line in r.output.splitlines() if "error" in line]
    assert len(lines) == 1 and "broken.mp4" in lines[0], r.output
    assert not (tmp_path / "broken_deblurred.mp4").exists()


def test_photo_only_flags_are_refused_for_videos(tiny_weights, tmp_path):
    clip = tmp_path / "clip.mp4"
    make_clip(clip, frames=2, audio=False)
    for flags, needle in ((["--std", "--samples", "2"], "--std"), (["--side-by-side"], "--side-by-side"),
                          (["--steps", "2", "--samples", "2"], "needs --average"), (["-o", tmp_path / "x.png"], "videos are written as"), (["-f", "jpg"], "for photos")):
        r = run([clip, *flags], tiny_weights)
        assert r.exit_code == 2 and needle in r.output, r.output


def test_folder_with_photos_and_clips(tiny_weights, tmp_path):
    (tmp_path / "d").mkdir()
    make_clip(tmp_path / "d" / "clip.mov", frames=2, audio=False)
    save_photo(tmp_path / "d" / "photo.png", 32, 40)
    r = run([tmp_path / "d", "--preset", "fast"], tiny_weights)
    assert r.exit_code == 0, r.output
    assert (tmp_path / "d" / "clip_deblurred.mov").is_file() and (tmp_path / "d" / "photo_deblurred.png").is_file()
    # A second run finds both outputs and redoes nothing (outputs are never taken as inputs).
    r = CliRunner().invoke(app, [str(tmp_path / "d"), "--preset", "fast", "--weights", str(tiny_weights), "--json", "--quiet"])
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout[r.stdout.index("{"):])
    assert summary["counts"] == {"done": 0, "skipped": 2, "failed": 0}


def _fast(clip, tiny_weights, *extra):
    return CliRunner().invoke(app, [str(clip), "--preset", "fast", "--weights", str(tiny_weights), "--tile", "64", *map(str, extra)])


def test_resume_reuses_frames_only_from_the_same_clip_and_settings(tiny_weights, tmp_path, monkeypatch):
    clip = tmp_path / "clip.mp4"
    make_clip(clip, frames=4, audio=False)
    calls = []
    real = Deblurrer.restore_tensor

    def interrupting(self, *a, **k):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real(self, *a, **k)

    monkeypatch.setattr(Deblurrer, "restore_tensor", interrupting)
    assert _fast(clip, tiny_weights).exit_code == 130
    monkeypatch.setattr(Deblurrer, "restore_tensor", real)
    # Another clip under the same name: nothing of the old one may be spliced in.
    make_clip(clip, frames=4, audio=False, repeat=True)
    r = _fast(clip, tiny_weights)
    assert r.exit_code == 0, r.output
    assert "started over" in r.output and "the clip has changed" in r.output and "resumed" not in r.output
    d = Deblurrer(weights=tiny_weights, device="cpu", tile=64)
    for (_, frame), (_, got) in zip(read_frames(clip), read_frames(tmp_path / "clip_deblurred.mp4")):
        assert np.abs(got.astype(float) - d.restore(frame, preset="fast")).mean() < 5.0


def test_changed_settings_start_over(tiny_weights, tmp_path):
    clip = tmp_path / "clip.mp4"
    make_clip(clip, frames=2, audio=False)
    partial = tmp_path / "clip_deblurred.mp4.frames.partial"
    r = _fast(clip, tiny_weights)
    assert r.exit_code == 0
    (tmp_path / "clip_deblurred.mp4").unlink()
    # Fake an interrupted run made with other settings: its frames must not be reused.
    from deblurkit.video import MANIFEST, pixel_settings, source_fingerprint

    partial.mkdir()
    d = Deblurrer(weights=tiny_weights, device="cpu", tile=64)
    made_by = {"source": source_fingerprint(clip), "settings": pixel_settings(d, d.settings("balanced"), 0, "fixed")}
    (partial / MANIFEST).write_text(json.dumps(made_by))
    save_photo(partial / "000000.png", 48, 64)
    r = _fast(clip, tiny_weights)
    assert r.exit_code == 0, r.output
    assert "started over" in r.output and "settings changed" in r.output


def test_a_truncated_clip_is_a_failure_unless_allowed(tiny_weights, tmp_path):
    for ext in ("mp4", "mkv"):
        clip = tmp_path / f"clip.{ext}"
        make_clip(clip, frames=20, audio=False)
        cut = tmp_path / f"cut.{ext}"
        cut.write_bytes(clip.read_bytes()[: int(clip.stat().st_size * 0.6)])
        try:
            n = len(list(read_frames(cut)))
        except Exception:
            n = 0
        r = _fast(cut, tiny_weights)
        assert r.exit_code == 1, (ext, n, r.output)
        assert f"cut.{ext}" in r.output and not (tmp_path / f"cut_deblurred.{ext}").exists()
        if n:
            r = _fast(cut, tiny_weights, "--allow-truncated")
            assert r.exit_code == 0, r.output
            assert "--allow-truncated" in r.output and (tmp_path / f"cut_deblurred.{ext}").exists()


def test_videos_are_byte_identical_for_the_same_seed(tiny_weights, tmp_path):
    clip = tmp_path / "clip.mp4"
    make_clip(clip, frames=8, h=64, w=96)
    outs = []
    for name in ("a.mp4", "b.mp4"):
        r = CliRunner().invoke(app, [str(clip), "--steps", "2", "--seed", "5", "--weights", str(tiny_weights), "--tile", "64",
                                     "-o", str(tmp_path / name), "--quiet"])
        assert r.exit_code == 0, r.output
        outs.append((tmp_path / name).read_bytes())
    assert outs[0] == outs[1]


def test_unwritable_containers_and_folders_get_one_line(tiny_weights, tmp_path):
    clip = tmp_path / "clip.mp4"
    make_clip(clip, frames=2, audio=False)
    for name in ("res.webm", "res.avi"):
        r = _fast(clip, tiny_weights, "-o", tmp_path / name)
        assert r.exit_code == 2 and "mp4" in r.output and not (tmp_path / name).exists(), r.output
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        if os.access(ro, os.W_OK):
            pytest.skip("running as a user who can write to read-only folders")
        r = _fast(clip, tiny_weights, "-o", ro / "x.mp4")
        assert r.exit_code == 1 and "Traceback" not in r.output and "x.mp4" in r.output, r.output
    finally:
        ro.chmod(0o755)


def test_encoding_failure_leaves_no_partial(tiny_weights, tmp_path, monkeypatch):
    import deblurkit.video as video

    clip = tmp_path / "clip.mp4"
    make_clip(clip, frames=2, audio=False)
    real = video._encode_in_child

    def disk_full(frames_dir, count, info, source, partial, fmt, pts=None):
        partial.write_bytes(b"half a video")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(video, "_encode_in_child", disk_full)
    r = _fast(clip, tiny_weights)
    assert r.exit_code == 1 and "No space left on device" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "clip_deblurred.mp4.partial").exists()  # no half-written video
    assert (tmp_path / "clip_deblurred.mp4.frames.partial").is_dir()  # the frames stay, for a rerun

    def interrupted(*a):
        a[4].write_bytes(b"half")
        raise KeyboardInterrupt

    monkeypatch.setattr(video, "_encode_in_child", interrupted)
    r = _fast(clip, tiny_weights)
    assert r.exit_code == 130 and not (tmp_path / "clip_deblurred.mp4.partial").exists()
    monkeypatch.setattr(video, "_encode_in_child", real)
    r = _fast(clip, tiny_weights)
    assert r.exit_code == 0 and "resumed: 2 of 2" in r.output


def test_a_corrupt_frame_file_is_restored_again(tiny_weights, tmp_path, monkeypatch):
    import deblurkit.video as video

    clip = tmp_path / "clip.mp4"
    make_clip(clip, frames=3, audio=False)
    monkeypatch.setattr(video, "_encode_in_child", lambda *a: (_ for _ in ()).throw(KeyboardInterrupt))
    assert _fast(clip, tiny_weights).exit_code == 130
    monkeypatch.undo()
    frame = tmp_path / "clip_deblurred.mp4.frames.partial" / "000001.png"
    frame.write_bytes(frame.read_bytes()[:40])
    r = _fast(clip, tiny_weights)
    assert r.exit_code == 0, r.output
    assert "resumed: 2 of 3" in r.output and "1 unreadable frame file" in r.output


def test_a_second_run_on_a_busy_clip_skips_it(tiny_weights, tmp_path):
    from deblurkit.video import clip_lock

    clip = tmp_path / "clip.mp4"
    make_clip(clip, frames=2, audio=False)
    with clip_lock(tmp_path / "clip_deblurred.mp4") as got:
        assert got
        r = CliRunner().invoke(app, [str(clip), "--preset", "fast", "--weights", str(tiny_weights), "--json", "--quiet"])
        assert "busy" in r.output and not (tmp_path / "clip_deblurred.mp4").exists()
    assert not (tmp_path / "clip_deblurred.mp4.lock").exists()
    assert _fast(clip, tiny_weights).exit_code == 0


def _times(path):
    """Each decoded frame's time in seconds."""
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        return [Fraction(f.pts) * s.time_base for f in c.decode(s)]


def test_variable_frame_rate_keeps_every_time_stamp(tiny_weights, tmp_path):
    # Phones record variable frame rates; re-timing the frames evenly would drift them
    # away from the copied audio.
    pts_ms = [0, 40, 120, 140, 300, 310]
    clip = tmp_path / "vfr.mp4"
    make_clip(clip, frames=len(pts_ms), pts_ms=pts_ms)
    assert _times(clip) == [Fraction(t, 1000) for t in pts_ms]  # the source really is VFR
    r = run([clip, "--preset", "fast"], tiny_weights)
    assert r.exit_code == 0, r.output
    assert _times(tmp_path / "vfr_deblurred.mp4") == [Fraction(t, 1000) for t in pts_ms]
    assert "time stamps" not in r.output


def test_constant_rate_clip_keeps_its_time_stamps_in_every_container(tiny_weights, tmp_path):
    for ext in ("mp4", "mkv", "mov"):
        clip = tmp_path / f"c.{ext}"
        make_clip(clip, frames=4, rate=Fraction(30000, 1001), audio=False)
        assert run([clip, "--preset", "fast"], tiny_weights).exit_code == 0
        want = [i * Fraction(1001, 30000) for i in range(4)]
        got = _times(tmp_path / f"c_deblurred.{ext}")
        # Matroska stores milliseconds: each time within half of one.
        assert all(abs(g - w) <= Fraction(1, 2000) for g, w in zip(got, want)) and len(got) == 4, (ext, got)


def test_usable_time_stamps():
    from deblurkit.video import VideoInfo, usable_pts

    info = VideoInfo(64, 48, Fraction(25), 3, 0, time_base=Fraction(1, 1000))
    assert usable_pts([0, 40, 120], 3, info) == [0, 40, 120]
    assert usable_pts([-80, -40, 0], 3, info) == [0, 40, 80]  # a stream starting before zero is shifted
    assert usable_pts([5, 45, 85], 3, info) == [5, 45, 85]  # a late start is kept (audio sync)
    assert usable_pts([0, None, 80], 3, info) is None
    assert usable_pts([0, 40, 40], 3, info) is None
    assert usable_pts([0, 80, 40], 3, info) is None
    assert usable_pts([0, 40], 3, info) is None
    assert usable_pts([0, 40, 80], 3, VideoInfo(64, 48, Fraction(25), 3, 0)) is None


def test_max_pixels_applies_to_video_frames(tiny_weights, tmp_path):
    clip = tmp_path / "clip.mp4"
    make_clip(clip, frames=2, audio=False)
    r = _fast(clip, tiny_weights, "--max-pixels", "1000")
    assert r.exit_code == 1 and "--max-pixels" in r.output and not (tmp_path / "clip_deblurred.mp4").exists()


def test_a_photo_named_like_a_video_is_restored_as_the_photo_it_is(tiny_weights, tmp_path):
    save_photo(tmp_path / "p.png", 32, 40)
    (tmp_path / "p.png").rename(tmp_path / "shot.mp4")
    r = CliRunner().invoke(app, [str(tmp_path / "shot.mp4"), "--preset", "fast", "--weights", str(tiny_weights), "--tile", "64"])
    assert r.exit_code == 0, r.output
    assert (tmp_path / "shot_deblurred.png").is_file() and not (tmp_path / "shot_deblurred.mp4").exists()
    assert "holds a PNG image" in r.output


@pytest.mark.parametrize("case", range(12))
def test_fuzzed_clips_fail_cleanly_or_keep_every_frame(tiny_weights, tmp_path, case):
    """Truncations and byte flips of a small clip: one-line failure (exit 1), or exit 0 with
    every frame the clip holds; never a traceback or a hang."""
    import time

    clip = tmp_path / "clip.mp4"
    make_clip(clip, frames=6, audio=case % 2 == 0)
    data = bytearray(clip.read_bytes())
    rng = np.random.default_rng(case)
    if case < 6:
        data = data[: int(rng.integers(16, len(data)))]
    else:
        for i in rng.integers(0, len(data), size=8):
            data[i] ^= int(rng.integers(1, 256))
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(bytes(data))
    t0 = time.perf_counter()
    r = CliRunner().invoke(app, [str(bad), "--preset", "fast", "--weights", str(tiny_weights), "--tile", "64"])
    assert time.perf_counter() - t0 < 60
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    assert r.exit_code in (0, 1), r.output
    assert "Traceback" not in r.output
    out = tmp_path / "bad_deblurred.mp4"
    if r.exit_code == 0:
        assert len(list(read_frames(out))) == 6, r.output
    else:
        assert not out.exists()


def test_the_blind_path_manifest_is_the_same_with_or_without_a_kernel_choice(tiny_weights):
    """--kernel none leaves a clip's manifest as it was before the kernel step existed, so its
    frames stay reusable; auto's names the step (frames made before it are re-made)."""
    from deblurkit.kernel_path import KernelChoice
    from deblurkit.video import pixel_settings

    d = Deblurrer(weights=tiny_weights, device="cpu", tile=64)
    s = d.settings("fast")
    assert pixel_settings(d, s, 0, "fixed", KernelChoice("none")) == pixel_settings(d, s, 0, "fixed")
    assert pixel_settings(d, s, 0, "fixed", KernelChoice("auto"))["kernel"]["auto_step"] == "streaks+estimate512+agreement-low-noise"
