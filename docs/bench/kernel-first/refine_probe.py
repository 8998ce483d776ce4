"""Issue 35, part 3, a CPU probe (tenth session; training photos only): does a small network
that refines the kernel path's deconvolution, x = d + U(y, d), gain over d itself, and how
much per CPU-minute?

    python docs/bench/kernel-first/refine_probe.py train PACK.npz OUT.pt MINUTES
    python docs/bench/kernel-first/refine_probe.py eval OUT.pt [CACHE.npz]
    python docs/bench/kernel-first/refine_probe.py kohler OUT.pt [CACHE.npz]   # held-out: measures only

train: crops of 160 px from the pack (refine_probe_pack.py) with flips and quarter turns,
L1 loss, Adam, bf16 autocast, 2 threads, for MINUTES of wall time; the weights (fp32) are
saved every few minutes and at the end. eval: the estimator loop's photos
(../shared/data/train/bsds500_test: the first 48 with our own kernels of 13-141 px at 1%
noise, the next 24 with our handheld model and its noise, as noise_robust_probe.py makes
them), through the product's steps (estimate, guard, TV); refused photos score 0 for every
method. Scored aligned, as the benches score. kohler: held-out, to measure once a setting is
chosen (never to choose one): `bench kernels`' own pairs (photo i of ../shared/data/val
blurred by Köhler kernel i mod 12, 1% noise, blur seed 1234), the kernel path's d where the
guard accepts (the predictor check is left out), and d refined. The probe's network is defined here: it is
not a product model (what it would become: a model family trained by `deblur train`).
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import torch.nn as nn  # noqa: E402
import torch.nn.functional as F  # noqa: E402

CROP = 160
BATCH = int(os.environ.get("REFINE_BATCH", 12))


class Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.a, self.b = nn.Conv2d(c, c, 3, padding=1), nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x):
        return x + self.b(F.relu(self.a(x)))


class Refiner(nn.Module):
    """A three-level U-Net on (y, d, d - y); its output is added to d."""

    def __init__(self, widths=(32, 64, 96), blocks=2):
        super().__init__()
        w1, w2, w3 = widths
        self.head = nn.Conv2d(9, w1, 3, padding=1)
        self.enc1 = nn.Sequential(*[Block(w1) for _ in range(blocks)])
        self.down1 = nn.Conv2d(w1, w2, 3, stride=2, padding=1)
        self.enc2 = nn.Sequential(*[Block(w2) for _ in range(blocks)])
        self.down2 = nn.Conv2d(w2, w3, 3, stride=2, padding=1)
        self.mid = nn.Sequential(*[Block(w3) for _ in range(2 * blocks)])
        self.up2 = nn.Conv2d(w3, w2, 3, padding=1)
        self.dec2 = nn.Sequential(*[Block(w2) for _ in range(blocks)])
        self.up1 = nn.Conv2d(w2, w1, 3, padding=1)
        self.dec1 = nn.Sequential(*[Block(w1) for _ in range(blocks)])
        self.tail = nn.Conv2d(w1, 3, 3, padding=1)
        nn.init.zeros_(self.tail.weight)
        nn.init.zeros_(self.tail.bias)  # starts as d itself

    def forward(self, y, d):
        H, W = y.shape[-2:]
        p = (-H % 4, -W % 4)
        y_, d_ = (F.pad(t, (0, p[1], 0, p[0]), mode="replicate") for t in (y, d))
        e1 = self.enc1(self.head(torch.cat([y_, d_, d_ - y_], 1)))
        e2 = self.enc2(F.relu(self.down1(e1)))
        m = self.mid(F.relu(self.down2(e2)))
        u2 = self.dec2(e2 + self.up2(F.interpolate(m, size=e2.shape[-2:], mode="bilinear", align_corners=False)))
        u1 = self.dec1(e1 + self.up1(F.interpolate(u2, size=e1.shape[-2:], mode="bilinear", align_corners=False)))
        return d + self.tail(u1)[..., :H, :W]


def batches(pack_path, seed=0, align=True):
    """Training crops. align: each photo's target is shifted onto its deconvolution first
    (the best whole-pixel shift within 10 px, as the benches score): an estimated kernel is
    centred on its centre of mass, the true one need not be, so d and x can sit a few
    pixels apart, and an unaligned loss teaches the network to blur (the first run did)."""
    from deblurkit.metrics.align import best_shift

    pack = np.load(pack_path)
    n = len(pack["kinds"])
    photos = []
    for j in range(n):
        x8, y8, d = pack[f"x{j}"], pack[f"y{j}"], pack[f"d{j}"]
        dy = dx = 0
        if align:
            t = lambda a: torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1), np.float32))[None]  # noqa: E731
            dy, dx = best_shift(t(d), t(x8 / 255.0), 10)
        photos.append((x8, y8, d, int(dy), int(dx)))
    rng = np.random.default_rng(seed)
    while True:
        xs, ys, ds = [], [], []
        for _ in range(BATCH):
            x8, y8, d, dy, dx = photos[rng.integers(n)]
            H, W = x8.shape[:2]
            t = rng.integers(max(0, -dy), H - CROP + 1 - max(0, dy))
            l = rng.integers(max(0, -dx), W - CROP + 1 - max(0, dx))
            sl = (slice(t, t + CROP), slice(l, l + CROP))
            sd = (slice(t + dy, t + dy + CROP), slice(l + dx, l + dx + CROP))  # d[i + shift] goes with x[i]
            trio = [x8[sl] / 255.0, y8[sd] / 255.0, d[sd].astype(np.float32)]
            r, flip = int(rng.integers(4)), bool(rng.integers(2))
            trio = [np.rot90(a, r) for a in trio]
            if flip:
                trio = [a[:, ::-1] for a in trio]
            for lst, a in zip((xs, ys, ds), trio):
                lst.append(np.ascontiguousarray(a.transpose(2, 0, 1), np.float32))
        yield tuple(torch.from_numpy(np.stack(v)) for v in (xs, ys, ds))


def train(pack_path, out, minutes):
    torch.manual_seed(0)
    torch.set_num_threads(2)
    net = Refiner()
    opt = torch.optim.Adam(net.parameters(), lr=3e-4)
    start, last_save, step, losses, log = time.time(), time.time(), 0, [], []
    budget = 60 * float(minutes)
    data = batches(pack_path, align=os.environ.get("REFINE_ALIGN", "1") == "1")
    next(data)  # the shifts are found before the clock starts
    start = last_save = time.time()
    for x, y, d in data:
        frac = (time.time() - start) / budget if budget > 0 else 1.0
        if frac >= 1:
            break
        for g in opt.param_groups:
            g["lr"] = 3e-4 * 0.5 * (1 + np.cos(np.pi * frac))
        with torch.autocast("cpu", dtype=torch.bfloat16):
            pred = net(y, d)
        loss = (pred.float() - x).abs().mean()
        base = (d - x).abs().mean()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append((loss.item(), base.item()))
        step += 1
        if step % 100 == 0:
            l, b = np.mean(losses[-100:], axis=0)
            line = f"step {step} {time.time() - start:6.0f} s  L1 {l:.4f} (d alone {b:.4f})"
            print(line, flush=True)
            log.append(line)
        if time.time() - last_save > 300:
            torch.save({"state": net.state_dict(), "step": step, "log": log}, out)
            last_save = time.time()
    torch.save({"state": net.state_dict(), "step": step, "log": log}, out)
    print(f"{step} steps in {time.time() - start:.0f} s ({BATCH} crops of {CROP} px each)")


def eval_rows(cache):
    """(kind, extent, x, y, d or None, sim, estimated kernel or None) per evaluation photo,
    cached (the estimates take a minute; caches made before the kernel was kept have six
    fields)."""
    if cache and os.path.exists(cache):
        z = np.load(cache, allow_pickle=True)
        return list(z["rows"])
    from multiprocessing import Pool

    import estimator_loop as L
    from deblurkit.io import IMAGE_EXTENSIONS

    files = sorted(p for p in L.SHARP.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)
    jobs = [("loop", i, f) for i, f in enumerate(files[:48])] + [("handheld", i, f) for i, f in enumerate(files[48:72])]
    with Pool(2) as pool:
        rows = [r for r in pool.map(_eval_one, jobs, chunksize=1) if r is not None]
    if cache:
        arr = np.empty(len(rows), dtype=object)
        arr[:] = rows
        np.savez(cache, rows=arr)
    return rows


def _eval_one(job):
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
    from noise_robust_probe import probe_photo

    from deblurkit.deconv import kernel_similarity, photo

    kind, i, path = job
    made = probe_photo(kind, i, path, classes=["small", "large", "huge"])
    if made is None:
        return None
    x, y, k = made
    est = photo.estimate_photo_kernel(y)
    d = photo.deconvolve_photo(y, est.kernel, estimated=True) if est.accepted else None
    return kind, photo.kernel_extent(k), x, y, d, kernel_similarity(est.kernel, k), est.kernel if est.accepted else None


def _kohler_one(job):
    os.environ["OMP_NUM_THREADS"] = "1"
    torch.set_num_threads(1)
    from deblurkit.bench.kernels import blur_with_kernel
    from deblurkit.deconv import kernel_similarity, photo
    from deblurkit.io import read_image

    i, path, name, k = job
    u8 = np.round(read_image(path).rgb * 255).astype(np.uint8)
    y = blur_with_kernel(u8, k, 0.01, np.random.default_rng([1234, i])).astype(np.float64)
    est = photo.estimate_photo_kernel(y)
    d = photo.deconvolve_photo(y, est.kernel, estimated=True) if est.accepted else None
    return name, int(k.shape[0]), u8 / 255.0, y, d, kernel_similarity(est.kernel, k)


def kohler_rows(cache):
    if cache and os.path.exists(cache):
        return list(np.load(cache, allow_pickle=True)["rows"])
    from multiprocessing import Pool
    from pathlib import Path

    from deblurkit.bench.kernels import load_kernels
    from deblurkit.io import IMAGE_EXTENSIONS

    kernels = load_kernels(Path("../shared/data/kernels/kohler12_estimated"))
    sharp = Path("../shared/data/val")
    every = sorted(p for p in sharp.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    jobs = [(i, f, kernels[i % len(kernels)].name, kernels[i % len(kernels)].array) for i, f in enumerate(every)]
    with Pool(2) as pool:
        rows = pool.map(_kohler_one, jobs, chunksize=1)
    if cache:
        arr = np.empty(len(rows), dtype=object)
        arr[:] = rows
        np.savez(cache, rows=arr)
    return rows


def evaluate(weights, cache=None, kohler=False):
    import estimator_loop as L

    rows = kohler_rows(cache) if kohler else eval_rows(cache)
    torch.set_num_threads(2)
    net = Refiner()
    ck = torch.load(weights)
    net.load_state_dict(ck["state"])
    net.eval()
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a.transpose(2, 0, 1), np.float32))[None]  # noqa: E731
    out = []
    for kind, ext, x, y, d, sim, *_ in rows:
        base = L.score(y, x)
        if d is None:
            out.append((kind, ext, 0.0, 0.0, sim, True))
            continue
        with torch.no_grad():
            r = net(t(y), t(d)).clamp(0, 1)[0].permute(1, 2, 0).numpy().astype(np.float64)
        out.append((kind, ext, L.score(d.astype(np.float64), x) - base, L.score(r, x) - base, sim, False))
    print(f"weights {weights}: step {ck['step']}")
    groups = [("loop 13-27 px", "loop", 0, 29), ("loop 31-79 px", "loop", 29, 80), ("loop 80+ px", "loop", 80, 999),
              ("handheld model", "handheld", 0, 999)]
    if kohler:
        groups = [(name, name, 0, 999) for name in sorted({o[0] for o in out})]
        for label, names in (("01-07 and 12", [g[0] for g in groups if g[0][-6:-4] in ("01", "02", "03", "04", "05", "06", "07", "12")]),
                             ("all 12 kernels", [g[0] for g in groups])):
            per = [(np.mean([o[2] for o in out if o[0] == n]), np.mean([o[3] for o in out if o[0] == n])) for n in names]
            print(f"{label}: mean over kernels d {np.mean([a for a, _ in per]):+.2f}  refined {np.mean([b for _, b in per]):+.2f}")
    for label, kind, lo, hi in groups:
        sel = [o for o in out if o[0] == kind and lo <= o[1] < hi]
        if sel:
            print(f"{label:15s} n={len(sel):2d} refused {sum(o[5] for o in sel)}: d {np.mean([o[2] for o in sel]):+.2f}  "
                  f"refined {np.mean([o[3] for o in sel]):+.2f}  (sim {np.mean([o[4] for o in sel]):.3f})")


if __name__ == "__main__":
    if sys.argv[1] == "train":
        train(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        evaluate(sys.argv[2], sys.argv[3] if len(sys.argv) > 3 else None, kohler=sys.argv[1] == "kohler")
