"""Issue 35: kernels for a stand-in of the issue's held-out check, which the project's own
checks run on measured kernels we do not have (8 of 13-27 px, 4 of 31-75 px). Drawn fresh
from our hand-shake model (deblurkit.data.shake.handheld_kernel) with a seed no probe or
setting has used ([2026, class, i]), so nothing was tuned on them; they are our model's
shapes, not measured ones, so this measures the product on unseen kernels of the kind it
was built for, not the held-out check itself.

    python docs/bench/kernel-first/proxy_kernels.py OUT_DIR
        writes OUT_DIR/small/proxy_small_{0..7}.npy (13-27 px) and OUT_DIR/large/proxy_large_{0..3}.npy
        (31-75 px), extents spread evenly over each range
"""
import sys
from pathlib import Path

import numpy as np

from deblurkit.data.shake import handheld_kernel
from deblurkit.deconv.photo import kernel_extent

out = Path(sys.argv[1])
for c, (name, lo, hi, n) in enumerate((("small", 13, 27, 8), ("large", 31, 75, 4))):
    (out / name).mkdir(parents=True, exist_ok=True)
    for i, extent in enumerate(np.linspace(lo, hi, n)):
        k = handheld_kernel(np.random.default_rng([2026, c, i]), extent=float(extent)).astype(np.float64)
        np.save(out / name / f"proxy_{name}_{i}.npy", k / k.sum())
        print(name, i, f"asked {extent:.0f} px, drawn {kernel_extent(k)} px, window {k.shape[0]}")
