"""The estimator's tuning loop (issue 35), on TRAINING data only: whole photos of
../shared/data/train/bsds500_test blurred by the project's own hand-shake kernels
(`handheld_kernel`, seeded; half with extents of 13-27 px, half 31-75 px), the kernel
bench's protocol otherwise (8-bit-value convolution, noise 0.01, 8 bits), scored as the
bench scores (aligned within 10 px, deblurkit.metrics.align). The Köhler kernels and
../shared/data/val are never used here (`deblur bench kernels` measures on them).

    python docs/bench/kernel-first/estimator_loop.py [N] [method=wiener|tv] [path=photo] [key=value ...]   # BlindConfig fields

Also sharp=DIR (other training photos), offset=K (photos K to K+N-1 of DIR, each with the
kernel the loop draws for its index) and, with path=photo, side=PX (the estimation window,
deconv.photo.ESTIMATE_SIDE; docs/bench/kernel-first/estimate_window_probe.txt).

Prints one line per photo (extent, gain of the estimate, of the true kernel, similarity)
and the means per size class. Two worker processes of one thread each. path=photo: the
product's own steps instead of one estimate (deconv.photo: both windows, the guard, the
tiled TV deconvolution; a refused photo scores 0; method=tv) and the seconds its estimate
took (without path=photo: the estimate and the non-blind step).
"""
import os
import sys
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")

from dataclasses import replace  # noqa: E402
from multiprocessing import Pool  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402

from deblurkit.bench.kernels import blur_with_kernel  # noqa: E402
from deblurkit.data.shake import handheld_kernel  # noqa: E402
from deblurkit.deconv import BlindConfig, Deconvolution, blind_deconvolution, deconvolve_with_kernel, kernel_similarity  # noqa: E402
from deblurkit.deconv.photo import deconvolve_photo, estimate_photo_kernel  # noqa: E402
from deblurkit.io import IMAGE_EXTENSIONS, read_image  # noqa: E402
from deblurkit.metrics import psnr  # noqa: E402
from deblurkit.metrics.align import aligned  # noqa: E402

SHARP = Path("../shared/data/train/bsds500_test")
# Extent classes of our own kernels, taken in turn; "huge" (classes=small,large,huge) is
# longer than the estimator's window (75 px), where the guard must refuse, not gain;
# "short" (4-12 px: a steady hand or a short exposure, the most common shake) is reported
# apart from 13-27 px where it is drawn.
CLASSES = {"short": (4, 12), "small": (13, 27), "large": (31, 75), "huge": (81, 141)}
ACTIVE = ["small", "large"]


def our_kernel(i: int, active=None) -> np.ndarray:
    rng = np.random.default_rng([35, i])
    active = active or ACTIVE
    lo, hi = CLASSES[active[i % len(active)]]
    return handheld_kernel(rng, extent=float(rng.uniform(lo, hi))).astype(np.float64)


def score(out, sharp):
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1)[None].float()  # noqa: E731
    o, r, _ = aligned(t(out), t(sharp), 10)
    return psnr(o, r)


def loop_photo(i: int, path, active=None):
    """Photo i of the loop, blurred as the kernel bench blurs: (kernel, blurry, sharp, the blurry's score)."""
    k = our_kernel(i, active)
    u8 = np.round(read_image(path).rgb * 255).astype(np.uint8)
    y = blur_with_kernel(u8, k.astype(np.float32), 0.01, np.random.default_rng([1234, i])).astype(np.float64)
    x = u8 / 255.0
    return k, y, x, score(y, x)


def one(job):
    i, path, cfg, method, active, product = job
    torch.set_num_threads(1)
    k, y, x, base = loop_photo(i, path, active)
    if product:
        start = time.perf_counter()
        est = estimate_photo_kernel(y, cfg=cfg)
        seconds = time.perf_counter() - start
        image = deconvolve_photo(y, est.kernel, estimated=True) if est.accepted else y
        d = Deconvolution(image, est.kernel, not est.accepted)
    else:
        start = time.perf_counter()
        d = blind_deconvolution(y, cfg, rule="guarded", method=method)
        seconds = time.perf_counter() - start
    g_est = score(d.image, x) - base
    g_true = score(deconvolve_with_kernel(y, k, method=method), x) - base
    ys, xs = np.nonzero(k > 0.05 * k.max())
    ext = int(max(np.ptp(ys), np.ptp(xs)) + 1)
    return i, ext, g_est, g_true, kernel_similarity(d.kernel, k), d.fell_back, seconds


def use_side(side: int | None) -> None:
    """Each worker's estimation window (None: the product's)."""
    if side is not None:
        import deblurkit.deconv.photo as photo

        photo.ESTIMATE_SIDE = side


def parse(default, text: str):
    """A BlindConfig field's value from key=value, typed as its default."""
    if isinstance(default, bool):
        return text.lower() in ("1", "true", "yes")
    if isinstance(default, tuple):
        return tuple(int(v) for v in text.split(",") if v)
    return type(default)(text)


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 and "=" not in sys.argv[1] else 24
    kw = dict(a.split("=", 1) for a in sys.argv[1:] if "=" in a)
    method = kw.pop("method", "wiener")  # the non-blind step: wiener or tv
    active = kw.pop("classes", ",".join(ACTIVE)).split(",")
    product = kw.pop("path", "") == "photo"
    if product and method != "tv":
        sys.exit("path=photo: the product's non-blind step is TV; give method=tv so the true-kernel column uses it too")
    sharp, offset = Path(kw.pop("sharp", SHARP)), int(kw.pop("offset", 0))
    side = int(kw.pop("side")) if "side" in kw else None
    if side is not None and not product:
        sys.exit("side=PX is the product's estimation window: give path=photo")
    cfg = replace(BlindConfig(), **{k: parse(getattr(BlindConfig, k), v) for k, v in kw.items()})
    files = sorted(p for p in sharp.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)[offset:offset + n]
    with Pool(2, initializer=use_side, initargs=(side,)) as pool:
        rows = sorted(pool.map(one, [(offset + i, f, cfg, method, active, product) for i, f in enumerate(files)], chunksize=1))
    for i, ext, ge, gt, sim, fb, sec in rows:
        print(f"{i:3d} {ext:3d}px est {ge:+.2f} true {gt:+.2f} sim {sim:.2f} {sec:5.2f} s{' fell back' if fb else ''}")
    groups = (("13-27", 0, 29), ("31-79", 29, 80), ("80+", 80, 999))
    if "short" in active:
        groups = (("4-12", 0, 13), ("13-27", 13, 29)) + groups[1:]
    for label, lo, hi in groups:
        sel = [r for r in rows if lo <= r[1] < hi]
        if sel:
            print(f"{label} px: n={len(sel)} est {np.mean([r[2] for r in sel]):+.2f} true {np.mean([r[3] for r in sel]):+.2f} "
                  f"sim {np.mean([r[4] for r in sel]):.3f} refused {sum(r[5] for r in sel)}")
    print(f"all: est {np.mean([r[2] for r in rows]):+.3f} sim {np.mean([r[4] for r in rows]):.3f} "
          f"estimate {np.mean([r[6] for r in rows]):.2f} s/photo | {method}{' path=photo' if product else ''}"
          f"{f' side={side}' if side else ''} {sharp.name} {offset}-{offset + len(rows) - 1} {cfg}")
