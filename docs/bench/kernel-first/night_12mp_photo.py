"""Issue 35 helper (training photos only): a made-up 12 MP night photo for timing the
streak path and its highlight step (`/usr/bin/time -v deblur OUT --preset fast --kernel auto`).
A Sun80 photo enlarged to 4000x3000, darkened in light (light_streak_probe's night scene:
values^2.2 x 0.12), 150 small lamps (2-40x clipping), blurred by one of our hand-shake
kernels enlarged to about 61 px, 1% noise, 8 bits.

    python docs/bench/kernel-first/night_12mp_photo.py OUT.png
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import cv2  # noqa: E402
import numpy as np  # noqa: E402

import estimator_loop as L  # noqa: E402
from deblurkit.data.blur import convolve  # noqa: E402
from deblurkit.deconv.photo import kernel_extent, resize_kernel  # noqa: E402
from deblurkit.io import IMAGE_EXTENSIONS, encode_image, read_image, write_atomic  # noqa: E402
from pathlib import Path  # noqa: E402

rng = np.random.default_rng([77, 12])
path = sorted(p for p in Path("../shared/data/train/sun80").rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)[0]
x = cv2.resize(read_image(path).rgb.astype(np.float32), (4000, 3000), interpolation=cv2.INTER_CUBIC).clip(0, 1)
light = (x ** 2.2) * 0.12
h, w = light.shape[:2]
for _ in range(150):
    cy, cx, r = int(rng.integers(0, h)), int(rng.integers(0, w)), int(rng.integers(1, 6))
    level = float(np.exp(rng.uniform(np.log(2), np.log(40))))
    colour = np.array([1.0, rng.uniform(0.75, 1.0), rng.uniform(0.45, 1.0)], np.float32)
    cv2.circle(light, (cx, cy), r, (level * colour).tolist(), -1)
k = L.our_kernel(1)
k = resize_kernel(k, int(round(k.shape[0] * 61 / kernel_extent(k))) | 1).astype(np.float32)
y = np.clip(convolve(light, k), 0, 1) ** (1 / 2.2) + 0.01 * rng.standard_normal(light.shape).astype(np.float32)
print(f"kernel extent {kernel_extent(k)} px, clipped {float((y >= 0.98).any(-1).mean()):.2%}")
write_atomic(sys.argv[1], encode_image(np.clip(y, 0, 1), "PNG"))
