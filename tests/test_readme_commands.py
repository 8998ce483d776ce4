"""Every command of the usage blocks, the README's and the full one in docs/cli.md (the design
card's included), runs with exit 0 on small images with the bundled default model, as a new
user would type it; so do the Python API examples (README, docs/python-api.md)."""

import re
import shlex
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from deblurkit.cli.app import app
from deblurkit.weights import load_registry

from conftest import make_clip, smooth_image

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
CLI_DOC = ROOT / "docs" / "cli.md"  # every option; the README keeps the everyday commands
API_DOC = ROOT / "docs" / "python-api.md"
DESIGN_CARD = ["deblur photo.jpg --steps 500", "deblur dir/ --samples 8 --average", "deblur photo.jpg --samples 4 --std",
               "deblur photo.jpg --save-trajectory traj/"]


def usage_commands(doc: Path | None = None) -> list[str]:
    """The commands of `doc`'s usage block; without `doc`, of both (README first, no repeats)."""
    if doc is None:
        return list(dict.fromkeys(usage_commands(README) + usage_commands(CLI_DOC)))
    text = doc.read_text(encoding="utf-8")
    block = text.split("## Usage", 1)[1].split("```bash", 1)[1].split("```", 1)[0]
    return [line.split("#", 1)[0].strip() for line in block.splitlines() if line.startswith("deblur ")]


def _photo(path: Path, h: int, w: int, seed: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.round(smooth_image(h, w, seed) * 255).astype(np.uint8)).save(path)


def test_the_usage_block_holds_the_design_cards_commands():
    assert set(DESIGN_CARD) <= set(usage_commands(CLI_DOC))


def test_the_readmes_everyday_commands_and_presets_are_in_the_full_reference():
    """The README's usage block and preset rows are copies of docs/cli.md's, word for word."""
    readme, cli = README.read_text(encoding="utf-8"), CLI_DOC.read_text(encoding="utf-8")
    cli_block = cli.split("## Usage", 1)[1].split("```bash", 1)[1].split("```", 1)[0].splitlines()
    readme_block = readme.split("## Usage", 1)[1].split("```bash", 1)[1].split("```", 1)[0].splitlines()
    assert usage_commands(README) and all(line in cli_block for line in readme_block if line.startswith("deblur "))
    rows = [line for line in readme.splitlines() if line.startswith("| `--preset ")]
    assert len(rows) == 4 and all(row in cli.splitlines() for row in rows)


@pytest.mark.parametrize("command", usage_commands())
def test_usage_command_runs_with_the_bundled_default(command, tmp_path, monkeypatch):
    registry = load_registry()
    if registry.default is None or not registry.get(registry.default).bundled_path.is_file():
        pytest.skip("no bundled default model in this checkout")
    monkeypatch.chdir(tmp_path)
    args = shlex.split(command)[1:]
    # Small stand-ins for the user's files; a --region needs a photo that contains it.
    region = next((args[i + 1] for i, a in enumerate(args[:-1]) if a == "--region"), None)
    if region:
        x, y, w, h = (int(v) for v in region.split(","))
        _photo(tmp_path / "photo.jpg", y + h + 8, x + w + 8, 0)
    else:
        _photo(tmp_path / "photo.jpg", 48, 64, 0)
    _photo(tmp_path / "a.jpg", 40, 56, 1)
    _photo(tmp_path / "b.png", 40, 56, 2)
    _photo(tmp_path / "dir" / "one.png", 40, 56, 3)
    _photo(tmp_path / "shots" / "sub" / "two.png", 40, 56, 4)
    if "clip.mp4" in args:
        make_clip(tmp_path / "clip.mp4", frames=3)
    if "psf.png" in args:  # a kernel image: any non-negative picture is one
        _photo(tmp_path / "psf.png", 9, 9, 6)
    r = CliRunner().invoke(app, args)
    assert r.exit_code == 0, f"{command}\n{r.output}"
    if "--std" in args:
        assert (tmp_path / "photo_deblurred_std.png").is_file()
    if "--save-kernel" in args:
        assert (tmp_path / "photo_deblurred_kernel.png").is_file()
    if "--save-trajectory" in args:
        assert any((tmp_path / "traj").iterdir())
    if re.search(r"\bdir/", command):
        assert (tmp_path / "dir" / "one_deblurred.png").is_file()


@pytest.mark.parametrize("doc", [README, API_DOC], ids=["README", "python-api"])
def test_the_python_api_example_runs(doc, tmp_path, monkeypatch):
    registry = load_registry()
    if registry.default is None or not registry.get(registry.default).bundled_path.is_file():
        pytest.skip("no bundled default model in this checkout")
    text = doc.read_text(encoding="utf-8")
    code = text.split("# Python API", 1)[1].split("```python", 1)[1].split("```", 1)[0]
    monkeypatch.chdir(tmp_path)
    _photo(tmp_path / "photo.jpg", 40, 56, 5)
    scope: dict = {}
    exec(compile(code, f"{doc.name} (Python API)", "exec"), scope)
    assert (tmp_path / "photo_sharp.png").is_file()
    r = scope["r"]
    assert r.image.shape == (40, 56, 3) and len(r.samples) == 4 and r.std.shape == (40, 56)


@pytest.mark.parametrize("doc", [README, API_DOC], ids=["README", "python-api"])
def test_the_readme_states_the_deblurrer_signature(doc):
    """The API line in the README (and docs/python-api.md) is the constructor's real signature, defaults included."""
    import inspect

    from deblurkit import Deblurrer

    parts = []
    for p in list(inspect.signature(Deblurrer.__init__).parameters.values())[1:]:
        if p.kind == p.KEYWORD_ONLY and "*" not in parts:
            parts.append("*")
        parts.append(f"{p.name}={p.default!r}".replace("'", '"'))
    line = next(x for x in doc.read_text(encoding="utf-8").splitlines() if x.startswith("- `Deblurrer("))
    assert line.split("`")[1] == f"Deblurrer({', '.join(parts)})"
