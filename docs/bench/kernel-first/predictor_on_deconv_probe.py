"""Issue 35 probe (training data only): does the shipped blind predictor refine the kernel
path's deconvolution when it is given d instead of y?  x = P(d), against d and P(y).

- shake: the tuning loop's 48 training photos blurred by our own hand-shake kernels
  (docs/bench/kernel-first/estimator_loop.py, draw 0), whole, aligned;
- motion: the 18 GoPro *training* frames (GOPR0372_07_00 47-98), 384 px centres.
The product's steps: estimate_photo_kernel (two windows, the guard), deconvolve_photo (TV);
refused photos get P(y) in every column but d's. Also how much each changes the photo (RMS):
a predictor that changes y a lot has recognised its blur (GoPro-like), one that leaves it
nearly as it is has not (the hand shake it gains +0.1 to +0.5 dB on).

    python docs/bench/kernel-first/predictor_on_deconv_probe.py OUT.json [FOLDER:N:OFFSET ...]

FOLDER:N:OFFSET: N more training photos from ../shared/data/train/FOLDER, each blurred by
our kernel number OFFSET + its index (a second set to check a rule chosen on the first;
no P(d), the product's own check's ratio recorded).
"""
import os, sys, json
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import numpy as np, torch
import estimator_loop as L
from scene_motion_guard_probe import CROP, GOPRO, TRAIN_FRAMES, centre
from deblurkit.api import Deblurrer
from deblurkit.bench.kernels import blur_with_kernel
from deblurkit.deconv.photo import deconvolve_photo, estimate_photo_kernel
from deblurkit.io import IMAGE_EXTENSIONS, read_image


def first_set_jobs():
    """The loop's 48 training photos (with our kernels) and the 18 GoPro training frames."""
    files = sorted(p for p in L.SHARP.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)[:48]
    jobs = [("shake", i, f) for i, f in enumerate(files)]
    return jobs + [("motion", j, f"{f:06d}.png") for j, f in enumerate(TRAIN_FRAMES) if (GOPRO / "blur" / f"{f:06d}.png").exists()]


def training_pair(kind, i, path):
    """(blurry, sharp) float64: a photo blurred by our kernel number i (the kernel bench's
    protocol), or a GoPro training frame's 384 px centre."""
    if kind == "shake":
        k = L.our_kernel(i, ["small", "large", "huge"])
        u8 = np.round(read_image(path).rgb * 255).astype(np.uint8)
        y = blur_with_kernel(u8, k.astype(np.float32), 0.01, np.random.default_rng([1234, i])).astype(np.float64)
        return y, u8 / 255.0
    return (centre(read_image(GOPRO / "blur" / path).rgb.astype(np.float64), CROP),
            centre(read_image(GOPRO / "sharp" / path).rgb.astype(np.float64), CROP))


def main(out, extra=()):
    from pathlib import Path
    from deblurkit.kernel_path import predictor_check

    torch.set_num_threads(2)
    model = Deblurrer()
    P = lambda a: model.restore(np.clip(a, 0, 1).astype(np.float32), "fast", kernel="none").astype(np.float64)  # noqa: E731
    if extra:
        jobs = []
        for spec in extra:
            folder, n, offset = spec.split(":")
            files = sorted(p for p in (Path("../shared/data/train") / folder).rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)[:int(n)]
            jobs += [("shake", int(offset) + i, f) for i, f in enumerate(files)]
        rows = []
        for kind, i, path in jobs:
            k = L.our_kernel(i, ["small", "large", "huge"])
            u8 = np.round(read_image(path).rgb * 255).astype(np.uint8)
            y = blur_with_kernel(u8, k.astype(np.float32), 0.01, np.random.default_rng([1234, i])).astype(np.float64)
            x = u8 / 255.0
            est = estimate_photo_kernel(y)
            base = L.score(y, x)
            row = dict(kind=kind, i=i, photo=str(path), accepted=est.accepted, res=est.residual, Py=L.score(P(y), x) - base)
            row["d_raw"] = L.score(deconvolve_photo(y, est.kernel).astype(np.float64), x) - base
            row["d"] = row["d_raw"] if est.accepted else row["Py"]
            yt = torch.from_numpy(np.ascontiguousarray(y.astype(np.float32))).permute(2, 0, 1)[None]
            row["ratio"] = predictor_check(yt, est, model.restorer._predict_whole).ratio
            rows.append(row)
            print(row, flush=True)
        json.dump(rows, open(out, "w"), indent=1)
        return
    rows = []
    for kind, i, path in first_set_jobs():
        y, x = training_pair(kind, i, path)
        est = estimate_photo_kernel(y)
        base = L.score(y, x)
        py = P(y)
        rms = lambda a, b: float(np.sqrt(np.mean((a - b) ** 2)))  # noqa: E731
        row = dict(kind=kind, i=i, accepted=est.accepted, res=est.residual, Py=L.score(py, x) - base, change_Py=rms(py, y))
        d = deconvolve_photo(y, est.kernel).astype(np.float64)
        row["d_raw"] = L.score(d, x) - base
        row["change_d"] = rms(d, y)
        row["d"] = row["d_raw"] if est.accepted else row["Py"]
        row["Pd"] = L.score(P(d), x) - base if est.accepted else row["Py"]
        rows.append(row)
        print(row, flush=True)
    json.dump(rows, open(out, "w"), indent=1)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2:])
