"""Issue 35 probe, part 3: the product's estimate_photo_kernel on the photos of
two_looks_scores.json: which kernel it took (the first, k1, or the half-scale one, kh,
from the kernels part 1 saved) against the rule the probe chose, and the gain of its
deconvolution. Training photos only.

    python docs/bench/kernel-first/two_looks_product_check.py OUT_DIR/scores.json > two_looks_product_check.txt
    (kernels read from OUT_DIR, as two_looks_scores.py)
"""
import json, sys
from pathlib import Path
sys.path.insert(0, "docs/bench/kernel-first")
import numpy as np, torch
import estimator_loop as L
from predictor_on_deconv_probe import first_set_jobs, training_pair
from kernel_extent_probe import second_set_jobs
from deblurkit.deconv.photo import estimate_photo_kernel, deconvolve_photo, kernel_extent
torch.set_num_threads(2)
paths = {(k, i): p for k, i, p in first_set_jobs() + second_set_jobs()}
rows = json.load(open(sys.argv[1]))
for r in rows:
    y, x = training_pair(r["kind"], r["i"], paths[(r["kind"], r["i"])])
    est = estimate_photo_kernel(y)
    z = np.load(Path(sys.argv[1]).parent / f"k_{r['kind']}_{r['i']}.npz")
    took = est.kernel.shape == z["kh"].shape and np.allclose(est.kernel, z["kh"])
    same1 = est.kernel.shape == z["k1"].shape and np.allclose(est.kernel, z["k1"])
    rule = (r['rh'] <= 1.0 and r['eh'] >= r['e1']) or (r['nsh'] < r['ns1'] and r['rh'] <= 1.5)
    g = L.score(deconvolve_photo(y, est.kernel).astype(np.float64), x) - L.score(y, x)
    print(r['kind'], r['i'], 'kp' if r['kernel_path'] else '--', 'took_half' if took else ('first' if same1 else 'OTHER'), 'rule says half:', rule, 'g %+.2f (g1 %+.2f gh %+.2f)' % (g, r['g1'], r['gh']), flush=True)
