"""How far a gated kernel-aware predictor trusts its deconvolution: the gate a (its fourth
output channel, at full size) on the centre 256 px of each photo given.

    python docs/experiments/probes/gate_map.py CHECKPOINT PHOTO [PHOTO ...]

Prints the gate's mean, median and share of pixels above 0.5 per photo (a = 0: the
deconvolution is ignored; 1: taken whole). Used on real shaken photos (validation only:
looked at, never trained or tuned on) in docs/training/README.md, 2026-12-04 (second).
"""
import sys
from pathlib import Path

import numpy as np
import torch

from deblurkit.io import read_image
from deblurkit.weights import load_checkpoint

SIDE = 256
model = load_checkpoint(sys.argv[1]).model.eval()
if not model.config.deconv_gate:
    sys.exit(f"{sys.argv[1]}: not a gated predictor (no --deconv-gate)")
seen = []
correct = model._correct


def spy(y, out, deconv):  # every scale's network output passes here; keep the gate channel
    seen.append(out[:, 3:4].detach().float())
    return correct(y, out, deconv)


model._correct = spy
for f in sys.argv[2:]:
    img = read_image(f).rgb[..., :3]
    h, w = img.shape[:2]
    t, l = max(0, (h - SIDE) // 2), max(0, (w - SIDE) // 2)
    crop = np.ascontiguousarray(img[t:t + SIDE, l:l + SIDE])
    seen.clear()
    with torch.no_grad():
        model.predict(torch.from_numpy(crop).permute(2, 0, 1)[None].float() * 2 - 1)
    a = max(seen, key=lambda g: g.numel())  # the full-size scale
    print(f"{Path(f).name:30s} gate mean {a.mean():+.3f} median {a.median():+.3f} share>0.5 {(a > 0.5).float().mean():.2f}")
