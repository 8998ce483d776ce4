"""Issue 35 probe: is the README's example frame a fair test of short blur? (1) The
product's estimate on each of the 28 sharp GoPro frames as they are (no blur added: the
right answer is a dot, or a refusal); (2) the kernels of `deblur blur --seed 3` and
`--seed 5` on that frame (10 and 6 px) applied as the benchmarks blur (values, 1% noise,
8 bits) to the example frame and to the first 8 Sun80 training photos, and estimated.

    python docs/bench/kernel-first/example_frame_probe.py   (from the repository root)
"""
from dataclasses import replace
from pathlib import Path

import numpy as np

from deblurkit.data.blur import apply_blur, blur_model, kernel_length
from deblurkit.deconv import kernel_similarity
from deblurkit.deconv.photo import estimate_photo_kernel, kernel_extent
from deblurkit.io import IMAGE_EXTENSIONS, read_image

for f in sorted(Path("../shared/data/gopro/GOPR0372_07_00/sharp").glob("*.png")):
    e = estimate_photo_kernel(read_image(f).rgb)
    print(f"sharp frame {f.name}: estimated {kernel_extent(e.kernel)} px, residual {e.residual:.2f}, "
          f"{'accepted' if e.accepted else 'refused'}", flush=True)

example = Path("examples/gopro_000110_sharp.png")
drawn = {s: apply_blur(read_image(example).rgb, np.random.default_rng(s), blur_model("handheld")).kernels[0] for s in (3, 5)}
plain = replace(blur_model("handheld-plain"), srgb_noise=(0.01, 0.01))
photos = [example] + sorted(p for p in Path("../shared/data/train/sun80").iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)[:8]
for f in photos:
    rgb = read_image(f).rgb
    for seed, k in drawn.items():
        y = apply_blur(rgb, np.random.default_rng(0), plain, kernel=k).blurry
        e = estimate_photo_kernel(y)
        print(f"{f.name[:24]:24s} seed {seed} kernel {kernel_length(k):.0f} px: estimated {kernel_extent(e.kernel)} px, "
              f"similarity {kernel_similarity(e.kernel, k):.2f}, residual {e.residual:.2f}, {'accepted' if e.accepted else 'refused'}", flush=True)
