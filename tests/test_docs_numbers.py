"""The numbers the README and the model card (docs/model-card.md) quote from `deblur bench`
records match those records.

A model card is re-measured when the model or the sampler changes; these tests make a
table that was edited by hand, or left behind when a record was replaced, fail."""

import hashlib
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
CARD = (ROOT / "docs" / "model-card.md").read_text(encoding="utf-8")  # the tables moved here from the README
BENCH = ROOT / "docs" / "bench"  # the shipped models' records
RETIRED = ROOT / "docs" / "experiments" / "retired"  # the former defaults' records

# (line the table follows, record of the bundled model, record of the model it is compared with)
CARD_TABLES = [
    ("All 100 held-out photos of", BENCH / "dvsr-medium-v6/synthetic_val_all100_presets.json",
     RETIRED / "dvsr-medium-v5/synthetic_val_all100_presets.json"),
    ("The 10 held-out real GoPro frames (sequence", BENCH / "dvsr-medium-v6/gopro_heldout_presets.json",
     RETIRED / "dvsr-medium-v5/gopro_heldout_presets.json"),
]
COLUMNS = ("psnr", "ssim", "gmsd", "niqe", "seconds_per_image")


def _methods(record: Path) -> dict:
    return {m["name"]: m for m in json.loads(record.read_text())["methods"]}


def _table_after(marker: str) -> list[list[str]]:
    """The cells of the first markdown table of the model card after the paragraph that contains `marker`."""
    start = CARD.index(marker)
    rows, seen = [], False
    for line in CARD[start:].splitlines():
        if line.startswith("|"):
            seen = True
            cells = [c.strip() for c in line.strip("|").split("|")]
            if not set("".join(cells)) <= set("-: "):
                rows.append(cells)
        elif seen:
            break
    return rows[1:]  # without the header


def _method_of(label: str) -> tuple[str, bool]:
    """(method name in the record, from the comparison model's record)."""
    if label.startswith("blurry"):
        return "blurry", False
    if "for comparison" in label:
        return "fast", True
    name = re.search(r"`(\w+)`", label).group(1)
    return name, False


def _same(shown: str, value: float) -> bool:
    """`shown` is `value` rounded to the decimals it is shown with."""
    decimals = len(shown.split(".")[1]) if "." in shown else 0
    return shown == f"{value:.{decimals}f}"


@pytest.mark.parametrize("marker,record,comparison", CARD_TABLES)
def test_model_card_tables_match_their_records(marker, record, comparison):
    ours, theirs = _methods(record), _methods(comparison)
    rows = _table_after(marker)
    assert len(rows) >= 5
    for cells in rows:
        name, other = _method_of(cells[0])
        rec = (theirs if other else ours)[name]
        blurry = (theirs if other else ours)["blurry"]["psnr"]
        for column, cell in zip(COLUMNS, cells[1:]):
            if not cell:
                continue
            m = re.fullmatch(r"([\d.]+)(?: \(([+-][\d.]+)\))?", cell)
            assert m, f"{cells[0]}: cannot read {cell!r}"
            assert _same(m.group(1), rec[column]), f"{cells[0]} {column}: card {m.group(1)}, record {rec[column]}"
            if m.group(2):  # the gain over the blurry input, from the unrounded values
                assert m.group(2) == f"{rec[column] - blurry:+.2f}", f"{cells[0]}: card gain {m.group(2)}"


def test_the_card_is_about_the_file_that_ships():
    bundled = ROOT / "src" / "deblurkit" / "bundled" / "dvsr-medium-v6.safetensors"
    sha = hashlib.sha256(bundled.read_bytes()).hexdigest()
    for _, record, _ in CARD_TABLES:
        assert json.loads(record.read_text())["weights_sha256"] == sha, record


def test_the_summary_at_the_top_matches_the_records():
    synthetic = _methods(CARD_TABLES[0][1])
    gopro = _methods(CARD_TABLES[1][1])
    top = README[: README.index("## Set-up")]
    gain = lambda ms, name: ms[name]["psnr"] - ms["blurry"]["psnr"]  # noqa: E731
    assert f"+{gain(synthetic, 'fast'):.2f} dB PSNR on synthetic blur" in top
    assert f"+{gain(gopro, 'fast'):.2f} dB on 10 held-out real GoPro frames" in top
    extra = synthetic["distortion"]["psnr"] - synthetic["fast"]["psnr"]
    assert f"`--preset distortion` adds another +{extra:.2f} dB" in top
    lost = sorted(ms["fast"]["psnr"] - ms["balanced"]["psnr"] for ms in (synthetic, gopro))
    assert f"gives up {lost[0]:.2f}-{lost[1]:.2f} dB" in " ".join(top.split())
    niqe = [gopro[n]["niqe"] for n in ("balanced", "fast", "blurry")]
    assert "NIQE {:.1f} against {:.1f} for the predictor and {:.1f} for the blurry input".format(*niqe) in " ".join(top.split())


def test_std_map_figures_match_their_records():
    text = " ".join(CARD.split())
    m = re.search(r"Spearman correlation ([\d.]+) with the sharp image's gradient magnitude, and ([\d.]+)x higher", text)
    assert "record `docs/bench/dvsr-medium-v6/stdmap.json`" in text
    found = {BENCH / "dvsr-medium-v6": m.groups()}
    for version in ("v5", "v4"):
        m = re.search(rf"([\d.]+) and ([\d.]+)x for {version} \(`docs/experiments/retired/dvsr-medium-{version}/stdmap.json`", text)
        found[RETIRED / f"dvsr-medium-{version}"] = m.groups()
    for model, (rho, ratio) in found.items():
        rec = json.loads((model / "stdmap.json").read_text())
        assert _same(rho, rec["spearman_std_vs_gradient"]), (model, rho, rec["spearman_std_vs_gradient"])
        assert _same(ratio, rec["std_ratio_edges_vs_flat"]), (model, ratio, rec["std_ratio_edges_vs_flat"])
