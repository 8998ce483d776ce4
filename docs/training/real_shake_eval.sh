#!/usr/bin/env bash
# The three measures of issue 22 for one checkpoint, predictor only (preset fast):
#   real kernels  (100 val photos x the 12 Köhler kernels, 256 px, noise 0.01),
#   synthetic     (100 val photos, the legacy blur model, 192 px; comparable with v1-v6),
#   GoPro         (the 10 held-out frames, 384 px).
# Usage: docs/training/real_shake_eval.sh CHECKPOINT OUTDIR [PRESETS]
# Pause any training run first (kill -STOP): two 2-thread jobs slow each other ~20x.
set -euo pipefail
ckpt=$1; out=$2; presets=${3:-blurry,fast}
mkdir -p "$out"
d=../shared/data
deblur bench kernels --kernels $d/kernels/kohler12_estimated --sharp $d/val --crop 256 --noise 0.01 \
  --weights "$ckpt" --presets "$presets" -o "$out/kernels_kohler12_val100.json" --overwrite > "$out/kernels_kohler12_val100.txt"
deblur bench synthetic --sharp $d/val --crop 192 --weights "$ckpt" --presets "$presets" \
  -o "$out/synthetic_val_all100.json" --overwrite > "$out/synthetic_val_all100.txt"
deblur bench gopro --root ../data_split/gopro_heldout_seq --crop 384 --weights "$ckpt" --presets "$presets" \
  -o "$out/gopro_heldout.json" --overwrite > "$out/gopro_heldout.txt"
python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
for f in ("kernels_kohler12_val100", "synthetic_val_all100", "gopro_heldout"):
    r = json.load(open(f"{out}/{f}.json"))
    m = {x["name"]: x for x in r["methods"]}
    line = f"{f}: " + ", ".join(f"{k} {v['psnr']:.2f}" for k, v in m.items())
    if "blurry" in m and "fast" in m:
        line += f"  gain {m['fast']['psnr'] - m['blurry']['psnr']:+.2f}"
        if "by_group" in m["fast"]:
            g = {k.rsplit('/', 1)[-1]: m["fast"]["by_group"][k]["psnr"] - m["blurry"]["by_group"][k]["psnr"] for k in m["fast"]["by_group"]}
            line += "  per kernel " + " ".join(f"{v:+.2f}" for v in g.values())
    print(line)
PY
