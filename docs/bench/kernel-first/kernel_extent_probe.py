"""Issue 35 probe (training data only): does the kernel path's gain depend on the length
of the kernel it found? Per photo the guard accepts and both predictor signs leave on the
kernel path (as `kernel_path.decide` would), the estimated kernel's extent (pixels above 5%
of its maximum, deconv.photo.kernel_extent), its window (75: the first estimate, 141: the
second), the guard's residual, and the gains (aligned, as the bench scores) of the kernel
path's deconvolution d and of the blind predictor P(y) on the same photo; and a second
look at half resolution (the photo downscaled 2x, the first 75 px window, the kernel
enlarged back): its extent, residual, acceptance and deconvolution gain gh.

    python docs/bench/kernel-first/kernel_extent_probe.py OUT.json

Photos: the two training sets of deblurred_check_probe.py (the loop's 48 BSDS test photos
with our kernels of all three classes and the 18 GoPro training frames; 48 ImageNet
samples and 24 Sun80 photos with our kernels 1000+ and 2000+). Never the Köhler kernels,
../shared/data/val or the real photos.
"""
import json
import sys

sys.path.insert(0, "docs/bench/kernel-first")  # run from the project root, as estimator_loop
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

import estimator_loop as L  # noqa: E402
from predictor_on_deconv_probe import first_set_jobs, training_pair  # noqa: E402
from deblurkit.api import Deblurrer  # noqa: E402
from deblurkit.deconv.photo import deconvolve_photo, estimate_photo_kernel, kernel_extent, resize_kernel  # noqa: E402
from deblurkit.io import IMAGE_EXTENSIONS  # noqa: E402
from deblurkit.kernel_path import DEBLURRED_RATIO, RECOGNISED_RATIO, predictor_check  # noqa: E402


def second_set_jobs():
    jobs = []
    for folder, n, offset in (("imagenet_samples_240", 48, 1000), ("sun80", 24, 2000)):
        fs = sorted(p for p in (Path("../shared/data/train") / folder).rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)[:n]
        jobs += [("shake", offset + i, f) for i, f in enumerate(fs)]
    return jobs


if __name__ == "__main__":
    torch.set_num_threads(2)
    model = Deblurrer()
    P = lambda a: model.restore(np.clip(a, 0, 1).astype(np.float32), "fast", kernel="none").astype(np.float64)  # noqa: E731
    to_t = lambda a: torch.from_numpy(np.ascontiguousarray(a, np.float32)).permute(2, 0, 1)[None]  # noqa: E731
    pred = lambda t: torch.from_numpy(P(t[0].permute(1, 2, 0).numpy()).astype(np.float32)).permute(2, 0, 1)[None]  # noqa: E731
    rows = []
    for kind, i, path in first_set_jobs() + second_set_jobs():
        y, x = training_pair(kind, i, path)
        est = estimate_photo_kernel(y)
        row = dict(kind=kind, i=i, window=est.size, extent=kernel_extent(est.kernel), residual=est.residual,
                   accepted=bool(est.accepted))
        if kind == "shake":
            row["true_extent"] = kernel_extent(L.our_kernel(i, ["small", "large", "huge"]))
        if est.accepted:
            check = predictor_check(to_t(y), est, pred)
            row.update(ratio=check.ratio, deblurred=check.deblurred,
                       kernel_path=bool(check.ratio < RECOGNISED_RATIO and check.deblurred > DEBLURRED_RATIO))
            base = L.score(y, x)
            row.update(gd=L.score(deconvolve_photo(y, est.kernel).astype(np.float64), x) - base, gP=L.score(P(y), x) - base)
            # a second look at half resolution: the same first window reaches kernels twice as long
            half = cv2.resize(np.asarray(y, np.float32), (y.shape[1] // 2, y.shape[0] // 2), interpolation=cv2.INTER_AREA)
            est_h = estimate_photo_kernel(half, size=75)
            k_h = resize_kernel(est_h.kernel, 2 * est_h.size + 1)
            row.update(half_extent=kernel_extent(k_h), half_residual=est_h.residual, half_accepted=bool(est_h.accepted),
                       gh=L.score(deconvolve_photo(y, k_h).astype(np.float64), x) - base)
        rows.append(row)
        print(row, flush=True)
    json.dump(rows, open(sys.argv[1], "w"), indent=1)
