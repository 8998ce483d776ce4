"""Videos: every frame through the deblurrer, written back at the same size and frame rate.

Container I/O uses PyAV (FFmpeg's libraries): unlike OpenCV's VideoCapture/VideoWriter it
gives the exact frame rate as a fraction, encodes H.264 and can copy the audio packets
into the output untouched.

A run is resumable: each restored frame is written (atomically) as a PNG into
`<output>.frames.partial/` and frames found there are not restored again. The video is
encoded only when every frame exists, into `<output>.partial`, and renamed to the output
name at the end; so a name without `.partial` is always a finished video.
"""

from __future__ import annotations

import os
import shutil
import time
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Iterator

from .errors import DeblurError, ImageReadError
from .io import VIDEO_EXTENSIONS

# numpy, torch, PyAV and OpenCV are imported where used: the CLI imports this module to
# define its options.

if TYPE_CHECKING:
    import numpy as np

    from .api import Deblurrer
    from .pipeline import ImageResult
    from .presets import Settings

__all__ = ["VIDEO_EXTENSIONS", "process_video", "probe", "read_frames"]
# Output containers: the input's where it can hold H.264, else MP4.
_CONTAINERS = {".mp4": "mp4", ".m4v": "mp4", ".mov": "mov", ".mkv": "matroska"}
TEMPORAL_NOISE = ("fixed", "per-frame")  # fixed: measured to add half the flicker (README)
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
    frames: int | None  # from the container header; None where it does not say
    audio_streams: int
    rate_guessed: bool = False


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
        frames = v.frames or None
        return VideoInfo(v.codec_context.width, v.codec_context.height, Fraction(rate) if rate else DEFAULT_RATE,
                         frames, len(c.streams.audio), rate_guessed=not rate)


def read_frames(path: Path) -> "Iterator[tuple[int, np.ndarray]]":
    """(index, (H, W, 3) uint8 RGB) for every frame; a decoding failure is one-line error."""
    import av

    with _open(path) as c:
        if not c.streams.video:
            raise ImageReadError(f"{path}: no video stream")
        stream = c.streams.video[0]
        stream.thread_type = "AUTO"
        index = 0
        try:
            for frame in c.decode(stream):
                yield index, frame.to_ndarray(format="rgb24")
                index += 1
        except (av.error.FFmpegError, ValueError) as e:
            raise ImageReadError(f"{path}: video unreadable after frame {index} ({_reason(e)}; truncated or corrupt?)") from None
    if index == 0:
        raise ImageReadError(f"{path}: no decodable video frames (truncated or corrupt?)")


def frame_key(name: str, index: int, temporal_noise: str) -> str:
    """Seeding key: per-frame noise from the frame index, or one noise field for the clip."""
    return name if temporal_noise == "fixed" else f"{name}#frame{index}"


def encode_video(frames_dir: Path, count: int, info: VideoInfo, source: Path, out: Path) -> list[str]:
    """Encode frames_dir/000000.png.. into `out` (H.264, CRF 16) and copy the source's audio.

    Returns notes for the user (audio that could not be copied, a guessed frame rate)."""
    import av
    import cv2

    notes = []
    if info.rate_guessed:
        notes.append(f"{source.name}: no frame rate in the file; wrote {float(DEFAULT_RATE):g} fps")
    fmt = _CONTAINERS.get(out.suffix.lower(), "mp4")
    partial = out.with_name(out.name + ".partial")
    with av.open(str(partial), "w", format=fmt) as dst:
        v = dst.add_stream("libx264", rate=info.rate)
        v.width, v.height = info.width, info.height
        # 4:2:0 needs even sides; other sizes keep full chroma rather than change the size.
        v.pix_fmt = "yuv420p" if info.width % 2 == 0 and info.height % 2 == 0 else "yuv444p"
        v.options = {"crf": "16", "preset": "medium"}
        audio = []
        with _open(source) as src:
            for a in src.streams.audio:
                try:
                    audio.append((a, dst.add_stream_from_template(a)))
                except (av.error.FFmpegError, ValueError) as e:
                    notes.append(f"{source.name}: audio stream {a.index} ({a.codec_context.name}) not copied: {_reason(e)}")
            for i in range(count):
                bgr = cv2.imread(str(frames_dir / f"{i:06d}.png"), cv2.IMREAD_COLOR)
                if bgr is None:
                    raise VideoError(f"{frames_dir / f'{i:06d}.png'}: restored frame missing or unreadable; rerun to redo it")
                frame = av.VideoFrame.from_ndarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), format="rgb24")
                frame.pts = i
                frame.time_base = 1 / info.rate
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
    os.replace(partial, out)
    return notes


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
) -> "ImageResult":
    import torch

    from .io import encode_image, write_atomic
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
        frames_dir.mkdir(parents=True, exist_ok=True)
        done_before = 0
        count = 0
        for index, rgb in read_frames(path):
            target = frames_dir / f"{index:06d}.png"
            count = index + 1
            if target.exists() and not overwrite:
                done_before += 1  # restored by an earlier, interrupted run
            else:
                x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float().div_(255.0)
                samples = deblurrer.restore_tensor(x, settings, seed, frame_key(path.name, index, temporal_noise), on_step=on_step)
                restored = samples.mean(dim=0).permute(1, 2, 0).float().cpu().numpy()
                write_atomic(target, encode_image(restored, "PNG"))
            if on_frame is not None:
                on_frame(count, info.frames)
        notes = encode_video(frames_dir, count, info, path, out)
        shutil.rmtree(frames_dir, ignore_errors=True)
        if done_before:
            notes.insert(0, f"{path.name}: resumed: {done_before} of {count} frames were restored by an earlier run")
        if info.frames and count != info.frames:
            notes.append(f"{path.name}: the header announced {info.frames} frames, {count} were decoded and written")
        result.notes = notes or None
        result.status, result.outputs = "done", [str(out)]
    except DeblurError as e:
        result.error = str(e)
        if frames_dir.is_dir():
            if any(frames_dir.iterdir()):
                result.error += f"; frames restored so far are kept in {frames_dir.name}"
            else:
                frames_dir.rmdir()
    finally:
        result.seconds = round(time.perf_counter() - start, 3)
    return result
