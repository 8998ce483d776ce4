"""Issue 35 probe (training data only): does the blind predictor's output, blurred by the
estimated kernel, give the photo back better than the photo blurred again?

    deblurred = RMS(k * P(y) - y) / RMS(k * y - y)      (inside the kernel's margin)

A predictor that leaves the photo as it is (camera shake it does not know) scores about 1;
one that deblurred the photo along this kernel (scene motion it was trained on) scores
below 1. Rows for the photos the guard accepts, with the first check's ratio and the gains
of P(y) and of the kernel path's deconvolution d (aligned).

    python docs/bench/kernel-first/deblurred_check_probe.py 1 OUT.json   # the loop's 48 photos, our kernels, + the 18 GoPro training frames
    python docs/bench/kernel-first/deblurred_check_probe.py 2 OUT.json   # 48 ImageNet samples + 24 Sun80, our kernels 1000+/2000+

Records: deblurred_check_probe_set1.json, deblurred_check_probe_set2.json.
"""
import sys, json
sys.path.insert(0, "docs/bench/kernel-first")  # run from the project root, as estimator_loop
import numpy as np, torch, cv2
import estimator_loop as L
from predictor_on_deconv_probe import first_set_jobs, training_pair
from deblurkit.api import Deblurrer
from deblurkit.deconv.photo import deconvolve_photo, estimate_photo_kernel
from deblurkit.io import IMAGE_EXTENSIONS
torch.set_num_threads(2)
model = Deblurrer()
P = lambda a: model.restore(np.clip(a, 0, 1).astype(np.float32), "fast", kernel="none").astype(np.float64)
from pathlib import Path
if sys.argv[1] == "1":
    jobs = first_set_jobs()
else:
    jobs = []
    for folder, n, offset in (("imagenet_samples_240", 48, 1000), ("sun80", 24, 2000)):
        fs = sorted(p for p in (Path("../shared/data/train") / folder).rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)[:n]
        jobs += [("shake", offset + i, f) for i, f in enumerate(fs)]
rows = []
for kind, i, path in jobs:
    y, x = training_pair(kind, i, path)
    est = estimate_photo_kernel(y)
    if not est.accepted: continue
    ke = est.kernel
    py = P(y)
    blur = lambda a: cv2.filter2D(a, -1, ke[::-1, ::-1], borderType=cv2.BORDER_REFLECT)
    m = ke.shape[0] // 2 + 2
    ins = (slice(m, -m), slice(m, -m))
    rms = lambda a, b: float(np.sqrt(np.mean((a[ins] - b[ins]) ** 2)))
    rP = rms(blur(py), y) / max(rms(blur(y), y), 1e-9)
    d = deconvolve_photo(y, ke).astype(np.float64)
    base = L.score(y, x)
    row = dict(kind=kind, i=i, deblurred=rP, ratio=rms(py, y) / max(rms(d, y), 1e-9), gP=L.score(py, x) - base, gd=L.score(d, x) - base)
    rows.append(row); print(row, flush=True)
json.dump(rows, open(sys.argv[2], "w"), indent=1)
