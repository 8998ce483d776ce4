from .checkpoint import Checkpoint, load_checkpoint, read_metadata, save_checkpoint
from .registry import BUNDLED_DIR, HubLocation, Registry, WeightsEntry, load_registry, parse_registry
from .resolve import ResolvedWeights, parse_hf_uri, resolve_entry, resolve_weights, sha256_of, weights_status

__all__ = [
    "BUNDLED_DIR",
    "Checkpoint",
    "HubLocation",
    "Registry",
    "ResolvedWeights",
    "WeightsEntry",
    "load_checkpoint",
    "load_registry",
    "parse_hf_uri",
    "parse_registry",
    "read_metadata",
    "resolve_entry",
    "resolve_weights",
    "save_checkpoint",
    "sha256_of",
    "weights_status",
]
