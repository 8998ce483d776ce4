"""Model weights: the registry (weights.toml), resolving and verifying files, checkpoints.

Checkpoint reading and writing (torch, safetensors) is imported on first use (PEP 562),
so listing models and printing help stay light."""

from ..lazy import lazy_exports

from .registry import BUNDLED_DIR, HubLocation, Registry, WeightsEntry, load_registry, parse_registry
from .resolve import ResolvedWeights, parse_hf_uri, resolve_entry, resolve_weights, sha256_of, weights_status

_LAZY = {"Checkpoint": "checkpoint", "load_checkpoint": "checkpoint", "read_metadata": "checkpoint",
         "save_checkpoint": "checkpoint"}

__all__ = [
    "BUNDLED_DIR", "HubLocation", "Registry", "ResolvedWeights", "WeightsEntry", "load_registry", "parse_hf_uri",
    "parse_registry", "resolve_entry", "resolve_weights", "sha256_of", "weights_status", *_LAZY,
]


__getattr__ = lazy_exports(__name__, _LAZY, globals())
