"""Side by side: the real-kernel bench's pairs of one kernel, restored by several predictors.

    python docs/training/kernel_strip.py KERNEL OUT.png NAME=WEIGHTS [NAME=WEIGHTS ...] [--rows=N]

The same pairs as `deblur bench kernels --kernels ../shared/data/kernels/kohler12_estimated
--sharp ../shared/data/val --crop 256 --noise 0.01` (photo i by kernel i mod 12, blur seed
1234, the bench's defaults), predictor only (preset fast, bf16 as the bench runs). Prints each
photo's PSNR gain per checkpoint, and writes a strip (rows: the N photos where the
checkpoints differ most; columns: sharp, blurry, then each checkpoint) for looking, not
for committing (the val photos may not enter the repo). Pause any training run first.
"""
import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from deblurkit.bench.runner import _centre  # the bench's own centre crop
from deblurkit.bench.kernels import blur_with_kernel, load_kernels
from deblurkit.io import IMAGE_EXTENSIONS, read_image
from deblurkit.restorer import Restorer, SamplingOptions
from deblurkit.weights import load_checkpoint

torch.set_num_threads(2)
args = [a for a in sys.argv[1:] if not a.startswith("--rows")]
rows = int(next((a.split("=")[1] for a in sys.argv[1:] if a.startswith("--rows=")), 4))
kernel_no, out = int(args[0]), Path(args[1])
nets = [a.split("=", 1) for a in args[2:]]
kernels = load_kernels(Path("../shared/data/kernels/kohler12_estimated"))
k = kernels[kernel_no - 1]
sharp_dir = Path("../shared/data/val")
files = sorted(p for p in sharp_dir.rglob("*") if p.suffix.lower() in IMAGE_EXTENSIONS)


def psnr(a, b):
    return float(10 * np.log10(1.0 / np.mean((np.clip(a, 0, 1) - b) ** 2)))


pairs = []
for i, f in enumerate(files):
    if i % len(kernels) != kernel_no - 1:
        continue
    u8 = np.round(read_image(f).rgb * 255).astype(np.uint8)
    if min(u8.shape[:2]) < 256:
        continue
    y = blur_with_kernel(u8, k.array, 0.01, np.random.default_rng([1234, i]))
    pairs.append((f.name, _centre(y, 256), _centre(u8.astype(np.float32) / 255.0, 256)))

outs = {}
for name, weights in nets:
    restorer = Restorer(load_checkpoint(weights).model.eval(), precision="bf16")
    res = []
    for _, y, _ in pairs:
        t = torch.from_numpy(y).permute(2, 0, 1)[None]  # [0, 1], as the restorer takes it
        with torch.no_grad():
            r = restorer.restore(t, SamplingOptions(steps=0))
        res.append(r[0].permute(1, 2, 0).float().numpy().clip(0, 1))
    outs[name] = res

print(f"kernel {kernel_no:02d} ({Path(k.name).name}, extent {k.extent} px), {len(pairs)} photos; gain in dB")
print("photo".ljust(24) + "blurry".rjust(8) + "".join(n.rjust(10) for n, _ in nets))
spread = []
for j, (fname, y, x) in enumerate(pairs):
    b = psnr(y, x)
    gains = [psnr(outs[n][j], x) - b for n, _ in nets]
    spread.append(max(gains) - min(gains) if len(gains) > 1 else -gains[0])
    print(fname[:23].ljust(24) + f"{b:8.2f}" + "".join(f"{g:+10.2f}" for g in gains))
means = [np.mean([psnr(outs[n][j], pairs[j][2]) - psnr(pairs[j][1], pairs[j][2]) for j in range(len(pairs))]) for n, _ in nets]
print("mean".ljust(32) + "".join(f"{m:+10.2f}" for m in means))

pick = sorted(range(len(pairs)), key=lambda j: -spread[j])[:rows]
cols = ["sharp", "blurry"] + [n for n, _ in nets]
sheet = Image.new("RGB", (256 * len(cols), (256 + 16) * len(pick) + 16), "white")
draw = ImageDraw.Draw(sheet)
for c, label in enumerate(cols):
    draw.text((256 * c + 4, 2), label, fill="black")
for r, j in enumerate(pick):
    fname, y, x = pairs[j]
    tiles = [x, y] + [outs[n][j] for n, _ in nets]
    for c, t in enumerate(tiles):
        sheet.paste(Image.fromarray((t * 255).round().astype(np.uint8)), (256 * c, 16 + r * (256 + 16)))
        # the blurry column shows its PSNR, each checkpoint its gain over it
        gain = "" if c == 0 else f"{psnr(y, x):.2f} dB" if c == 1 else f"{psnr(t, x) - psnr(y, x):+.2f} dB"
        draw.text((256 * c + 4, 16 + r * (256 + 16) + 258), f"{fname[:18]} {gain}", fill="black")
out.parent.mkdir(parents=True, exist_ok=True)
sheet.save(out)
print(f"wrote {out}")
