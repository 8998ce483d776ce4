"""Issue 35 probe, part 2: the two kernels of two_looks_probe.py, scored by what each one's
deconvolution looks like: the gradients' L1/L2 ratio (gradient sparsity, Krishnan, Tay &
Fergus 2011: lower is sharper) of the photo deconvolved with each (ns1, nsh), and how well
each kernel's autocorrelation matches the blurry window's gradient autocorrelation (ac1,
ach; Goldstein & Fattal's observation that natural gradients are nearly white, so the
blurry gradients' autocorrelation is the kernel's). Rows to OUT.json.

    python docs/bench/kernel-first/two_looks_scores.py OUT_DIR/rows.jsonl OUT.json   (kernels read from OUT_DIR)
"""
import json, sys
from pathlib import Path
sys.path.insert(0, "docs/bench/kernel-first")
import numpy as np, cv2
from numpy.fft import rfft2, irfft2
from predictor_on_deconv_probe import training_pair
from deblurkit.deconv.blind import to_gray, _odd
from deblurkit.deconv.photo import deconvolve_photo, _gray_window, estimation_scale, centre_region, resize_kernel

def grad_autocorr(gray, half):
    g = [np.diff(gray, axis=1)[:-1, :], np.diff(gray, axis=0)[:, :-1]]
    R = 0
    for a in g:
        a = a - a.mean()
        a = a * np.outer(np.hanning(a.shape[0]), np.hanning(a.shape[1]))
        F = rfft2(a, s=(2 * a.shape[0], 2 * a.shape[1]))
        R = R + irfft2(np.abs(F) ** 2, s=(2 * a.shape[0], 2 * a.shape[1]))
    R = np.fft.fftshift(R)
    c0, c1 = R.shape[0] // 2, R.shape[1] // 2
    return R[c0 - half:c0 + half + 1, c1 - half:c1 + half + 1]

def kernel_autocorr(k, half):
    n = 2 * half + 1
    pad = np.zeros((n, n)); s = k.shape[0]
    if s > n:
        c = (s - n) // 2; k = k[c:c + n, c:c + n]; s = n
    o = (n - s) // 2
    pad[o:o + s, o:o + s] = k
    F = np.fft.fft2(pad, s=(2 * n, 2 * n))
    A = np.fft.fftshift(np.real(np.fft.ifft2(np.abs(F) ** 2)))
    c = A.shape[0] // 2
    return A[c - half:c + half + 1, c - half:c + half + 1]

def ac_score(gray, k, half, hole=2):
    R = grad_autocorr(gray, half); A = kernel_autocorr(k, half)
    yy, xx = np.mgrid[-half:half + 1, -half:half + 1]
    m = np.hypot(yy, xx) > hole
    a, b = R[m], A[m]
    a = a - a.mean(); b = b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))

def ns(img):
    g = to_gray(img)
    gx, gy = np.diff(g, axis=1)[:-1], np.diff(g, axis=0)[:, :-1]
    m = np.hypot(gx, gy)
    return float(m.sum() / np.sqrt((m * m).sum()) / np.sqrt(m.size))

from predictor_on_deconv_probe import first_set_jobs
from kernel_extent_probe import second_set_jobs
paths = {(k, i): p for k, i, p in first_set_jobs() + second_set_jobs()}
rows = [json.loads(l) for l in open(sys.argv[1]) if l.startswith("{")]
res = []
for r in rows:
    z = np.load(Path(sys.argv[1]).parent / f"k_{r['kind']}_{r['i']}.npz"); k1, kh = z["k1"], z["kh"]
    y, x = training_pair(r["kind"], r["i"], paths[(r["kind"], r["i"])])
    H, W = y.shape[:2]; s = estimation_scale(H, W)
    win = _gray_window(y, centre_region(H, W, s), s)
    ks = lambda k: k if s == 1 else resize_kernel(k, _odd(k.shape[0] * s))
    half = min(min(win.shape) // 2 - 1, 80)
    d1, dh = deconvolve_photo(y, k1), deconvolve_photo(y, kh)
    m = dict(ac1=ac_score(win, ks(k1), half), ach=ac_score(win, ks(kh), half), ns1=ns(d1), nsh=ns(dh))
    r.update(m); res.append(r)
    print(r["i"], r.get("true_extent"), r["e1"], r["eh"], "sim %.2f" % r["sim"], "g1 %+.2f gh %+.2f gP %+.2f" % (r["g1"], r["gh"], r["gP"]),
          "ac %.3f %.3f" % (m["ac1"], m["ach"]), "ns %.4f %.4f" % (m["ns1"], m["nsh"]), "kp" if r["kernel_path"] else "--", "rh %.2f" % r["rh"], flush=True)
json.dump(res, open(sys.argv[2], "w"), indent=1)

# The rules for taking kh instead of k1, on the photos the kernel path takes (by k1's checks)
kp = [r for r in res if r["kernel_path"]]
shipped = lambda r: r["rh"] <= 1.0 and r["eh"] >= r["e1"]  # noqa: E731  (the half look before this probe)
for name, pick in (("k1 always", lambda r: False), ("kh always", lambda r: True), ("oracle", lambda r: r["gh"] > r["g1"]),
                   ("residual <= 1.0 and as long (shipped before)", shipped),
                   ("sharper deconvolution", lambda r: r["nsh"] < r["ns1"]),
                   ("autocorrelation matches better", lambda r: r["ach"] > r["ac1"]),
                   ("sharper and guard accepts (rh <= 1.5)", lambda r: r["nsh"] < r["ns1"] and r["rh"] <= 1.5),
                   ("shipped before, or sharper and guard accepts", lambda r: shipped(r) or (r["nsh"] < r["ns1"] and r["rh"] <= 1.5))):
    g = [r["gh"] if pick(r) else r["g1"] for r in kp]
    print(f"{name:46s} mean {np.mean(g):+.2f} dB  worst {min(g):+.2f}  kh taken {sum(map(pick, kp)):2d}/{len(kp)}  "
          f"worse than k1 by 0.5 dB or more: {sum(x < r['g1'] - 0.5 for r, x in zip(kp, g))}")
