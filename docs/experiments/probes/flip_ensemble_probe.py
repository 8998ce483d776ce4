"""Probe behind `--flips`: the predictor averaged over mirror images of its input.

    python docs/experiments/probes/flip_ensemble_probe.py WEIGHTS

On the 10 held-out GoPro frames (384 px centre crops, ../data_split/gopro_heldout) and the
first 24 validation photos (192 px crops, the synthetic blur of `deblur bench synthetic`),
mean PSNR of the blurry input, the predictor alone, its mean over the 4 flips (none,
left-right, up-down, both) and over all 8 dihedral transforms (the flips and the
transposes). Measured on the fourth stage's checkpoint at step 3,000 (2026-12-01):
GoPro 25.789 / flips 25.854 / dihedral 25.825 dB, validation 23.386 / 23.452 / 23.444 dB,
so the 4 flips were chosen (the transposes help less: motion blur is not symmetric under
them the way it is under flips, which training sees as augmentation too).
"""
import sys
from pathlib import Path
import numpy as np, torch
from deblurkit import Deblurrer
from deblurkit.io import read_image, IMAGE_EXTENSIONS
from deblurkit.data import apply_blur
from deblurkit.metrics import psnr
from deblurkit.bench.runner import _centre

weights = sys.argv[1]
d = Deblurrer(weights=weights, precision="fp32")
T = [lambda a: a, lambda a: a[:, ::-1], lambda a: a[::-1], lambda a: a[::-1, ::-1],
     lambda a: np.swapaxes(a, 0, 1), lambda a: np.rot90(a, 1), lambda a: np.rot90(a, -1), lambda a: np.swapaxes(a[::-1, ::-1], 0, 1)]
Tinv = [lambda a: a, lambda a: a[:, ::-1], lambda a: a[::-1], lambda a: a[::-1, ::-1],
        lambda a: np.swapaxes(a, 0, 1), lambda a: np.rot90(a, -1), lambda a: np.rot90(a, 1), lambda a: np.swapaxes(a, 0, 1)[::-1, ::-1]]
def p(x, s):
    return psnr(torch.from_numpy(np.ascontiguousarray(x)).permute(2,0,1)[None].clamp(0,1), torch.from_numpy(s).permute(2,0,1)[None])
def run(pairs, label):
    res = {k: [] for k in ("blurry", "plain", "flip4", "dihedral8")}
    for b, s in pairs:
        outs = [Tinv[i](d.restore(np.ascontiguousarray(T[i](b)), preset="fast")) for i in range(8)]
        for i in range(8):
            assert outs[i].shape == b.shape
        res["blurry"].append(p(b, s)); res["plain"].append(p(outs[0], s))
        res["flip4"].append(p(np.mean(outs[:4], 0), s)); res["dihedral8"].append(p(np.mean(outs, 0), s))
    print(label, {k: round(float(np.mean(v)), 3) for k, v in res.items()}, flush=True)
g = Path(__file__).resolve().parents[3] / ".." / "data_split" / "gopro_heldout"
gp = []
for f in sorted((g / "blur").glob("*.png")):
    gp.append((_centre(read_image(f).rgb, 384), _centre(read_image(g / "sharp" / f.name).rgb, 384)))
run(gp, "gopro10")
val = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "val"
every = sorted(q for q in val.rglob("*") if q.suffix.lower() in IMAGE_EXTENSIONS and q.is_file())
vp = []
for i, f in list(enumerate(every))[:24]:
    img = _centre(read_image(f).rgb, 192)
    vp.append((apply_blur(img, np.random.default_rng([1234, i])).blurry, img))
run(vp, "val24")
