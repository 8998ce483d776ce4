"""Issue 35, part 3, a CPU probe (tenth session; training photos only): the data for a small
refinement network x = d + U(y, d), where d is the product's own deconvolution of y (the
photo-level estimate, the guard, the TV step with the estimated-kernel weight).

Photos: ../shared/data/train/{bsds500_train, imagenet_samples_240, sun80}, at most 512 px a
side (never bsds500_test: the estimator loop and the probe's scores use it, nor
../shared/data/val). Each is blurred either as the benches blur (one of our own hand-shake
kernels of 13-75 px, 1% Gaussian noise, 8 bits) or by the uniform-kernel part of our
handheld model with its sensor noise and JPEG (noise_robust_probe.py's "handheld"), half
each. Only photos whose kernel the guard accepts are kept: the network refines the kernel
path, and the others never reach it.

    python docs/bench/kernel-first/refine_probe_pack.py OUT.npz [N]

About 1 s per photo on 2 cores (two 1-thread workers).
"""
import os
import sys

os.environ.setdefault("OMP_NUM_THREADS", "1")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from multiprocessing import Pool  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from deblurkit.bench.kernels import blur_with_kernel  # noqa: E402
from deblurkit.data.blur import apply_blur  # noqa: E402
from deblurkit.data.shake import handheld_kernel  # noqa: E402
from deblurkit.deconv import kernel_similarity, photo  # noqa: E402
from deblurkit.io import IMAGE_EXTENSIONS, read_image  # noqa: E402
from noise_robust_probe import UNIFORM  # noqa: E402

TRAIN = Path("../shared/data/train")
FOLDERS = ("bsds500_train", "imagenet_samples_240", "sun80")
MAX_SIDE = 512


def sharp_photo(path: Path) -> np.ndarray:
    x = read_image(path).rgb.astype(np.float32)
    s = MAX_SIDE / max(x.shape[:2])
    if s < 1:
        x = cv2.resize(x, (round(x.shape[1] * s), round(x.shape[0] * s)), interpolation=cv2.INTER_AREA)
    return np.round(np.clip(x, 0, 1) * 255).astype(np.uint8)


def one(job):
    i, path = job
    torch.set_num_threads(1)
    x8 = sharp_photo(path)
    rng = np.random.default_rng([351, i])
    if i % 2 == 0:
        kind = "shake"
        k = handheld_kernel(rng, extent=float(rng.uniform(13, 75))).astype(np.float32)
        y = blur_with_kernel(x8, k, 0.01, rng)
    else:
        kind = "handheld"
        res = apply_blur(x8 / np.float32(255), rng, UNIFORM, noise=True)
        if res.kinds != ["motion"]:
            return None
        y, k = np.clip(res.blurry, 0, 1), photo.as_kernel(res.kernels[0])
    y8 = np.round(np.clip(y, 0, 1) * 255).astype(np.uint8)
    est = photo.estimate_photo_kernel(y8)
    if not est.accepted:
        return None
    d = photo.deconvolve_photo(y8, est.kernel, estimated=True)
    return kind, i, x8, y8, d.astype(np.float16), float(kernel_similarity(est.kernel, k))


if __name__ == "__main__":
    out = Path(sys.argv[1])
    n = int(sys.argv[2]) if len(sys.argv) > 2 else 10_000
    files = []
    for folder in FOLDERS:
        files += sorted(p for p in (TRAIN / folder).iterdir() if p.suffix.lower() in IMAGE_EXTENSIONS)
    files = files[:n]
    with Pool(2) as pool:
        rows = [r for r in pool.imap(one, list(enumerate(files)), chunksize=4) if r is not None]
    arrays = {}
    for j, (kind, i, x8, y8, d, sim) in enumerate(rows):
        arrays[f"x{j}"], arrays[f"y{j}"], arrays[f"d{j}"] = x8, y8, d
    np.savez(out, kinds=np.array([r[0] for r in rows]), index=np.array([r[1] for r in rows]),
             sims=np.array([r[5] for r in rows]), **arrays)
    sims = np.array([r[5] for r in rows])
    print(f"{len(files)} photos, {len(rows)} accepted ({sum(r[0] == 'shake' for r in rows)} shake, "
          f"{sum(r[0] == 'handheld' for r in rows)} handheld); kernel similarity mean {sims.mean():.3f}")
