"""The model registry: `weights.toml` (top level of the repository, copied into the wheel)."""

from __future__ import annotations

import os
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
    packaged = resources.files("deblur") / "weights.toml"
    if packaged.is_file():
        return Path(str(packaged))
    checkout = PACKAGE_DIR.parent.parent / "weights.toml"
    return checkout if checkout.is_file() else None


def parse_registry(text: str, source: Path | None = None) -> Registry:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise WeightsError(f"{source or 'weights.toml'}: invalid TOML ({e})") from None
    entries = {}
    for name, d in (data.get("models") or {}).items():
        try:
            hub = HubLocation(**d["hub"]) if "hub" in d else None
            entries[name] = WeightsEntry(
                name=name,
                description=d.get("description", ""),
                arch=d["arch"],
                sha256=d["sha256"].lower(),
                license=d.get("license", ""),
                training_data=d.get("training_data", ""),
                file=d.get("file"),
                hub=hub,
                metrics=dict(d.get("metrics", {})),
                preset=d.get("preset"),
                trained_on=tuple(str(n) for n in d.get("trained_on", ())),
            )
        except (KeyError, TypeError) as e:
            raise WeightsError(f"{source or 'weights.toml'}: model {name!r} is missing or has a bad field ({e})") from None
        if (entries[name].file is None) == (hub is None):
            raise WeightsError(f"{source or 'weights.toml'}: model {name!r} needs exactly one of `file` or `hub`")
    default = data.get("default")
    if default is not None and default not in entries:
        raise WeightsError(f"{source or 'weights.toml'}: default model {default!r} is not listed under [models]")
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
