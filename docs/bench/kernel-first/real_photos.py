"""The 26 real blurry photos of ../shared/data/real_blurry/literature/ through the product's
kernel path (`deblur PHOTO --preset fast --kernel auto --save-kernel`, through the same
`Deblurrer`), with the path each photo took, its kernel and the time.

    python docs/bench/kernel-first/real_photos.py OUT_DIR [--kernel auto|none]

Writes OUT_DIR/<stem>_side.png (input | blind `fast` | `fast --kernel auto` | the kernel,
enlarged), and prints a Markdown table for docs/bench/kernel-first/real_photos.md. The
photos are research material under their owners' copyright (../shared/data/README.md):
the pictures stay out of the repository; the table and this script go in.
"""
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

from deblurkit.api import Deblurrer
from deblurkit.io import read_image

PHOTOS = Path("../shared/data/real_blurry/literature")


def side_by_side(panels, kernel, height=360):
    scaled = []
    for p in panels:
        im = Image.fromarray(np.round(np.clip(p, 0, 1) * 255).astype(np.uint8))
        scaled.append(im.resize((max(1, round(im.width * height / im.height)), height), Image.LANCZOS))
    if kernel is not None:
        k = kernel / max(kernel.max(), 1e-12)
        kim = Image.fromarray(np.round(k * 255).astype(np.uint8)).convert("RGB")
        scaled.append(kim.resize((height, height), Image.NEAREST))
    out = Image.new("RGB", (sum(s.width for s in scaled) + 8 * (len(scaled) - 1), height), "white")
    x = 0
    for s in scaled:
        out.paste(s, (x, 0))
        x += s.width + 8
    return out


def main(out_dir: Path):
    out_dir.mkdir(parents=True, exist_ok=True)
    d = Deblurrer()
    print("| photo | size | path taken | why | kernel | guard residual | s (blind) | s (kernel path) |")
    print("|---|---|---|---|---|---|---|---|")
    for path in sorted(p for p in PHOTOS.iterdir() if p.suffix.lower() in (".png", ".jpg", ".jpeg")):
        rgb = read_image(path).rgb
        t0 = time.perf_counter()
        blind = d.restore(rgb, "fast", kernel="none")
        t1 = time.perf_counter()
        r = d.restore(rgb, "fast", kernel="auto", return_samples=True)
        t2 = time.perf_counter()
        rep = r.kernel
        kernel = rep.kernel if rep is not None else None
        side_by_side([rgb, blind, r.image], kernel).save(out_dir / f"{path.stem}_side.png")
        ksize = f"{kernel.shape[1]}x{kernel.shape[0]}" if kernel is not None else "-"
        resid = f"{rep.residual:.2f}" if rep is not None and rep.residual is not None else "-"
        why = ("read from light streaks" if rep.path == "kernel" and "light streaks" in rep.reason
               else "kernel explains it" if rep.path == "kernel" else "predictor recognises the blur" if "recognises" in rep.reason
               else "kernel near a dot" if "near a dot" in rep.reason
               else "no kernel explains it") if rep is not None else "-"
        print(f"| {path.name} | {rgb.shape[1]}x{rgb.shape[0]} | {rep.path if rep else 'blind'} | {why} | {ksize} | {resid} | "
              f"{t1 - t0:.1f} | {t2 - t1:.1f} |", flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
