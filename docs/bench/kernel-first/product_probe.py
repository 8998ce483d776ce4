"""Issue 35 probe (training data only): the product's whole `fast --kernel auto` (estimate,
guard, predictor checks, deconvolution) against the blind `fast`, per photo, aligned, on
the first probe set (the loop's 48 BSDS photos with our kernels of 13-141 px at 1% noise,
and the 18 GoPro training frames' 384 px centres) and on 24 photos blurred by the
uniform-kernel part of our handheld model with its noise (noise_robust_probe.py's second
set). deconv.photo / deconv.nonblind / kernel_path constants as NAME=value.

    python docs/bench/kernel-first/product_probe.py OUT.json [NAME=value ...]
"""
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import estimator_loop as L  # noqa: E402
from noise_robust_probe import UNIFORM  # noqa: E402
from predictor_on_deconv_probe import first_set_jobs, training_pair  # noqa: E402
from deblurkit import kernel_path  # noqa: E402
from deblurkit.api import Deblurrer  # noqa: E402
from deblurkit.data.blur import apply_blur  # noqa: E402
from deblurkit.deconv import nonblind, photo  # noqa: E402
from deblurkit.io import IMAGE_EXTENSIONS, read_image  # noqa: E402


def pairs():
    for kind, i, path in first_set_jobs():
        yield kind, i, *training_pair(kind, i, path)
    files = sorted(p for p in L.SHARP.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)[48:72]
    for i, f in enumerate(files):
        x = read_image(f).rgb.astype(np.float32)
        res = apply_blur(x, np.random.default_rng([77, i]), UNIFORM, noise=True)
        if res.kinds == ["motion"]:
            yield "handheld", i, np.clip(res.blurry, 0, 1).astype(np.float64), x.astype(np.float64)


if __name__ == "__main__":
    out = sys.argv[1]
    for a in sys.argv[2:]:
        name, value = a.split("=", 1)
        module = next(m for m in (photo, nonblind, kernel_path) if hasattr(m, name))
        setattr(module, name, float(value))
    torch.set_num_threads(2)
    model = Deblurrer()
    rows = []
    for kind, i, y, x in pairs():
        base = L.score(y, x)
        blind = L.score(model.restore(y.astype(np.float32), "fast", kernel="none").astype(np.float64), x) - base
        r = model.restore(y.astype(np.float32), "fast", kernel="auto", return_samples=True)
        row = dict(kind=kind, i=i, path=r.kernel.path, reason=r.kernel.reason, blind=round(blind, 3),
                   auto=round(L.score(r.image.astype(np.float64), x) - base, 3))
        print(json.dumps(row), flush=True)
        rows.append(row)
    for kind in ("shake", "motion", "handheld"):
        sel = [r for r in rows if r["kind"] == kind]
        kp = [r for r in sel if r["path"] == "kernel"]
        print(f"{kind}: n={len(sel)} blind {np.mean([r['blind'] for r in sel]):+.3f} auto {np.mean([r['auto'] for r in sel]):+.3f} "
              f"kernel path {len(kp)}", sys.argv[2:])
    json.dump(rows, open(out, "x"), indent=1)
