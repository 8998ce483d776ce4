"""Run by test_train.py under torchrun: a few DDP steps, then report this rank's weights."""

import hashlib
import json
import os
import sys
import warnings
from pathlib import Path

from deblurkit.train import DataSpec, TrainConfig, train

data, out = Path(sys.argv[1]), Path(sys.argv[2])
warnings.simplefilter("ignore")
cfg = TrainConfig(
    out=str(out / "run"), data=[DataSpec(str(data / "sharp"), "sharp")], size="tiny", steps=3, batch=2, crop=32,
    warmup=1, log_every=1, val_every=100, ckpt_every=100, device="cpu",
)
rank = int(os.environ["RANK"])
res = train(cfg)
h = hashlib.sha256()
for k, v in sorted(res.model.state_dict().items()):
    h.update(k.encode())
    h.update(v.detach().cpu().numpy().tobytes())
(out / f"rank{rank}.json").write_text(json.dumps({"sha": h.hexdigest(), "loss": res.last_loss, "world": int(os.environ["WORLD_SIZE"])}))
