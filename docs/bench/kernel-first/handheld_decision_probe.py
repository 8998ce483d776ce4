"""Issue 35 probe (training data only): on photos blurred by our own handheld model (what a
phone photo with shake looks like: `deblur blur`'s default), where does the kernel path's
decision go wrong? Per photo of ../shared/data/train/sun80 (whole, as the product sees them;
blur seed [88, i]), the path `fast --kernel auto` takes and why, the gains (aligned) of
`fast` on each path, the true kernel's extent and the estimate's, the guard's residual,
both predictor signs, the noise, and the predictor's own implied kernel: the least-squares
kernel that takes P(y) to y (kernel_step on the whole grey window, no edge selection), and
the residual of P(y) blurred by it against y, in units of the noise.

    python docs/bench/kernel-first/handheld_decision_probe.py N OUT.jsonl [offset]
"""
import os, sys, json
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pathlib import Path
import numpy as np, torch, cv2
import estimator_loop as L
from deblurkit.api import Deblurrer
from deblurkit.data.blur import apply_blur, blur_model
from deblurkit.deconv.blind import BlindConfig, kernel_step, noise_sigma, periodic_pad, to_gray, _odd
from deblurkit.deconv.photo import kernel_extent, resize_kernel, _gray_window
from deblurkit.io import IMAGE_EXTENSIONS, read_image
from deblurkit.kernel_path import predictor_check

torch.set_num_threads(2)
model = Deblurrer()
SHARP = Path("../shared/data/train/sun80")


def implied_kernel(p, y, size):
    """argmin_k ||grad P * k - grad y||^2 + reg ||k||^2 over the whole window (no edge
    selection: P is not a sparse latent), and the residual RMS(k * P - y) / noise."""
    k = kernel_step(periodic_pad(p, size), periodic_pad(y, size), size, BlindConfig(), 0.0)
    m = size // 2 + 2
    r = cv2.filter2D(p, -1, k[::-1, ::-1], borderType=cv2.BORDER_REFLECT) - y
    return k, float(np.sqrt(np.mean(r[m:-m, m:-m] ** 2))) / max(noise_sigma(y), 0.005)


def main():
    n, out = int(sys.argv[1]), sys.argv[2]
    offset = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    files = sorted(p for p in SHARP.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)[offset:offset + n]
    cfg = blur_model("handheld")
    rows = []
    for i, f in enumerate(files, offset):
        x = read_image(f).rgb.astype(np.float32)
        b = apply_blur(x, np.random.default_rng([88, i]), cfg)
        y = np.clip(b.blurry, 0, 1).astype(np.float32)
        k_true = b.kernels[0] if b.kernels else None
        base = L.score(y, x)
        ra = model.restore(y, "fast", kernel="auto", return_samples=True)
        rn = model.restore(y, "fast", kernel="none")
        row = dict(i=i, file=f.name, kind=",".join(b.kinds) + (" varying" if b.spatially_varying else ""), true_extent=kernel_extent(k_true) if k_true is not None else None,
                   path=ra.kernel.path, reason=ra.kernel.reason, residual=ra.kernel.residual,
                   g_auto=L.score(ra.image.astype(np.float64), x) - base, g_none=L.score(rn.astype(np.float64), x) - base)
        est = model.estimate_kernel(y)
        row["est_extent"] = kernel_extent(est.kernel)
        image = torch.from_numpy(np.ascontiguousarray(y)).permute(2, 0, 1)[None]
        if est.accepted:
            c = predictor_check(image, est, model.restorer._predict_whole)
            row.update(ratio=c.ratio, deblurred=c.deblurred)
        # the predictor's implied kernel on the estimation window, at the estimation scale
        gy = _gray_window(y.astype(np.float64), est.region, est.scale)
        p = model.restorer._predict_whole(image)[0].permute(1, 2, 0).numpy().astype(np.float64)
        gp = _gray_window(p, est.region, est.scale)
        size = _odd(max(est.kernel.shape[0] * est.scale, 15))
        kp, rp = implied_kernel(gp, gy, min(size, 75))
        row.update(p_extent=kernel_extent(kp), p_residual=rp, noise=noise_sigma(gy))
        rows.append(row)
        print(json.dumps(row), flush=True)
    with open(out, "w") as fh:
        for r in rows:
            fh.write(json.dumps(r) + "\n")
    kp = [r for r in rows if r["path"] == "kernel"]
    print(f"n={len(rows)} auto {np.mean([r['g_auto'] for r in rows]):+.2f} none {np.mean([r['g_none'] for r in rows]):+.2f} "
          f"oracle {np.mean([max(r['g_auto'], r['g_none']) for r in rows]):+.2f}; kernel path {len(kp)}: auto "
          f"{np.mean([r['g_auto'] for r in kp]) if kp else 0:+.2f} none {np.mean([r['g_none'] for r in kp]) if kp else 0:+.2f}")


if __name__ == "__main__":
    main()
