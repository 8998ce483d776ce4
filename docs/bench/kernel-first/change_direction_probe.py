"""Issue 35 probe (training data only): can the direction of the two changes tell a short
camera shake that the blind predictor half undoes from scene motion it knows?

The predictor's first check (kernel_path.RECOGNISED_RATIO) sends a photo to the blind path
where the predictor changes it at least 0.9x as much as the deconvolution does. On the
stand-in for the issue's held-out check (proxy_small_*) it sent 14 of 96 photos blind at
ratios 0.92-1.08 on short kernels, where the deconvolution gained 2 dB more; on the GoPro
training frames the same ratio marks scene motion (frame 48: 0.91). Where the kernel is
right, the predictor's change P(y) - y should point the way the deconvolution's d - y does
(it undoes part of the same blur); where the kernel is wrong, less so. Measured here: the
cosine between the two changes on the check's window, beside the ratio, and each path's gain
(the first run computed it with its own copy of predictor_check's window; the check now
returns it as `agreement`, the same sum).

- shake: training photos (imagenet_samples_240) x fresh kernels from our hand-shake model
  (13-27 px, seed [99, i], as the stand-in's but never its seed), 1% noise, 512 px centres,
  blurred as `deblur bench kernels` blurs
- motion: the 18 GoPro training frames (GOPR0372_07_00 47-98), whole

    python docs/bench/kernel-first/change_direction_probe.py N OUT.jsonl [handheld]
        handheld: instead, the first N Sun80 photos blurred by our handheld model (its noise
        and JPEG; blur seed [88, i], as handheld_decision_probe), whole, with the grey noise
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

import estimator_loop as L  # noqa: E402
from deblurkit.api import Deblurrer  # noqa: E402
from deblurkit.bench.kernels import blur_with_kernel, prepare_kernel  # noqa: E402
from deblurkit.bench.runner import _centre  # noqa: E402
from deblurkit.data.shake import handheld_kernel  # noqa: E402
from deblurkit.deconv.photo import deconvolve_photo, estimate_photo_kernel, kernel_extent  # noqa: E402
from deblurkit.io import IMAGE_EXTENSIONS, read_image  # noqa: E402
from deblurkit.kernel_path import NEAR_DOT_EXTENT, predictor_check  # noqa: E402

torch.set_num_threads(2)
GOPRO = Path("../shared/data/gopro/GOPR0372_07_00")
TRAIN_FRAMES = range(47, 99)


def main():
    n, out = int(sys.argv[1]), sys.argv[2]
    model = Deblurrer()
    predictor = model.restorer._predict_whole
    jobs = []
    if len(sys.argv) > 3 and sys.argv[3] == "handheld":
        from deblurkit.data.blur import apply_blur, blur_model
        cfg = blur_model("handheld")
        for i, f in enumerate(sorted(p for p in Path("../shared/data/train/sun80").rglob("*")
                                     if p.suffix.lower() in IMAGE_EXTENSIONS)[:n]):
            x = read_image(f).rgb.astype(np.float32)
            y = np.clip(apply_blur(x, np.random.default_rng([88, i]), cfg).blurry, 0, 1).astype(np.float32)
            jobs.append(("noisy", f.name, y, x))
        n = 0  # no shake photos, no GoPro frames
    files = sorted(p for p in Path("../shared/data/train/imagenet_samples_240").rglob("*")
                   if p.suffix.lower() in IMAGE_EXTENSIONS)[:n]
    for i, f in enumerate(files):
        rng = np.random.default_rng([99, i])
        k = prepare_kernel(handheld_kernel(rng, extent=float(rng.uniform(13, 27))), f"k{i}").array
        u8 = np.round(read_image(f).rgb * 255).astype(np.uint8)
        y = _centre(blur_with_kernel(u8, k, 0.01, np.random.default_rng([1234, i])), 512)
        jobs.append(("shake", f.name, y, _centre(u8.astype(np.float32) / 255, 512)))
    for fr in (TRAIN_FRAMES if n else ()):
        b = GOPRO / "blur" / f"{fr:06d}.png"
        if b.exists():
            jobs.append(("motion", b.name, read_image(b).rgb, read_image(GOPRO / "sharp" / b.name).rgb))
    with open(out, "w") as fh:
        for kind, name, y, x in jobs:
            y = np.asarray(y, np.float32)
            x = np.asarray(x, np.float64)
            est = estimate_photo_kernel(y)
            if not est.accepted:
                continue
            if kernel_extent(est.kernel) * est.scale <= NEAR_DOT_EXTENT:
                continue
            image = torch.from_numpy(np.ascontiguousarray(y)).permute(2, 0, 1)[None]
            c = predictor_check(image, est, predictor)
            base = L.score(y.astype(np.float64), x)
            d = deconvolve_photo(y, est.kernel, estimated=not est.streaks).astype(np.float64)
            p = predictor(image.float())[0].permute(1, 2, 0).numpy().astype(np.float64)
            from deblurkit.deconv.blind import noise_sigma, to_gray
            row = dict(kind=kind, name=name, ratio=c.ratio, deblurred=c.deblurred, cos=c.agreement,
                       g_d=L.score(d, x) - base, g_p=L.score(p, x) - base, noise=noise_sigma(to_gray(y.astype(np.float64))))
            fh.write(json.dumps(row) + "\n")
            fh.flush()
            print(f"{kind:6s} {name:28s} ratio {row['ratio']:.2f} deblurred {row['deblurred']:.2f} cos {row['cos']:+.2f} "
                  f"d {row['g_d']:+.2f} P {row['g_p']:+.2f} noise {row['noise']:.3f}", flush=True)


if __name__ == "__main__":
    main()
