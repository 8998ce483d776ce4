"""Issue 35 check (counts only, nothing tuned): on which photos of the held-out and validation
sets does `--kernel auto` take a kernel read from light streaks (deconv.streaks) instead of
the estimator? Where it takes none, those sets' numbers with `--kernel auto` are unchanged by
the streak step (the rest of the path is the same code). Counted with the product's own
call (photo.estimate_photo_kernel's first step: streak_kernel on the whole photo, read at the
estimation scale, the first look's kernel size).

    python docs/bench/kernel-first/streak_firing_check.py     (from the repository root)

Sets: the 100 ../shared/data/val photos x the 12 Köhler kernels (blurred as the kernel bench
blurs: 8-bit values, noise 0.01), the 28 GoPro blurry frames of GOPR0372_07_00 (training
and held-out), the 26 real blurry photos. Two worker processes of one thread each.
"""
import os
import sys

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from multiprocessing import Pool  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

from deblurkit.bench.kernels import blur_with_kernel, load_kernels  # noqa: E402
from deblurkit.deconv import BlindConfig  # noqa: E402
from deblurkit.deconv.photo import estimation_scale  # noqa: E402
from deblurkit.deconv.streaks import streak_kernel  # noqa: E402
from deblurkit.io import IMAGE_EXTENSIONS, read_image  # noqa: E402

DATA = Path("../shared/data")


def fires(rgb) -> int:
    """How many other streaks agreed (0: the streak step takes nothing), as the product calls it."""
    found = streak_kernel(rgb, BlindConfig().kernel_size, estimation_scale(*rgb.shape[:2]))
    return 0 if found is None else found.agreeing


def kohler(job):
    i, path, kernel = job
    u8 = np.round(read_image(path).rgb * 255).astype(np.uint8)
    return fires(blur_with_kernel(u8, kernel, 0.01, np.random.default_rng([35, i])))


def photo(path):
    return fires(read_image(path).rgb)


def images(folder: Path):
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)


if __name__ == "__main__":
    kernels = load_kernels(DATA / "kernels" / "kohler12_estimated")
    val = images(DATA / "val")
    jobs = [(i * len(val) + j, p, k.array) for i, k in enumerate(kernels) for j, p in enumerate(val)]
    with Pool(2) as pool:
        kohler_rows = pool.map(kohler, jobs, chunksize=8)
        gopro = images(DATA / "gopro" / "GOPR0372_07_00" / "blur")
        gopro_rows = pool.map(photo, gopro)
        real = images(DATA / "real_blurry")
        real_rows = pool.map(photo, real)
    print(f"Köhler x val: {sum(r > 0 for r in kohler_rows)} of {len(kohler_rows)} blurred photos take streaks")
    print(f"GoPro GOPR0372_07_00 blurry frames: {sum(r > 0 for r in gopro_rows)} of {len(gopro_rows)}"
          f" {[p.stem for p, r in zip(gopro, gopro_rows) if r]}")
    print(f"real blurry photos: {sum(r > 0 for r in real_rows)} of {len(real_rows)} {[p.name for p, r in zip(real, real_rows) if r]}")
