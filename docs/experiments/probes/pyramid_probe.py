"""Probe: the predictor run at inference as a Laplacian pyramid on the real-kernel bench.

    python docs/experiments/probes/pyramid_probe.py WEIGHTS [LIMIT]

The same pairs as `deblur bench kernels --kernels ../shared/data/kernels/kohler12_estimated
--sharp ../shared/data/val --crop 256 --noise 0.01` (photo i by kernel i mod 12, blur seed
1234); for 1, 2 and 3 scales: the restoration of the input halved (recursively) replaces the
low frequencies (down-then-up) of the finer restoration. Prints the mean PSNR and the gain
over the blurry input per kernel. Pause any training run first.
"""
import sys, numpy as np, torch, json
from pathlib import Path
from torch.nn import functional as F
from deblurkit.bench.kernels import load_kernels, blur_with_kernel
from deblurkit.io import read_image, IMAGE_EXTENSIONS
from deblurkit.weights import load_checkpoint
torch.set_num_threads(2)
w = sys.argv[1]; limit = int(sys.argv[2]) if len(sys.argv) > 2 else 100
model = load_checkpoint(w).model.eval()
kernels = load_kernels(Path("../shared/data/kernels/kohler12_estimated"))
sharp = Path("../shared/data/val")
files = sorted(p for p in sharp.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)[:limit]  # as the bench orders them
def centre(a, c=256):
    h, w = a.shape[:2]; t, l = (h - c) // 2, (w - c) // 2
    return a[t:t+c, l:l+c]
def g(y):
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        return model.predict(y).float()
def down(x): return F.avg_pool2d(x, 2)
def up(x, like): return F.interpolate(x, size=like.shape[-2:], mode="bilinear", align_corners=False)
def pyramid(y, levels):
    x = g(y)
    if levels == 1: return x
    coarse = pyramid(down(y), levels - 1)
    return x - up(down(x), x) + up(coarse, x)
def psnr(a, b): return float(10 * torch.log10(1 / ((a.clamp(-1,1) - b) ** 2).mean() * 4))
res = {k: [] for k in ("blurry", "l1", "l2", "l3")}
per = {}
for i, f in enumerate(files):
    k = kernels[i % len(kernels)]
    u8 = np.round(read_image(f).rgb * 255).astype(np.uint8)
    b = blur_with_kernel(u8, k.array, 0.01, np.random.default_rng([1234, i]))
    b, s = centre(b), centre(u8.astype(np.float32) / 255)
    if b.shape[0] < 256 or b.shape[1] < 256: continue
    y = torch.from_numpy(b).permute(2, 0, 1)[None] * 2 - 1
    x = torch.from_numpy(s).permute(2, 0, 1)[None] * 2 - 1
    row = {"blurry": psnr(y, x)}
    for L in (1, 2, 3):
        row[f"l{L}"] = psnr(pyramid(y, L), x)
    for kk, v in row.items(): res[kk].append(v)
    per.setdefault(k.name.split("/")[-1], []).append(row)
print({k: round(np.mean(v), 3) for k, v in res.items()}, len(res["blurry"]))
for name, rows in sorted(per.items()):
    m = {k: np.mean([r[k] for r in rows]) for k in rows[0]}
    print(name, " ".join(f"{k} {m[k]-m['blurry']:+.2f}" for k in ("l1", "l2", "l3")))
