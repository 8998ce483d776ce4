"""Videos: every frame through the deblurrer, written back at the same size and time stamps.

Container I/O uses PyAV (FFmpeg's libraries): unlike OpenCV's VideoCapture/VideoWriter it
gives the exact frame rate as a fraction, encodes H.264 and can copy the audio packets
into the output untouched.

A run is resumable: each restored frame is written (atomically) as a PNG into
`<output>.frames.partial/` and frames found there are not restored again. The video is
encoded only when every frame exists, into `<output>.partial`, and renamed to the output
name at the end; so a name without `.partial` is always a finished video. The frames
folder records what made its frames (the source's size, time stamp and first bytes, and
every setting that changes pixels): a rerun reuses them only when all of that is the same,
and starts over otherwise. A frame file that does not decode is restored again. A lock
file beside the output keeps a second run on the same clip out (it skips it as busy).

The encoder is run so that the same frames give the same bytes (one x264 thread, no
encoder or time tags in the container): docs/video.md promises byte-identical output.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

from .errors import DeblurError, ImageReadError
from .io import VIDEO_EXTENSIONS

# numpy, torch, PyAV and OpenCV are imported where used: the CLI imports this module to
# define its options.

if TYPE_CHECKING:
    import numpy as np

    from .kernel_path import KernelChoice

    from .api import Deblurrer
    from .pipeline import ImageResult
    from .presets import Settings

__all__ = ["VIDEO_EXTENSIONS", "process_video", "probe", "read_frames"]
# Output containers: the input's where it can hold H.264, else MP4.
_CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
WRITABLE_VIDEO = tuple(_CONTAINERS)  # what -o may name for a video
TEMPORAL_NOISE = ("fixed", "per-frame")  # fixed: measured to add half the flicker (docs/video.md)
DEFAULT_RATE = Fraction(30)


class VideoError(DeblurError):
    """A video could not be read or written."""


def output_extension(path: Path) -> str:
    ext = path.suffix.lower()
    return ext.lstrip(".") if ext in _CONTAINERS else "mp4"


@dataclass
class VideoInfo:
    width: int
    height: int
    rate: Fraction
    frames: int | None  # from the container header (or its duration); None where it does not say
    audio_streams: int
    rate_guessed: bool = False
    frames_from_duration: bool = False  # `frames` estimated from the duration, not counted
    time_base: Fraction | None = None  # the unit of the video stream's time stamps


def _open(path: Path):
    import av

    try:
        return av.open(str(path))
    except (av.error.FFmpegError, OSError, ValueError) as e:  # FFmpegError covers InvalidDataError
        raise ImageReadError(f"{path}: cannot read as a video ({_reason(e)})") from None


def _reason(e: Exception) -> str:
    text = getattr(e, "strerror", None) or str(e)
    return text.split(":")[-1].strip() if text else type(e).__name__


def probe(path: Path) -> VideoInfo:
    with _open(path) as c:
        if not c.streams.video:
            raise ImageReadError(f"{path}: no video stream")
        v = c.streams.video[0]
        rate = v.average_rate or v.guessed_rate or v.base_rate
        frames, estimated = v.frames or None, False
        if frames is None and rate:
            # Matroska headers carry a duration, not a frame count.
            seconds = float(v.duration * v.time_base) if v.duration and v.time_base else (c.duration or 0) / 1e6
            if seconds > 0:
                frames, estimated = max(1, round(seconds * float(rate))), True
        return VideoInfo(v.codec_context.width, v.codec_context.height, Fraction(rate) if rate else DEFAULT_RATE,
                         frames, len(c.streams.audio), rate_guessed=not rate, frames_from_duration=estimated,
                         time_base=Fraction(v.time_base) if v.time_base else None)


def read_frames(path: Path, pts: list | None = None) -> "Iterator[tuple[int, np.ndarray]]":
    """(index, (H, W, 3) uint8 RGB) for every frame; a decoding failure is one-line error.
    `pts`, when given, collects each frame's time stamp (in the stream's time base, None
    where the frame has none), so the output can keep the source's timing."""
    import av

    with _open(path) as c:
        if not c.streams.video:
            raise ImageReadError(f"{path}: no video stream")
        stream = c.streams.video[0]
        stream.thread_type = "AUTO"
        size = (stream.codec_context.width, stream.codec_context.height)
        index = 0
        try:
            for frame in c.decode(stream):
                if (frame.width, frame.height) != size:
                    # Squashing later frames to the first size would distort them; refuse.
                    raise ImageReadError(f"{path}: the picture size changes at frame {index} ({size[0]}x{size[1]} to "
                                         f"{frame.width}x{frame.height}); split the clip where it changes")
                if pts is not None:
                    pts.append(frame.pts)
                yield index, frame.to_ndarray(format="rgb24")
                index += 1
        except (av.error.FFmpegError, ValueError) as e:
            raise ImageReadError(f"{path}: video unreadable after frame {index} ({_reason(e)}; truncated or corrupt?)") from None
    if index == 0:
        raise ImageReadError(f"{path}: no decodable video frames (truncated or corrupt?)")


def frame_key(name: str, index: int, temporal_noise: str) -> str:
    """Seeding key: per-frame noise from the frame index, or one noise field for the clip."""
    return name if temporal_noise == "fixed" else f"{name}#frame{index}"


def usable_pts(pts: list | None, count: int, info: VideoInfo) -> list[int] | None:
    """The source's frame time stamps if the output can keep them (one per frame, all
    known, strictly increasing, a time base to read them in), shifted so none is negative;
    otherwise None (the frames are then written evenly at the average rate)."""
    if not pts or len(pts) != count or info.time_base is None or any(t is None for t in pts):
        return None
    if any(b <= a for a, b in zip(pts, pts[1:])):
        return None
    shift = min(pts[0], 0)  # an edit list can start a stream before zero; encoders cannot
    return [int(t - shift) for t in pts]


def encode_video(frames_dir: Path, count: int, info: VideoInfo, source: Path, out: Path,
                 pts: list | None = None) -> list[str]:
    """Encode frames_dir/000000.png.. into `out` (H.264, CRF 16) and copy the source's audio.
    Each frame keeps its source time stamp (`pts`, as read_frames collects them), so a
    variable-frame-rate clip keeps its timing and its sync with the copied audio.

    Returns notes for the user (audio that could not be copied, a guessed frame rate,
    time stamps that could not be kept)."""
    import av

    notes = []
    if info.rate_guessed:
        notes.append(f"{source.name}: no frame rate in the file; wrote {float(DEFAULT_RATE):g} fps")
    kept = usable_pts(pts, count, info)
    if pts is not None and kept is None:
        notes.append(f"{source.name}: the frames' time stamps are missing or out of order; "
                     f"wrote them evenly at {float(info.rate):g} fps")
    fmt = _CONTAINERS.get(out.suffix.lower(), "mp4")
    partial = out.with_name(out.name + ".partial")
    try:
        notes += _encode_in_child(frames_dir, count, info, source, partial, fmt, kept)
        os.replace(partial, out)
    except (OSError, av.error.FFmpegError) as e:
        # Disk full, a folder made read-only mid-run, ...: one line, and no half-written file.
        raise VideoError(f"{out}: cannot write the video ({_reason(e)})") from None
    finally:
        partial.unlink(missing_ok=True)  # also on Ctrl-C: docs/video.md promises no temporary files
    return notes


def _encode_in_child(frames_dir: Path, count: int, info: VideoInfo, source: Path, partial: Path, fmt: str,
                     pts: list[int] | None = None) -> list[str]:
    """Run the encoder in a fresh process. In the process that has just restored the
    frames (torch's thread pools, a busy heap), libx264 gave different bitstreams from
    identical frames in about one run in three; a fresh process gives the same bytes every
    time, which docs/video.md promises for the same seed."""
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    with ctx.Pool(1) as pool:
        job = pool.apply_async(_encode_job, (frames_dir, count, info, source, partial, fmt, pts))
        kind, value = job.get()
    if kind == "error":
        raise value
    return value


def _encode_job(frames_dir, count, info, source, partial, fmt, pts=None):
    import av

    notes: list[str] = []
    try:
        _encode(frames_dir, count, info, source, partial, fmt, notes, pts)
    except (OSError, av.error.FFmpegError, DeblurError) as e:
        # Re-raised in the parent as the one-line errors it expects.
        return "error", e if isinstance(e, DeblurError) else OSError(getattr(e, "errno", None), _reason(e))
    return "notes", notes


def _encode(frames_dir: Path, count: int, info: VideoInfo, source: Path, partial: Path, fmt: str, notes: list[str],
            pts: list[int] | None = None) -> None:
    import av
    import cv2

    # bitexact: no encoder version or creation-time tags, so equal frames give equal bytes.
    with av.open(str(partial), "w", format=fmt, options={"fflags": "+bitexact"}) as dst:
        v = dst.add_stream("libx264", rate=info.rate)
        v.width, v.height = info.width, info.height
        # 4:2:0 needs even sides; other sizes keep full chroma rather than change the size.
        v.pix_fmt = "yuv420p" if info.width % 2 == 0 and info.height % 2 == 0 else "yuv444p"
        # One thread: x264's frame threads and lookahead make the bitstream depend on timing.
        v.options = {"crf": "16", "preset": "medium", "threads": "1"}
        v.codec_context.flags |= av.codec.context.Flags.bitexact
        # Source time stamps (variable frame rates included) in the source's own time base;
        # without them, frame i at i / rate.
        time_base = info.time_base if pts is not None else 1 / info.rate
        if pts is not None:
            v.codec_context.time_base = time_base
        audio = []
        with _open(source) as src:
            for a in src.streams.audio:
                try:
                    audio.append((a, dst.add_stream_from_template(a)))
                except (av.error.FFmpegError, ValueError, AttributeError, TypeError) as e:
                    # A damaged stream may have no codec context at all (PyAV gives None).
                    codec = getattr(a.codec_context, "name", None) or "unknown codec"
                    notes.append(f"{source.name}: audio stream {a.index} ({codec}) not copied: {_reason(e)}")
            for i in range(count):
                bgr = cv2.imread(str(frames_dir / f"{i:06d}.png"), cv2.IMREAD_COLOR)
                if bgr is None:
                    raise VideoError(f"{frames_dir / f'{i:06d}.png'}: restored frame missing or unreadable; rerun to redo it")
                frame = av.VideoFrame.from_ndarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), format="rgb24")
                # Converted here into a fresh, packed frame: x264 fed the reformatter's own
                # buffers gave different bitstreams from identical pictures (~1 run in 3).
                frame = av.VideoFrame.from_ndarray(frame.reformat(format=v.pix_fmt).to_ndarray(), format=v.pix_fmt)
                frame.pts = i if pts is None else pts[i]
                frame.time_base = time_base
                for packet in v.encode(frame):
                    dst.mux(packet)
            for packet in v.encode():
                dst.mux(packet)
            if audio:
                streams = {a.index: o for a, o in audio}
                try:
                    for packet in src.demux([a for a, _ in audio]):
                        if packet.dts is None:
                            continue  # the demuxer's flush packet
                        packet.stream = streams[packet.stream.index]
                        dst.mux(packet)
                except (av.error.FFmpegError, ValueError) as e:
                    notes.append(f"{source.name}: audio copy stopped early: {_reason(e)}")


def source_fingerprint(path: Path) -> dict:
    """What identifies a clip cheaply: size, time stamp and a hash of its first MiB."""
    st = path.stat()
    with open(path, "rb") as f:
        head = hashlib.sha256(f.read(1 << 20)).hexdigest()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "head_sha256": head}


def pixel_settings(deblurrer: "Deblurrer", settings: "Settings", seed: int, temporal_noise: str,
                   kernel: "KernelChoice | None" = None) -> dict:
    """Every setting that changes a restored frame's pixels."""
    w = deblurrer.weights.path
    st = w.stat()
    r = deblurrer.restorer
    chosen = {k: v for k, v in asdict(settings).items() if k not in ("implied", "overridden_by")}
    # A 0-step run (the predictor alone) draws no noise: its seed changes nothing.
    return {**chosen, "seed": seed if settings.steps > 0 else None, "temporal_noise": temporal_noise,
            "weights": str(w), "weights_size": st.st_size, "weights_mtime_ns": st.st_mtime_ns,
            "precision": r.precision, "device": str(r.device), "tile": r.tile, "overlap": r.overlap,
            # Without the kernel step the manifest is as before, so earlier clips' frames stay valid.
            **({"kernel": kernel.fingerprint()} if kernel is not None and kernel.mode != "none" else {})}


MANIFEST = "made_by.json"


def _reusable_frames(frames_dir: Path, made_by: dict) -> str | None:
    """None if frames_dir's frames were made from this source with these settings; else
    why they are not (and the folder is emptied)."""
    if not frames_dir.is_dir() or not any(frames_dir.iterdir()):
        return None
    try:
        before = json.loads((frames_dir / MANIFEST).read_text())
    except (OSError, ValueError):
        before = None
    if before == made_by:
        return None
    if before is None:
        why = "no record of what made them"
    elif before.get("source") != made_by["source"]:
        why = "the clip has changed"
    else:
        changed = sorted(k for k in made_by["settings"] if before.get("settings", {}).get(k) != made_by["settings"][k])
        why = f"the settings changed ({', '.join(changed) or 'model'})"
    shutil.rmtree(frames_dir)
    return why


@contextmanager
def clip_lock(out: Path):
    """An exclusive lock on `<output>.lock` for the whole run; yields False if another run
    holds it. The file is removed at the end; a lock taken on a file that was removed
    meanwhile is retaken on the new one."""
    import fcntl

    lock = out.with_name(out.name + ".lock")
    while True:
        try:
            fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as e:  # a read-only or missing output folder
            raise VideoError(f"{out}: cannot write beside the output ({_reason(e)})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            yield False
            return
        try:
            same = os.stat(lock).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        yield True
    finally:
        lock.unlink(missing_ok=True)
        os.close(fd)


def _frame_ok(path: Path, info: VideoInfo) -> bool:
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR)
    return img is not None and img.shape[:2] == (info.height, info.width)


def process_video(
    deblurrer: "Deblurrer",
    path: Path,
    out: Path,
    settings: "Settings",
    seed: int,
    temporal_noise: str,
    overwrite: bool,
    on_frame: Callable[[int, int | None], None] | None = None,
    on_step: Callable[[int, int], None] | None = None,
    allow_truncated: bool = False,
    max_pixels: int | None = None,
    seed_given: bool = True,
    kernel: "KernelChoice | None" = None,
) -> "ImageResult":
    """Restore every frame of `path` into `out`. seed_given=False: `seed` was drawn for
    this run, so a resumed clip keeps the seed its earlier frames were made with. kernel:
    the kernel step (kernel_path), per frame: "auto" estimates each frame's kernel."""
    from .pipeline import ImageResult

    start = time.perf_counter()
    result = ImageResult(str(path), "failed")
    frames_dir = out.with_name(out.name + ".frames.partial")
    try:
        if out.exists() and not overwrite:
            result.status, result.outputs = "skipped", [str(out)]
            result.error = "outputs exist (use --overwrite to redo)"
            return result
        info = probe(path)
        result.size = (info.width, info.height)
        if max_pixels is not None and info.width * info.height > max_pixels:
            raise ImageReadError(f"{path}: {info.width}x{info.height} frames are {info.width * info.height:,} pixels, "
                                 f"over --max-pixels {max_pixels:,}")
        with clip_lock(out) as got:
            if not got:
                result.status, result.outputs = "skipped", [str(out)]
                result.error = "busy: another deblur run is restoring this clip"
                return result
            return _process_locked(deblurrer, path, out, frames_dir, info, settings, seed, temporal_noise, overwrite,
                                   on_frame, on_step, allow_truncated, result, seed_given, kernel)
    except DeblurError as e:
        result.error = str(e)
        if frames_dir.is_dir():
            if any(p.name != MANIFEST for p in frames_dir.iterdir()):
                result.error += f"; frames restored so far are kept in {frames_dir.name}"
            else:
                shutil.rmtree(frames_dir, ignore_errors=True)
    finally:
        result.seconds = round(time.perf_counter() - start, 3)
    return result


def _earlier_seed(frames_dir: Path) -> int | None:
    try:
        return int(json.loads((frames_dir / MANIFEST).read_text())["settings"]["seed"])
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _process_locked(deblurrer, path, out, frames_dir, info, settings, seed, temporal_noise, overwrite, on_frame, on_step,
                    allow_truncated, result, seed_given=True, kernel=None):
    """process_video's work once the clip's lock is held."""
    import torch

    from .io import encode_image, write_atomic

    notes = []
    if overwrite and frames_dir.is_dir():
        shutil.rmtree(frames_dir)
    earlier = None if seed_given or settings.steps == 0 else _earlier_seed(frames_dir)
    if earlier is not None:
        seed = earlier  # no --seed: continue with the one the finished frames were drawn with
    made_by = {"source": source_fingerprint(path), "settings": pixel_settings(deblurrer, settings, seed, temporal_noise, kernel)}
    why = _reusable_frames(frames_dir, made_by)
    if why:
        notes.append(f"{path.name}: started over: frames from an earlier run were not reused ({why})")
    try:
        frames_dir.mkdir(parents=True, exist_ok=True)
        (frames_dir / MANIFEST).write_text(json.dumps(made_by))
    except OSError as e:
        raise VideoError(f"{frames_dir}: cannot create the frames folder ({_reason(e)})") from None
    done_before = redone = 0
    count = 0
    pts: list = []
    for index, rgb in read_frames(path, pts):
        target = frames_dir / f"{index:06d}.png"
        count = index + 1
        if target.exists() and _frame_ok(target, info):
            done_before += 1  # restored by an earlier, interrupted run
        else:
            redone += target.exists()
            x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float().div_(255.0)
            samples = deblurrer.restore_tensor(x, settings, seed, frame_key(path.name, index, temporal_noise), on_step=on_step,
                                               kernel=kernel)
            restored = samples.mean(dim=0).permute(1, 2, 0).float().cpu().numpy()
            try:
                write_atomic(target, encode_image(restored, "PNG"))
            except OSError as e:
                raise VideoError(f"{target}: cannot write a restored frame ({_reason(e)})") from None
        if on_frame is not None:
            on_frame(count, info.frames)
    if info.frames and count < info.frames and not (info.frames_from_duration and count >= info.frames - 1):
        msg = f"{path}: decoding stopped after {count} of the {info.frames} frames its header announces (truncated?)"
        if not allow_truncated:
            raise ImageReadError(msg + "; --allow-truncated writes the frames there are")
        notes.append(msg + "; wrote those (--allow-truncated)")
    notes += encode_video(frames_dir, count, info, path, out, pts)
    shutil.rmtree(frames_dir, ignore_errors=True)
    if done_before:
        notes.insert(0, f"{path.name}: resumed: {done_before} of {count} frames were restored by an earlier run"
                     + (f" (its seed {seed} kept)" if earlier is not None else ""))
    if redone:
        notes.append(f"{path.name}: {redone} unreadable frame file(s) from an earlier run restored again")
    if info.frames and count > info.frames and not info.frames_from_duration:
        notes.append(f"{path.name}: the header announced {info.frames} frames, {count} were decoded and written")
    result.notes = notes or None
    result.status, result.outputs = "done", [str(out)]
    return result
