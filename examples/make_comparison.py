"""Build the README's side-by-side crop from files the `deblur` command wrote.

    python examples/make_comparison.py OUT.png --crop X Y SIZE LABEL=FILE [LABEL=FILE ...]

Each file is cropped at the same place, enlarged (nearest neighbour, so pixels stay
visible) and labelled; the panels are placed in one row. The same code draws
`deblur --side-by-side` (deblurkit.io.compare).
"""

from __future__ import annotations

import argparse

from deblurkit.io import encode_image, read_image, write_atomic
from deblurkit.io.compare import compose


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("output")
    ap.add_argument("--crop", nargs=3, type=int, metavar=("X", "Y", "SIZE"), required=True)
    ap.add_argument("--zoom", type=float, default=2)
    ap.add_argument("panels", nargs="+", help="LABEL=FILE")
    args = ap.parse_args()
    x, y, size = args.crop
    panels = []
    for spec in args.panels:
        label, path = spec.rsplit("=", 1)  # labels may contain "=", paths rarely do
        panels.append((label, read_image(path).rgb))
    sheet = compose(panels, crop=(x, y, size, size), zoom=args.zoom)
    write_atomic(args.output, encode_image(sheet.astype("float32") / 255.0, "PNG"))


if __name__ == "__main__":
    main()
