"""Build the README's side-by-side crop from files the `deblur` command wrote.

    python examples/make_comparison.py OUT.png --crop X Y SIZE LABEL=FILE [LABEL=FILE ...]

Each file is cropped at the same place, enlarged 2x (nearest neighbour, so pixels stay
visible) and labelled; the panels are placed in one row.
"""

from __future__ import annotations

import argparse

import cv2
import numpy as np

from deblurkit.io import encode_image, read_image, write_atomic


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("output")
    ap.add_argument("--crop", nargs=3, type=int, metavar=("X", "Y", "SIZE"), required=True)
    ap.add_argument("--zoom", type=int, default=2)
    ap.add_argument("panels", nargs="+", help="LABEL=FILE")
    args = ap.parse_args()
    x, y, size = args.crop
    tiles = []
    for spec in args.panels:
        label, path = spec.rsplit("=", 1)  # labels may contain "=", paths rarely do
        rgb = read_image(path).rgb[y : y + size, x : x + size]
        big = cv2.resize(rgb, None, fx=args.zoom, fy=args.zoom, interpolation=cv2.INTER_NEAREST)
        panel = np.full((big.shape[0] + 24, big.shape[1] + 6, 3), 255, np.uint8)
        panel[24:, 3:-3] = np.round(big * 255).astype(np.uint8)
        cv2.putText(panel, label, (6, 17), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
        tiles.append(panel)
    sheet = np.concatenate(tiles, axis=1)
    write_atomic(args.output, encode_image(sheet.astype(np.float32) / 255.0, "PNG"))


if __name__ == "__main__":
    main()
