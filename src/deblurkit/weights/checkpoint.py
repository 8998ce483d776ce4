"""Self-describing checkpoints: safetensors whose metadata carries the model config.

Metadata keys (all strings, as safetensors requires):
  deblur.format        "1"
  deblur.config        the model config JSON (ModelConfig or HIDiffConfig, chosen by its "arch")
  deblur.schedule      the training NoiseSchedule JSON
  deblur.info          free-form JSON (training run, data, steps, ...)
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import save_file

from ..diffusion import NoiseSchedule, train_schedule
from ..errors import WeightsError
from ..io.write import default_file_mode, remove_stale_temporaries, temp_prefix
from ..models import DvSR, build_model, config_from_json

FORMAT_VERSION = "1"


@dataclass
class Checkpoint:
    model: DvSR
    schedule: NoiseSchedule
    info: dict = field(default_factory=dict)
    path: Path | None = None


def save_checkpoint(
    model: DvSR,
    path: str | Path,
    schedule: NoiseSchedule | None = None,
    info: dict | None = None,
    dtype: torch.dtype | None = None,
) -> None:
    """Write `model` atomically; `dtype` (e.g. fp16) shrinks floating-point tensors."""
    path = Path(path)
    tensors = {}
    for k, v in model.state_dict().items():
        v = v.detach().cpu().contiguous()
        if dtype is not None and v.is_floating_point():
            v = v.to(dtype)
        tensors[k] = v
    metadata = {
        "deblur.format": FORMAT_VERSION,
        "deblur.config": model.config.to_json(),
        "deblur.schedule": json.dumps((schedule or train_schedule()).to_dict()),
        "deblur.info": json.dumps(info or {}, sort_keys=True),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    fd, tmp = tempfile.mkstemp(prefix=temp_prefix(path), suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        save_file(tensors, tmp, metadata=metadata)
        os.chmod(tmp, default_file_mode())  # mkstemp made it 0600
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_metadata(path: str | Path) -> dict[str, str]:
    path = Path(path)
    try:
        with safe_open(str(path), framework="pt") as f:
            return dict(f.metadata() or {})
    except (SafetensorError, OSError, ValueError) as e:
        raise WeightsError(f"{path}: not a readable safetensors checkpoint ({e})") from None


# The largest model a checkpoint may describe (parameters); the bundled medium model has 15 M.
MAX_PARAMETERS = 400_000_000


def _check_header_before_building(path: Path, config) -> torch.nn.Module:
    """Build the described model on the meta device (no memory), bound its size, and
    compare its tensor names and shapes with the file's header before anything is
    allocated: a hostile config cannot make us build gigabytes first. Returns the
    skeleton, which the file's tensors then fill (no second build, no random init:
    start-up time)."""
    with torch.device("meta"):
        skeleton = build_model(config)
    expected = {k: tuple(v.shape) for k, v in skeleton.state_dict().items()}
    n = sum(math.prod(s) for s in expected.values())
    if n > MAX_PARAMETERS:
        raise WeightsError(f"{path}: its config describes {n / 1e6:.0f} M parameters (limit {MAX_PARAMETERS / 1e6:.0f} M)")
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            found = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise WeightsError(f"{path}: truncated or corrupt tensor data ({e})") from None
    if found != expected:
        missing = sorted(set(expected) - set(found))
        extra = sorted(set(found) - set(expected))
        shape = sorted(k for k in set(expected) & set(found) if expected[k] != found[k])
        what = (f"missing {missing[0]}" if missing else f"unexpected {extra[0]}" if extra
                else f"{shape[0]} is {list(found[shape[0]])}, expected {list(expected[shape[0]])}")
        raise WeightsError(f"{path}: weights do not match the architecture in its metadata ({what})")
    return skeleton


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu") -> Checkpoint:
    """Build the model the file describes and load its weights (strictly)."""
    path = Path(path)
    meta = read_metadata(path)
    if meta.get("deblur.format") != FORMAT_VERSION or "deblur.config" not in meta:
        raise WeightsError(f"{path}: safetensors file without deblur metadata (format {FORMAT_VERSION} expected)")
    try:
        config = config_from_json(meta["deblur.config"])
        schedule = NoiseSchedule.from_dict(json.loads(meta.get("deblur.schedule", "null") or "null") or train_schedule().to_dict())
        info = json.loads(meta.get("deblur.info", "{}"))
    except (ValueError, KeyError, TypeError) as e:
        raise WeightsError(f"{path}: invalid model config in metadata ({e})") from None
    model = _check_header_before_building(path, config)
    try:
        with safe_open(str(path), framework="pt", device="cpu") as f:
            state = {k: f.get_tensor(k) for k in f.keys()}
    except (SafetensorError, OSError, ValueError, RuntimeError) as e:
        raise WeightsError(f"{path}: truncated or corrupt tensor data ({e})") from None
    for name, t in state.items():
        # Integer or bool "weights" load silently and give black images; NaN/Inf too.
        if not t.is_floating_point():
            raise WeightsError(f"{path}: tensor {name} has dtype {str(t.dtype).removeprefix('torch.')}, not floating point")
    # One sum per tensor, checked together: any NaN or infinity makes its tensor's sum
    # non-finite (a third of the time of an element-wise check of every tensor at start-up);
    # only a non-finite sum is looked at element by element (a huge finite tensor can overflow its sum).
    sums = torch.stack([t.sum(dtype=torch.float64 if t.dtype == torch.float64 else torch.float32) for t in state.values()]) if state else None
    if sums is not None and not bool(torch.isfinite(sums).all()):
        for name, t in state.items():
            if not bool(torch.isfinite(t.float()).all()):
                raise WeightsError(f"{path}: tensor {name} holds NaN or infinite values")
    try:
        # assign: the meta skeleton's tensors become the file's (every tensor of these models
        # is in the state dict; a test checks no parameter or buffer is left on meta).
        # Convolution weights come out channels-last, as the restorer runs them on CPUs and
        # GPUs: the fp32 copy is made once, in that layout (no second copy at start-up).
        model.load_state_dict({k: v.to(torch.float32, memory_format=torch.channels_last) if v.ndim == 4 else v.float()
                               for k, v in state.items()}, strict=True, assign=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else "mismatch"
        raise WeightsError(f"{path}: weights do not match the architecture in its metadata ({first})") from None
    left = [n for n, t in [*model.named_parameters(), *model.named_buffers()] if t.is_meta]
    if left:
        raise WeightsError(f"{path}: weights do not match the architecture in its metadata (missing {left[0]})")
    return Checkpoint(model.to(device), schedule, info, path)
