"""Issue 35 probe (training data only): does a second estimate from another start, *agreeing*
with the first, tell a right kernel from a wrong one? The estimator is chaotic (two starts
differ by 0.9 dB per photo on the loop), and a kernel it finds from two starts is less
likely to be the alternation's accident. Per photo: the product's estimate (the usual start,
two pixels side by side), the same from two pixels one above the other (BlindConfig
start=vertical), their similarity to each other (`agree`), each one's similarity to the
truth where known, and the gains of each path.

Sets:
  loop      the estimator loop's photos (our kernels, 1% noise, training photos), the
            kernel path without networks (guard, TV step; a refused photo scores 0)
  handheld  Sun & Hays training photos blurred by our `handheld` model, seeds as in
            handheld_decision_probe.py, whose rows give each path's `fast` gain
  gopro     the GoPro frames 000047-000098 (real blur; not the bench's held-out 000101-000128),
            `fast --kernel auto` and `fast` blind, aligned

    python docs/bench/kernel-first/agreement_probe.py SET N OUT.jsonl [offset [decision rows]]
"""
import os, sys, json
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from dataclasses import replace
from pathlib import Path
import numpy as np, torch
import estimator_loop as L
from deblurkit.deconv import BlindConfig, kernel_similarity
from deblurkit.deconv.photo import deconvolve_photo, estimate_photo_kernel, kernel_extent
from deblurkit.io import IMAGE_EXTENSIONS, read_image

OTHER = replace(BlindConfig(), start="vertical")


def both(y):
    a = estimate_photo_kernel(y)
    b = estimate_photo_kernel(y, cfg=OTHER)
    return a, b, dict(accepted=a.accepted, residual=a.residual, extent=kernel_extent(a.kernel),
                      accepted2=b.accepted, residual2=b.residual, extent2=kernel_extent(b.kernel),
                      agree=kernel_similarity(a.kernel, b.kernel))


def main():
    which, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    offset = int(sys.argv[4]) if len(sys.argv) > 4 else 0
    decisions = sys.argv[5] if len(sys.argv) > 5 else os.path.join(os.path.dirname(__file__), "handheld_decision_probe_rows.jsonl")
    rows = []
    if which == "loop":
        files = sorted(p for p in L.SHARP.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)[:n]
        for i, f in enumerate(files):
            k, y, x, base = L.loop_photo(i, f, ["small", "large", "huge"])
            a, b, row = both(y)
            g = (L.score(deconvolve_photo(y, a.kernel, estimated=True), x) - base) if a.accepted else 0.0
            g2 = L.score(deconvolve_photo(y, b.kernel, estimated=True), x) - base
            row.update(i=i, true_extent=kernel_extent(k), sim=kernel_similarity(a.kernel, k),
                       sim2=kernel_similarity(b.kernel, k), g_kernel=g, g_kernel2=g2)
            rows.append(row)
            print(json.dumps(row), flush=True)
    elif which == "handheld":
        from deblurkit.data.blur import apply_blur, blur_model
        decided = {r["i"]: r for r in map(json.loads, open(decisions))}
        files = sorted(p for p in Path("../shared/data/train/sun80").rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)[offset:offset + n]
        cfg = blur_model("handheld")
        for i, f in enumerate(files, offset):
            x = read_image(f).rgb.astype(np.float32)
            bl = apply_blur(x, np.random.default_rng([88, i]), cfg)
            y = np.clip(bl.blurry, 0, 1).astype(np.float32)
            a, b, row = both(y)
            d = decided[i]
            row.update(i=i, true_extent=d["true_extent"], path=d["path"], g_auto=d["g_auto"], g_none=d["g_none"],
                       same_as_decision_probe=row["extent"] == d["est_extent"])
            if bl.kernels and not bl.spatially_varying:
                row.update(sim=kernel_similarity(a.kernel, bl.kernels[0]), sim2=kernel_similarity(b.kernel, bl.kernels[0]))
            rows.append(row)
            print(json.dumps(row), flush=True)
    elif which == "gopro":
        from deblurkit.api import Deblurrer
        torch.set_num_threads(2)
        model = Deblurrer()
        root = Path("../shared/data/gopro/GOPR0372_07_00")
        names = [p.name for p in sorted((root / "blur").glob("*.png")) if int(p.stem) < 101][:n]
        for name in names:
            y = read_image(root / "blur" / name).rgb.astype(np.float32)
            x = read_image(root / "sharp" / name).rgb.astype(np.float32)
            base = L.score(y, x)
            a, b, row = both(y)
            ra = model.restore(y, "fast", kernel="auto", return_samples=True)
            rn = model.restore(y, "fast", kernel="none")
            row.update(frame=name, path=ra.kernel.path, reason=ra.kernel.reason,
                       g_auto=L.score(ra.image.astype(np.float64), x) - base, g_none=L.score(rn.astype(np.float64), x) - base)
            rows.append(row)
            print(json.dumps(row), flush=True)
    with open(out, "w") as fh:
        for r in rows:
            fh.write(json.dumps(r) + "\n")


if __name__ == "__main__":
    main()
