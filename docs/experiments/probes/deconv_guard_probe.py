"""Choosing the guarded Wiener rule's check (deblurkit.deconv GUARD_*) on TRAINING data only.

A blind kernel estimate sometimes fails (a wrong kernel on a flat or low-contrast crop),
and the deconvolution then loses 2-14 dB; on the deconvolution pack's own crops these
failures outweighed the gains, so the kernel-aware predictor learned to ignore its extra
input (deconv_training_probe.py). The guard falls back to the blurry input where the kernel
does not explain it: the input, lightly deconvolved (weight w_c), blurred again by the
kernel, differs from the input by more than T times its estimated noise (at least a floor).

Two protocols, as in deconv_training_probe.py: `train` (the pack's own handheld draws,
`draw_sample(sources, seed 0, i)`) and `bench` (sun80 training photos, our own handheld
kernels, 8-bit values convolved, noise 0.01). The Köhler kernels and ../shared/data/val are
never used.

    python docs/experiments/probes/deconv_guard_probe.py estimate N START train|bench OUT.npz   # slow: one kernel estimate per crop
    python docs/experiments/probes/deconv_guard_probe.py report DIR        # DIR/*train*.npz and DIR/*bench*.npz

`report` prints, per check weight and noise floor, the mean gain (dB over the blurry crop,
noise-rule Wiener) with the guard at several thresholds (a fallback counts 0) and the share
of crops that fall back; then the shipped setting.
"""
import glob
import sys
from pathlib import Path

import numpy as np

from deblurkit.deconv.blind import (GUARD_NOISE_FLOOR, GUARD_RESIDUAL, GUARD_WEIGHT, BlindConfig, estimate_kernel, noise_sigma,
                                    reblur_residual, residual_ratio, to_gray, wiener, wiener_weight)


def psnr(a, b):
    return float(10 * np.log10(1 / max(np.mean((np.clip(a, 0, 1) - b) ** 2), 1e-10)))


def estimate(n, start, mode, out):
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    from deconv_training_probe import draw_crop  # the same two protocols, crop for crop

    xs, ys, ks = [], [], []
    for i in range(start, start + n):
        x, y = draw_crop(i, mode)
        xs.append(x.astype(np.float32))
        ys.append(y.astype(np.float32))
        ks.append(estimate_kernel(to_gray(y), BlindConfig()))
        print(i, flush=True)
    np.savez(out, x=np.stack(xs), y=np.stack(ys), k=np.stack(ks))


def report(folder):
    weights = (0.003, GUARD_WEIGHT, 0.03)
    for mode in ("train", "bench"):
        rows = []
        for f in sorted(glob.glob(str(Path(folder) / f"*{mode}*.npz"))):
            z = np.load(f)
            for x, y, k in zip(z["x"].astype(np.float64), z["y"].astype(np.float64), z["k"]):
                g = to_gray(y)
                gain = psnr(wiener(y, k, wiener_weight("noise", g)), x) - psnr(y, x)
                rows.append([gain, noise_sigma(g), residual_ratio(g, k)] + [reblur_residual(g, k, w) for w in weights])
        r = np.array(rows)
        print(f"{mode}: {len(r)} crops; no guard: mean gain {r[:, 0].mean():+.3f} dB, below -1 dB {(r[:, 0] < -1).mean():.3f}")
        for j, w in enumerate(weights, 3):
            for floor in (1e-3, GUARD_NOISE_FLOOR):
                ratio = r[:, j] / np.maximum(r[:, 1], floor)
                cells = []
                for t in (1.0, 1.2, 1.5, 2.0, 2.5):
                    keep = ratio <= t
                    cells.append(f"T {t}: {np.where(keep, r[:, 0], 0).mean():+.3f} ({1 - keep.mean():.2f})")
                print(f"  check weight {w}, floor {floor}: " + "  ".join(cells))
        keep = r[:, 2] <= GUARD_RESIDUAL
        print(f"  shipped (weight {GUARD_WEIGHT}, floor {GUARD_NOISE_FLOOR}, T {GUARD_RESIDUAL}): mean gain "
              f"{np.where(keep, r[:, 0], 0).mean():+.3f} dB, falls back on {1 - keep.mean():.2f}, "
              f"below -1 dB {(np.where(keep, r[:, 0], 0) < -1).mean():.3f}")


if __name__ == "__main__":
    if sys.argv[1] == "estimate":
        estimate(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4], sys.argv[5])
    else:
        report(sys.argv[2])
