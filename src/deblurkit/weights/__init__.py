"""Model weights: the registry (weights.toml), resolving and verifying files, checkpoints.

Checkpoint reading and writing (torch, safetensors) is imported on first use (PEP 562),
so listing models and printing help stay light."""

from importlib import import_module

from .registry import BUNDLED_DIR, HubLocation, Registry, WeightsEntry, load_registry, parse_registry
from .resolve import ResolvedWeights, parse_hf_uri, resolve_entry, resolve_weights, sha256_of, weights_status

_LAZY = {"Checkpoint": "checkpoint", "load_checkpoint": "checkpoint", "read_metadata": "checkpoint",
         "save_checkpoint": "checkpoint"}

__all__ = [
    "BUNDLED_DIR", "HubLocation", "Registry", "ResolvedWeights", "WeightsEntry", "load_registry", "parse_hf_uri",
    "parse_registry", "resolve_entry", "resolve_weights", "sha256_of", "weights_status", *_LAZY,
]


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
