"""How good is a deconvolution pack's extra input? Its deconvolution's PSNR gain over the
blurry crop, per source of the mixture, from the shards alone (training data only).

    python docs/experiments/probes/deconv_pack_gain.py PACK_DIR [SOURCE_WEIGHTS]   # default "2,1": --sharp ...:2 --pairs ...:1

A crop's source is drawn again from (seed 0, index) by `pick_source`, as the pack drew it, so the weights
must be those the pack was made with, in the order given. Prints mean, median, the share of
crops improved, above +1 dB and below -1 dB, and (guarded packs) the share that fell back.
"""
import glob
import sys
from pathlib import Path

import numpy as np

from deblurkit.data.deconv_pack import pick_source

folder = Path(sys.argv[1])
weights = np.array([float(v) for v in (sys.argv[2] if len(sys.argv) > 2 else "2,1").split(",")])
gains, fell = {}, {}
for f in sorted(glob.glob(str(folder / "deconv-*.npz"))):
    with np.load(f) as p:
        x, y, d = p["sharp"].astype(np.float32) / 255, p["blurry"].astype(np.float32), p["deconv"].astype(np.float32)
        fb = p["fell_back"] if "fell_back" in p.files else np.zeros(len(x), bool)
        for j, idx in enumerate(p["index"]):
            s = pick_source(list(weights), 0, int(idx))[0]
            mse = lambda a: max(float(np.mean((np.clip(a, 0, 1) - x[j]) ** 2)), 1e-10)
            gains.setdefault(s, []).append(10 * np.log10(mse(y[j]) / mse(d[j])))
            fell.setdefault(s, []).append(bool(fb[j]))
print(f"{folder}")
for s in sorted(gains):
    v, b = np.array(gains[s]), np.array(fell[s])
    print(f"source {s} (weight {weights[s]:g}): {len(v)} crops, gain mean {v.mean():+.2f} dB, median {np.median(v):+.2f}, "
          f"improved {np.mean(v > 0):.2f}, > +1 dB {np.mean(v > 1):.2f}, < -1 dB {np.mean(v < -1):.2f}, fell back {b.mean():.2f}")
