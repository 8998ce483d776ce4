"""Finding a checkpoint file and proving it is the one the registry names.

Resolution order: explicit path -> file bundled in the installed package ->
Hugging Face cache -> `huggingface_hub` download (which honours HF_HOME, HF_ENDPOINT
and HF_HUB_OFFLINE). Every registry file is checked against its sha256; a cached or
downloaded file that fails the check is deleted so that no later run trusts it.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import WeightsError
from .registry import HubLocation, Registry, WeightsEntry, check_hub_location, load_registry


@dataclass
class ResolvedWeights:
    path: Path
    source: str  # "path", "bundled", "cache", "download"
    entry: WeightsEntry | None = None


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _discard(path: Path) -> None:
    """Remove a cached file and, for the HF cache's symlinked layout, its blob."""
    real = Path(os.path.realpath(path))
    for p in {real, path}:
        try:
            p.unlink()
        except OSError:
            pass


def parse_hf_uri(uri: str) -> HubLocation:
    """hf://OWNER/REPO/path/in/repo.safetensors[@revision]"""
    rest = uri[len("hf://") :]
    revision = "main"
    if "@" in rest:
        rest, revision = rest.rsplit("@", 1)
    parts = rest.split("/")
    if len(parts) < 3 or not all(parts):
        raise WeightsError(f"{uri}: expected hf://OWNER/REPO/FILE[@REVISION]")
    return check_hub_location(HubLocation("/".join(parts[:2]), "/".join(parts[2:]), revision), uri)


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _endpoint_reachable(timeout: float = 3.0) -> bool:
    """One TCP connection attempt to the Hub endpoint: without a network the download
    would otherwise retry with back-off for half a minute, printing warnings."""
    import socket
    from urllib.parse import urlsplit

    from huggingface_hub import constants

    url = urlsplit(constants.ENDPOINT)
    port = url.port or (443 if url.scheme == "https" else 80)
    try:
        socket.create_connection((url.hostname, port), timeout=timeout).close()
    except OSError:
        return False
    return True


def fetch_from_hub(hub: HubLocation, sha256: str | None, label: str) -> ResolvedWeights:
    """Cache hit or download; verified against `sha256` when one is known."""
    from huggingface_hub import hf_hub_download, try_to_load_from_cache
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    cached = try_to_load_from_cache(hub.repo_id, hub.filename, revision=hub.revision)
    if isinstance(cached, str) and os.path.isfile(cached):
        path = Path(cached)
        if sha256 is None or sha256_of(path) == sha256:
            return ResolvedWeights(path, "cache")
        _discard(path)  # corrupt or replaced upstream: fetch again below

    how = f"run `deblur weights download {label}` with network access" if label else "download it with network access"
    if _offline():
        raise WeightsError(
            f"{label or hub.filename}: not in the Hugging Face cache and HF_HUB_OFFLINE is set; "
            f"{how} (from {hub.repo_id}/{hub.filename}@{hub.revision})"
        )
    if not _endpoint_reachable():
        raise WeightsError(
            f"{label or hub.filename}: cannot reach the Hugging Face Hub and nothing is cached; "
            f"{how} (from {hub.repo_id}/{hub.filename}@{hub.revision})"
        )
    try:
        path = Path(hf_hub_download(hub.repo_id, hub.filename, revision=hub.revision))
    except LocalEntryNotFoundError:
        raise WeightsError(
            f"{label or hub.filename}: cannot reach the Hugging Face Hub and nothing is cached; "
            f"{how} (from {hub.repo_id}/{hub.filename}@{hub.revision})"
        ) from None
    except HfHubHTTPError as e:
        raise WeightsError(f"{hub.repo_id}/{hub.filename}: download failed ({str(e).splitlines()[0]})") from None
    except OSError as e:
        raise WeightsError(f"{hub.repo_id}/{hub.filename}: download failed ({e})") from None
    if sha256 is not None:
        got = sha256_of(path)
        if got != sha256:
            _discard(path)
            raise WeightsError(
                f"{hub.repo_id}/{hub.filename}: checksum mismatch (expected sha256 {sha256[:12]}…, got {got[:12]}…); "
                "the download was deleted"
            )
    return ResolvedWeights(path, "download")


def resolve_entry(entry: WeightsEntry) -> ResolvedWeights:
    if entry.file is not None:
        path = entry.bundled_path
        if not path.is_file():
            raise WeightsError(
                f"model {entry.name!r}: its bundled file {entry.file} is missing from this installation "
                "(reinstall deblur, or pass --weights PATH)"
            )
        got = sha256_of(path)
        if got != entry.sha256:
            raise WeightsError(
                f"{path}: checksum mismatch for model {entry.name!r} "
                f"(expected sha256 {entry.sha256[:12]}…, got {got[:12]}…)"
            )
        return ResolvedWeights(path, "bundled", entry)
    res = fetch_from_hub(entry.hub, entry.sha256, entry.name)
    res.entry = entry
    return res


def resolve_weights(model: str | None = None, weights: str | None = None, registry: Registry | None = None) -> ResolvedWeights:
    """Turn --model / --weights into a verified local file."""
    if weights:
        if weights.startswith("hf://"):
            return fetch_from_hub(parse_hf_uri(weights), None, "")
        path = Path(weights).expanduser()
        if not path.is_file():
            raise WeightsError(f"{path}: weights file not found")
        return ResolvedWeights(path, "path")
    registry = registry or load_registry()
    name = model or registry.default
    if name is None:
        raise WeightsError(
            "no default model is bundled with this version of deblur yet; "
            "pass --weights PATH (a checkpoint from `deblur train`) or --model NAME (see `deblur weights list`)"
        )
    return resolve_entry(registry.get(name))


def weights_status(entry: WeightsEntry) -> tuple[str, Path | None]:
    """(status, local path) without downloading: ok / checksum mismatch / missing / not downloaded."""
    if entry.file is not None:
        path = entry.bundled_path
        if not path.is_file():
            return "missing", path
        return ("ok" if sha256_of(path) == entry.sha256 else "checksum mismatch"), path
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(entry.hub.repo_id, entry.hub.filename, revision=entry.hub.revision)
    if isinstance(cached, str) and os.path.isfile(cached):
        path = Path(cached)
        return ("ok" if sha256_of(path) == entry.sha256 else "checksum mismatch"), path
    return "not downloaded", None
