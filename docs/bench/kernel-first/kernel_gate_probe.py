"""Probe (issue 35, part 3): can a small network tell, pixel by pixel, where the kernel
path's deconvolution d is right and where the blind predictor's P(y) is better?

The kernel path gains +1.6 dB on real hand-shake kernels and loses 0.2 dB on GoPro-style
blur (scene motion: one kernel does not explain the frame), where the blind predictor
gains +1.2. If a gate g(y, d, P(y)) in [0, 1] learns to keep d where it explains the
photo and P(y) where it does not, x = P(y) + g (d - P(y)) could make the kernel path the
default. This script measures that before any of it enters the product.

    python docs/bench/kernel-first/kernel_gate_probe.py prep    # samples -> /tmp/kernel_gate/*.npz
    python docs/bench/kernel-first/kernel_gate_probe.py train   # trains the gate, scores it

Training samples (training data only): ../shared/data/train/bsds500_train photos blurred
by our own hand-shake kernels (13-141 px), the same photos with two kernels blended by a
smooth mask (a moving object, or two motions: what one kernel cannot explain), and crops
of the 18 GoPro training frames (../data_split/gopro_train). Scored on: other training
photos with our kernels, the 10 held-out GoPro frames (384 px centre crops, as the
bench), and 36 validation photos x the Köhler kernels (aligned, as the bench; measuring
only, never training).
"""
import os
import sys

os.environ.setdefault("OMP_NUM_THREADS", "1")

from multiprocessing import Pool  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

OUT = Path("/tmp/kernel_gate")
SHARED = Path("../shared/data")
TRAIN = SHARED / "train" / "bsds500_train"
TUNE = SHARED / "train" / "bsds500_test"
GOPRO_TRAIN, GOPRO_HELD = Path("../data_split/gopro_train"), Path("../data_split/gopro_heldout")
KOHLER = SHARED / "kernels" / "kohler12_estimated"
CLASSES = ((13, 27), (31, 75), (81, 141))


def files(folder):
    return sorted(p for p in folder.rglob("*") if p.suffix.lower() in (".png", ".jpg", ".jpeg", ".bmp"))


def u8(path):
    from deblurkit.io import read_image

    return np.round(read_image(path).rgb * 255).astype(np.uint8)


def kernel(rng, extent):
    from deblurkit.data.shake import handheld_kernel

    return handheld_kernel(rng, extent=float(extent)).astype(np.float32)


def jobs():
    """(name, kind, how) for every sample."""
    out = []
    train = files(TRAIN)
    for i, f in enumerate(train[:48]):
        out.append((f"shake_{i:03d}", "shake", (str(f), i)))
    for i, f in enumerate(train[96:126]):
        out.append((f"mixed_{i:03d}", "mixed", (str(f), 1000 + i)))
    for i, f in enumerate(files(GOPRO_TRAIN / "blur")):
        for j in range(3):
            out.append((f"gopro_{i:02d}_{j}", "gopro", (str(f), 100 * i + j)))
    for i, f in enumerate(files(TUNE)[100:112]):
        out.append((f"evalshake_{i:03d}", "shake", (str(f), 5000 + i)))
    for i, f in enumerate(files(GOPRO_HELD / "blur")):
        out.append((f"evalgopro_{i:02d}", "goprocentre", (str(f), 0)))
    val = [p for p in files(SHARED / "val")][:36]
    for i, f in enumerate(val):
        out.append((f"evalkohler_{i:02d}", "kohler", (str(f), i)))
    return out


def make(job):
    name, kind, (path, seed) = job
    target = OUT / f"{name}.npz"
    if target.exists():
        return name
    torch.set_num_threads(1)
    from deblurkit.bench.kernels import blur_with_kernel, load_kernels

    rng = np.random.default_rng([35, 7, seed])
    if kind in ("shake", "mixed", "kohler"):
        x = u8(path)
        if kind == "kohler":
            k = load_kernels(KOHLER)[seed % 12].array
            y = blur_with_kernel(x, k, 0.01, np.random.default_rng([1234, seed]))
        else:
            k = kernel(rng, rng.uniform(*CLASSES[seed % 3]))
            y = blur_with_kernel(x, k, 0.01, rng)
            if kind == "mixed":  # a second motion (or none: a still background) under a smooth mask
                k2 = kernel(rng, rng.uniform(13, 75)) if rng.random() < 0.5 else np.ones((1, 1), np.float32)
                y2 = blur_with_kernel(x, k2, 0.01, rng)
                field = cv2.GaussianBlur(rng.standard_normal(x.shape[:2]).astype(np.float32), (0, 0), 40)
                m = 1 / (1 + np.exp(-field / (field.std() + 1e-6) * 4))
                y = (m[..., None] * y + (1 - m[..., None]) * y2).astype(np.float32)
    else:
        sharp = Path(path).parent.parent / "sharp" / Path(path).name
        yb, xs = u8(path), u8(sharp)
        H, W = yb.shape[:2]
        if kind == "goprocentre":
            h = w = 384
            t, l = (H - h) // 2, (W - w) // 2
        else:
            h, w = 320, 480
            t, l = int(rng.integers(0, H - h + 1)), int(rng.integers(0, W - w + 1))
        y, x = yb[t:t + h, l:l + w].astype(np.float32) / 255, xs[t:t + h, l:l + w]
    return store(target, x, y)


_deblurrer = None


def store(target, x, y):
    global _deblurrer
    from deblurkit.api import Deblurrer
    from deblurkit.deconv.photo import deconvolve_photo, estimate_photo_kernel

    if _deblurrer is None:
        _deblurrer = Deblurrer()
    est = estimate_photo_kernel(y)
    d = deconvolve_photo(y, est.kernel, estimated=True) if est.accepted else y
    p = _deblurrer.restore(np.ascontiguousarray(y, np.float32), "fast", kernel="none")
    np.savez(target, x=x, y=y.astype(np.float16), d=np.asarray(d, np.float16), p=np.asarray(p, np.float16),
             accepted=est.accepted, residual=est.residual)
    return target.stem


def prep():
    OUT.mkdir(exist_ok=True)
    with Pool(2) as pool:
        for n in pool.imap_unordered(make, jobs(), chunksize=1):
            print(n, flush=True)


# --- the gate --------------------------------------------------------------------------

class Gate(torch.nn.Module):
    """g(y, d, p): a per-pixel weight of d against p, computed at a quarter of the
    resolution (ghosts of a wrong kernel span tens of pixels; a quarter-scale CNN of six
    3x3 layers sees ~60 px) and enlarged bilinearly."""

    def __init__(self, width=32):
        super().__init__()
        layers, c = [], 12
        for dilation in (1, 1, 2, 4, 2, 1):
            layers += [torch.nn.Conv2d(c, width, 3, padding=dilation, dilation=dilation), torch.nn.GELU()]
            c = width
        layers += [torch.nn.Conv2d(width, 1, 3, padding=1)]
        self.net = torch.nn.Sequential(*layers)

    def forward(self, y, d, p):
        small = lambda t: torch.nn.functional.avg_pool2d(t, 4)  # noqa: E731
        z = torch.cat([small(y), small(d), small(p), small(d - p) * 4], 1)
        g = torch.sigmoid(self.net(z * 2 - 1))
        g = torch.nn.functional.interpolate(g, size=y.shape[-2:], mode="bilinear", align_corners=False)
        return p + g * (d - p), g


def load(name):
    with np.load(OUT / f"{name}.npz") as a:
        t = lambda v: torch.from_numpy(np.ascontiguousarray(v.astype(np.float32))).permute(2, 0, 1)[None]  # noqa: E731
        return t(a["x"] / 255.0), t(a["y"]), t(a["d"]), t(a["p"]), bool(a["accepted"])


def score(out, x, align):
    from deblurkit.metrics import psnr
    from deblurkit.metrics.align import aligned

    if align:
        out, x, _ = aligned(out, x, 10)
    return float(psnr(out.clamp(0, 1), x))


def train():
    torch.manual_seed(0)
    torch.set_num_threads(2)
    names = sorted(p.stem for p in OUT.glob("*.npz"))
    data = {n: load(n) for n in names}
    train_names = [n for n in names if not n.startswith("eval") and data[n][4]]
    print(f"{len(train_names)} training samples (accepted kernels) of {sum(not n.startswith('eval') for n in names)}")
    gate = Gate()
    opt = torch.optim.Adam(gate.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    steps = int(os.environ.get("GATE_STEPS", "1500"))
    crop, batch = 192, 8
    for step in range(steps):
        xs, ys, ds, ps = [], [], [], []
        for n in rng.choice(train_names, batch):
            x, y, d, p, _ = data[n]
            H, W = x.shape[-2:]
            t, l = int(rng.integers(0, H - crop + 1)), int(rng.integers(0, W - crop + 1))
            cut = lambda a: a[..., t:t + crop, l:l + crop]  # noqa: E731
            xs.append(cut(x)), ys.append(cut(y)), ds.append(cut(d)), ps.append(cut(p))
        x, y, d, p = (torch.cat(v) for v in (xs, ys, ds, ps))
        out, _ = gate(y, d, p)
        loss = (out - x).abs().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % 100 == 0:
            print(f"step {step} loss {loss.item():.4f}", flush=True)
    torch.save(gate.state_dict(), OUT / "gate.pt")
    gate.eval()
    for prefix, align in (("evalshake", True), ("evalgopro", False), ("evalkohler", True), ("gopro_", False), ("shake_", True)):
        rows = []
        for n in (n for n in names if n.startswith(prefix)):
            x, y, d, p, ok = data[n]
            with torch.no_grad():
                g_out = gate(y, d, p)[0] if ok else p
            base = score(y, x, align)
            rows.append([score(p, x, align) - base, score(d if ok else p, x, align) - base, score(g_out, x, align) - base])
        r = np.mean(rows, axis=0)
        print(f"{prefix:11s} n={len(rows):3d}  blind P(y) {r[0]:+.2f}  kernel path d {r[1]:+.2f}  gate {r[2]:+.2f}  "
              f"oracle {np.mean(np.max(rows, axis=1)):+.2f}")


if __name__ == "__main__":
    {"prep": prep, "train": train}[sys.argv[1]]()
