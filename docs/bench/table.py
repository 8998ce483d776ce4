"""Markdown tables for the model cards from `deblur bench -o` records (no hand-copied numbers).

    python docs/bench/table.py RECORD.json [RECORD.json ...] [--label NAME ...] [--methods a,b,c]

One row per method of each record (PSNR with its gain over that record's blurry input,
SSIM, GMSD, NIQE, seconds per image); with several records each row is prefixed with the
record's label (default: the file name), so two models' records make one comparison table.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def fmt(v, digits):
    return "" if v is None else f"{v:.{digits}f}"


def rows(record: dict, label: str | None, only: list[str] | None) -> list[str]:
    methods = record["methods"]
    blurry = next((m["psnr"] for m in methods if m["name"] == "blurry"), None)
    out = []
    for m in methods:
        if only and m["name"] not in only:
            continue
        gain = "" if blurry is None or m["name"] == "blurry" else f" ({m['psnr'] - blurry:+.2f})"
        secs = "" if m["name"] == "blurry" else fmt(m["seconds_per_image"], 3)
        cells = ([label] if label is not None else []) + [
            m["name"], f"{m['psnr']:.2f}{gain}", fmt(m["ssim"], 3), fmt(m.get("gmsd"), 3), fmt(m.get("niqe"), 2), secs]
        out.append("| " + " | ".join(cells) + " |")
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("records", nargs="+", type=Path)
    ap.add_argument("--label", action="append", help="one per record (default: the file stem)")
    ap.add_argument("--methods", help="comma list of method names to keep (default: all)")
    a = ap.parse_args()
    labels = a.label or [p.stem for p in a.records]
    if len(labels) != len(a.records):
        ap.error("give one --label per record")
    only = [s.strip() for s in a.methods.split(",")] if a.methods else None
    many = len(a.records) > 1
    head = (["model"] if many else []) + ["method", "PSNR (dB)", "SSIM", "GMSD", "NIQE", "s/image"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))
    for path, label in zip(a.records, labels, strict=True):
        rec = json.loads(path.read_text())
        print("\n".join(rows(rec, label if many else None, only)))


if __name__ == "__main__":
    main()
