"""The model registry: `weights.toml` (top level of the repository, copied into the wheel)."""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from ..errors import WeightsError

PACKAGE_DIR = Path(__file__).resolve().parent.parent
BUNDLED_DIR = PACKAGE_DIR / "bundled"  # weights shipped inside the package


@dataclass(frozen=True)
class HubLocation:
    repo_id: str
    filename: str
    revision: str = "main"


@dataclass(frozen=True)
class WeightsEntry:
    name: str
    description: str
    arch: str
    sha256: str
    license: str = ""
    training_data: str = ""
    file: str | None = None  # bundled: a file name inside deblur/bundled/
    hub: HubLocation | None = None
    metrics: dict = field(default_factory=dict)
    # The preset this model gives its best results with (DvSR tunes sampling per model);
    # used when the user names none.
    preset: str | None = None
    # Names (sequence/frame.png) of real pairs the model was trained on, so that a bench
    # on them can say its scores are not held-out.
    trained_on: tuple[str, ...] = ()

    @property
    def bundled_path(self) -> Path | None:
        return BUNDLED_DIR / self.file if self.file else None


@dataclass
class Registry:
    entries: dict[str, WeightsEntry]
    default: str | None
    source: Path | None = None

    def get(self, name: str) -> WeightsEntry:
        if name not in self.entries:
            known = ", ".join(sorted(self.entries)) or "none"
            raise WeightsError(f"unknown model {name!r} (known models: {known}; see `deblur weights list`)")
        return self.entries[name]


REGISTRY_ENV = "DEBLUR_WEIGHTS_TOML"  # point at another registry file (private models, tests)


def registry_path() -> Path | None:
    """$DEBLUR_WEIGHTS_TOML, else weights.toml inside the installed package, else at the
    top of a source checkout."""
    override = os.environ.get(REGISTRY_ENV)
    if override:
        return Path(override)
    packaged = resources.files("deblurkit") / "weights.toml"
    if packaged.is_file():
        return Path(str(packaged))
    checkout = PACKAGE_DIR.parent.parent / "weights.toml"
    return checkout if checkout.is_file() else None


_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
_SHA256 = re.compile(r"^[0-9a-fA-F]{64}$")


def check_hub_location(hub: HubLocation, where: str) -> HubLocation:
    """What the Hub client would reject (or what could escape its cache folder) is an
    error here, with one line, before any network call."""
    if not _REPO_ID.match(hub.repo_id) or ".." in hub.repo_id:
        raise WeightsError(f"{where}: Hub repo_id {hub.repo_id!r} is not OWNER/NAME (letters, digits, '.', '_', '-')")
    parts = hub.filename.split("/")
    if (not hub.filename or hub.filename.startswith("/") or "\\" in hub.filename
            or any(p in ("", ".", "..") for p in parts) or any(c.isspace() or ord(c) < 32 for c in hub.filename)):
        raise WeightsError(f"{where}: Hub filename {hub.filename!r} must be a relative path without '..', spaces or control characters")
    if not hub.revision or ".." in hub.revision or any(c.isspace() or ord(c) < 32 for c in hub.revision):
        raise WeightsError(f"{where}: Hub revision {hub.revision!r} is not a branch, tag or commit")
    return hub


def _string(d: dict, key: str, where: str, required: bool = False) -> str | None:
    value = d.get(key)
    if value is None:
        if required:
            raise WeightsError(f"{where}: missing field {key!r}")
        return None
    if not isinstance(value, str):
        raise WeightsError(f"{where}: field {key!r} must be a string, not {type(value).__name__}")
    return value


def _entry(name: str, d, where: str) -> WeightsEntry:
    where = f"{where}: model {name!r}"
    if not isinstance(d, dict):
        raise WeightsError(f"{where} must be a table ([models.{name}]), not {type(d).__name__}")
    sha = _string(d, "sha256", where, required=True)
    if not _SHA256.match(sha):
        raise WeightsError(f"{where}: sha256 must be 64 hexadecimal digits")
    file = _string(d, "file", where)
    if file is not None and (not file or Path(file).name != file or file in (".", "..") or "\\" in file):
        raise WeightsError(f"{where}: file {file!r} must be a plain file name inside the bundled folder")
    hub = None
    if "hub" in d:
        h = d["hub"]
        if not isinstance(h, dict):
            raise WeightsError(f"{where}: hub must be a table {{ repo_id, filename, revision }}")
        hub = check_hub_location(HubLocation(_string(h, "repo_id", where, True), _string(h, "filename", where, True),
                                             _string(h, "revision", where) or "main"), where)
    if (file is None) == (hub is None):
        raise WeightsError(f"{where} needs exactly one of `file` or `hub`")
    metrics = d.get("metrics", {})
    trained_on = d.get("trained_on", [])
    if not isinstance(metrics, dict):
        raise WeightsError(f"{where}: metrics must be a table")
    if not isinstance(trained_on, list) or not all(isinstance(t, str) for t in trained_on):
        raise WeightsError(f"{where}: trained_on must be a list of strings")
    return WeightsEntry(
        name=name, description=_string(d, "description", where) or "", arch=_string(d, "arch", where, required=True),
        sha256=sha.lower(), license=_string(d, "license", where) or "", training_data=_string(d, "training_data", where) or "",
        file=file, hub=hub, metrics=dict(metrics), preset=_string(d, "preset", where), trained_on=tuple(trained_on),
    )


def parse_registry(text: str, source: Path | None = None) -> Registry:
    where = str(source or "weights.toml")
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise WeightsError(f"{where}: invalid TOML ({e})") from None
    models = data.get("models") or {}
    if not isinstance(models, dict):
        raise WeightsError(f"{where}: `models` must be a table of [models.NAME] entries, not {type(models).__name__}")
    entries = {name: _entry(name, d, where) for name, d in models.items()}
    default = data.get("default")
    if default is not None and not isinstance(default, str):
        raise WeightsError(f"{where}: `default` must be a model name (a string)")
    if default is not None and default not in entries:
        raise WeightsError(f"{where}: default model {default!r} is not listed under [models]")
    return Registry(entries, default, source)


def load_registry(path: Path | None = None) -> Registry:
    path = path or registry_path()
    if path is None:
        return Registry({}, None, None)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise WeightsError(f"{path}: cannot read the model registry ({e.strerror or e})") from None
    return parse_registry(text, path)
