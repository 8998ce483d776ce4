"""Frame-to-frame flicker of `deblur clip.mp4` with --temporal-noise per-frame and fixed.

    python docs/bench/video_flicker.py SEQUENCE_DIR OUT.json [--crop W H] [--fps 10]

SEQUENCE_DIR holds a real GoPro sequence as blur/*.png and sharp/*.png (e.g.
../shared/data/gopro/GOPR0372_07_00). The blurry frames become a near-lossless H.264 clip
(a centre crop, to keep the run short); the `deblur` command restores it with each preset
and noise mode; each output frame is compared with the previous one.

Reported, in 8-bit levels, averaged over frame pairs and pixels:
- `temporal_change`: mean |o_t - o_(t-1)|, which includes the scene's own motion;
- `flicker`: mean |(o_t - o_(t-1)) - (s_t - s_(t-1))| against the sharp frames s, i.e. the
  change that the scene's motion does not explain (0 = perfectly stable).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
from PIL import Image

from deblurkit.video import read_frames

RUNS = [("fast", "per-frame"), ("balanced", "per-frame"), ("balanced", "fixed"),
        ("perception", "per-frame"), ("perception", "fixed")]


def centre_crop(a: np.ndarray, w: int, h: int) -> np.ndarray:
    y0, x0 = (a.shape[0] - h) // 2, (a.shape[1] - w) // 2
    return a[y0 : y0 + h, x0 : x0 + w]


def write_clip(frames: list[np.ndarray], path: Path, fps: int) -> None:
    with av.open(str(path), "w") as c:
        s = c.add_stream("libx264rgb", rate=Fraction(fps))  # RGB, QP 0: lossless
        s.width, s.height, s.pix_fmt = frames[0].shape[1], frames[0].shape[0], "rgb24"
        s.options = {"qp": "0"}
        for i, f in enumerate(frames):
            vf = av.VideoFrame.from_ndarray(f, format="rgb24")
            vf.pts, vf.time_base = i, Fraction(1, fps)
            for p in s.encode(vf):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def stats(out: list[np.ndarray], sharp: list[np.ndarray]) -> dict:
    o = [f.astype(np.float64) for f in out]
    s = [f.astype(np.float64) for f in sharp]
    change = [np.abs(b - a).mean() for a, b in zip(o, o[1:])]
    flicker = [np.abs((ob - oa) - (sb - sa)).mean() for oa, ob, sa, sb in zip(o, o[1:], s, s[1:])]
    return {"temporal_change": round(float(np.mean(change)), 3), "flicker": round(float(np.mean(flicker)), 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("sequence", type=Path)
    ap.add_argument("output", type=Path)
    ap.add_argument("--crop", nargs=2, type=int, default=(640, 360), metavar=("W", "H"))
    ap.add_argument("--fps", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    w, h = args.crop
    names = sorted(p.name for p in (args.sequence / "blur").glob("*.png"))
    blur = [centre_crop(np.asarray(Image.open(args.sequence / "blur" / n).convert("RGB")), w, h) for n in names]
    sharp = [centre_crop(np.asarray(Image.open(args.sequence / "sharp" / n).convert("RGB")), w, h) for n in names]
    results = {"sequence": str(args.sequence), "frames": len(names), "crop": [w, h], "fps": args.fps, "seed": args.seed,
               "input_blurry": stats(blur, sharp), "runs": []}
    with tempfile.TemporaryDirectory() as tmp:
        clip = Path(tmp) / "sequence.mkv"
        write_clip(blur, clip, args.fps)
        for preset, mode in RUNS:
            out = Path(tmp) / f"{preset}_{mode}.mkv"
            cmd = [sys.executable, "-m", "deblurkit", str(clip), "-o", str(out), "--preset", preset,
                   "--temporal-noise", mode, "--seed", str(args.seed), "--quiet"]
            subprocess.run(cmd, check=True)
            frames = [f for _, f in read_frames(out)]
            entry = {"preset": preset, "temporal_noise": mode, **stats(frames, sharp)}
            results["runs"].append(entry)
            print(json.dumps(entry), flush=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
