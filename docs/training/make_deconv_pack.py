"""Precompute the kernel-aware stage's training crops (deblurkit.data.deconv_pack).

    python docs/training/make_deconv_pack.py OUT_DIR COUNT SHARD/SHARDS [--chunk 50]

The sources and mix of the coarse-to-fine stage (docs/training/dvsr-medium-v7-c2f/config.json):
../shared/data/train with the handheld blur model (weight 2) and the GoPro training frames
0-99 (weight 1), 256 px crops, seed 0. Crops i = SHARD, SHARD + SHARDS, ... are written in
chunks of --chunk; a chunk already on disk is skipped, so an interrupted run resumes.
"""
import sys
from pathlib import Path

from deblurkit.data.blur import blur_model
from deblurkit.data.datasets import PairedFolder, SharpFolder, Source
from deblurkit.data.deconv_pack import write_shard

args = [a for a in sys.argv[1:] if not a.startswith("--")]
chunk = int(sys.argv[sys.argv.index("--chunk") + 1]) if "--chunk" in sys.argv else 50
out, count = Path(args[0]), int(args[1])
shard, shards = (int(v) for v in args[2].split("/"))
sources = [Source(SharpFolder("../shared/data/train", 256, blur_model("handheld")), 2.0),
           Source(PairedFolder("../data_split/gopro_train", 256), 1.0)]
mine = list(range(shard, count, shards))
for start in range(0, len(mine), chunk):
    part = mine[start:start + chunk]
    path = out / f"deconv-{part[0]:06d}-s{shard}.npz"
    if path.exists():
        continue
    write_shard(path, sources, 0, part)
    print(f"{path}: {len(part)} crops", flush=True)
