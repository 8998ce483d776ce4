"""Issue 35, part 3: a trained refiner (`deblur train --phase refiner`) against the kernel
path's deconvolution d on training photos, to choose settings (never held-out photos):
the refinement probe's evaluation photos (refine_probe.py `eval_rows`:
../shared/data/train/bsds500_test, 48 with our own kernels of 13-141 px at 1% noise and 24
with our handheld model), through the product's steps (estimate, guard, TV), d and
d + R(y, d) scored aligned as the benches score. Photos the guard refuses score 0 for both.

    python docs/bench/kernel-first/refiner_eval.py WEIGHTS.safetensors [CACHE.npz] [--per-photo]

--per-photo also prints each photo's row: kind, true kernel extent, the estimate's
similarity to the truth, d's gain and the refiner's change over d (dB).

The cache is refine_probe.py's (the estimates take a minute; data/refine_probe/eval_cache.npz);
a kernel-conditioned refiner needs one that kept the estimated kernels
(data/refine_probe/eval_cache_k.npz: the same photos, estimates and d).
"""
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch.nn import functional as F  # noqa: E402

from deblurkit.devices import autocast  # noqa: E402
from deblurkit.weights import load_checkpoint  # noqa: E402


def refined(model, y: np.ndarray, d: np.ndarray, kernel=None, precision: str = "bf16") -> np.ndarray:
    """d + R(y, d[, k]) on the whole photo (padded by replication to the refiner's multiple), in [0, 1]."""
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1), np.float32))[None] * 2 - 1  # noqa: E731
    H, W = y.shape[:2]
    m = model.multiple
    pad = (0, -W % m, 0, -H % m)
    ys, ds = (F.pad(t(a), pad, mode="replicate") for a in (y, d))
    with torch.inference_mode(), autocast(torch.device("cpu"), precision):
        out = model.refine(ys, ds, kernel).float()[..., :H, :W]
    return ((out + 1) / 2).clamp(0, 1)[0].permute(1, 2, 0).numpy().astype(np.float64)


def main(weights, cache, per_photo=False):
    import estimator_loop as L
    from refine_probe import eval_rows

    torch.set_num_threads(2)
    model = load_checkpoint(weights).model.eval()
    if model.refiner is None:
        sys.exit(f"{weights}: this model has no refiner")
    out = []
    conditioned = bool(model.refiner.config.kernel_grid)
    for kind, ext, x, y, d, sim, *kernel in eval_rows(cache):
        base = L.score(y, x)
        if d is None:
            out.append((kind, ext, 0.0, 0.0))
            continue
        if conditioned and not kernel:
            sys.exit(f"{cache}: made before the estimated kernels were kept; a kernel-conditioned refiner needs a new cache")
        k = torch.from_numpy(np.ascontiguousarray(kernel[0], np.float32)) if conditioned else None
        out.append((kind, ext, L.score(d.astype(np.float64), x) - base, L.score(refined(model, y, d, k), x) - base))
        if per_photo:
            print(f"{kind:9s} {ext:4d} px  similarity {sim:.2f}  d {out[-1][2]:+.2f}  refined - d {out[-1][3] - out[-1][2]:+.2f}")
    print(f"weights {weights}")
    for label, kind, lo, hi in (("loop 13-27 px", "loop", 0, 29), ("loop 31-79 px", "loop", 29, 80),
                                ("loop 80+ px", "loop", 80, 999), ("handheld model", "handheld", 0, 999)):
        sel = [o for o in out if o[0] == kind and lo <= o[1] < hi]
        print(f"{label:15s} n={len(sel):2d}: d {np.mean([o[2] for o in sel]):+.2f}  refined {np.mean([o[3] for o in sel]):+.2f}")


if __name__ == "__main__":
    args = [a for a in sys.argv[1:] if a != "--per-photo"]
    main(args[0], args[1] if len(args) > 1 else "data/refine_probe/eval_cache.npz", "--per-photo" in sys.argv)
