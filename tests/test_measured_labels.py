"""RRUFF DIF files as a label source: every one of the 113 rruff_dev samples is read and labelled, the
labels agree with the curator's labels.json, and Hermann–Mauguin symbols in non-standard settings map
to the right International Tables number (checked against hand-picked cases and pymatgen's tables).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from conftest import shared_data
from pymatgen.symmetry.groups import SpaceGroup

from xrdgen.config import GridConfig
from xrdgen.errors import UserError
from xrdgen.measured.dif import dif_samples, is_dif_directory, read_dif, read_labelled, spacegroup_number
from xrdgen.measured.preprocess import preprocess


@pytest.fixture(scope="module")
def rruff_dev() -> Path:
    """113 measured RRUFF patterns with their DIF files and labels.json (../shared/data/rruff_dev)."""
    return shared_data("rruff_dev")


# The settings ITA lists for each group (ITA Vol. A, Table 4.3.2.1), and older symbols still in use.
KNOWN = {
    "P2_1/c": 14,
    "P2_1/n": 14,
    "P2_1/a": 14,
    "P 1 2_1/n 1": 14,
    "P2_1/b": 14,
    "P 21/n": 14,
    "C2/c": 15,
    "B2/b": 15,
    "A2/a": 15,
    "I2/a": 15,
    "I2/c": 15,
    "C 1 2/c 1": 15,
    "C2/m": 12,
    "A2/m": 12,
    "I2/m": 12,
    "B2/m": 12,
    "Pnma": 62,
    "Pbnm": 62,
    "Pcmn": 62,
    "Pnam": 62,
    "Pmcn": 62,
    "Pmnb": 62,
    "Cmce": 64,
    "Cmca": 64,
    "Bbcm": 64,
    "Abma": 64,
    "Aea2": 41,
    "Aba2": 41,
    "Aem2": 39,
    "Abm2": 39,
    "Cmme": 67,
    "Cmma": 67,
    "Ccce": 68,
    "Ccca": 68,
    "Pca2_1": 29,
    "Pbc2_1": 29,
    "Pmc2_1": 26,
    "Pmn2_1": 31,
    "Pnm2_1": 31,
    "I2mb": 46,
    "Ima2": 46,
    "Pbca": 61,
    "Pcab": 61,
    "Pbcm": 57,
    "Pccn": 56,
    "Pnnm": 58,
    "Imm2": 44,
    "Amm2": 38,
    "P-1": 2,
    "C-1": 2,
    "I-1": 2,
    "P1": 1,
    "C1": 1,
    "Fm3m": 225,
    "Fm-3m": 225,
    "Pa3": 205,
    "Ia3d": 230,
    "Fd-3m:2": 227,
    "P2_13": 198,
    "P-43n": 218,
    "R-3c": 167,
    "R-3c:H": 167,
    "R-3c:R": 167,
    "R32": 155,
    "R3m": 160,
    "P3": 143,
    "P-31m": 162,
    "P6_3mc": 186,
    "P6_3/mmc": 194,
    "P 63/m m c": 194,
    "P4_2/mnm": 136,
    "I4_1/amd": 141,
    "I-42d": 122,
}


@pytest.mark.parametrize("symbol", sorted(KNOWN))
def test_known_settings_map_to_their_number(symbol):
    assert spacegroup_number(symbol) == KNOWN[symbol]


def test_every_standard_symbol_of_pymatgen_maps_back():
    for number in range(1, 231):
        group = SpaceGroup.from_int_number(number)
        assert spacegroup_number(group.symbol) == number, group.symbol
        assert spacegroup_number(group.full_symbol) == number, group.full_symbol


@pytest.mark.parametrize("symbol", ["P2_1/q", "X2/m", "", "Pnma2"])
def test_unknown_symbols_are_refused(symbol):
    with pytest.raises(ValueError, match="unknown space-group symbol"):
        spacegroup_number(symbol)


def test_all_113_rruff_dev_samples_are_read_and_labelled(rruff_dev):
    samples, skipped = dif_samples(rruff_dev)
    assert skipped == [] and len(samples) == 113
    assert is_dif_directory(rruff_dev)
    curated = {Path(d["file"]).name: d for d in json.loads((rruff_dev / "labels.json").read_text())}
    grid = GridConfig()
    for sample in samples:
        entry = curated[sample.label.path.name]
        assert sample.spacegroup == entry["sg_number"], (sample.name, sample.label.symbol)
        assert sample.label.symbol == entry["sg_symbol"]
        pattern = read_labelled(sample)
        assert len(pattern) > 1000 and np.all(np.diff(pattern.two_theta) > 0)
        assert pattern.two_theta[0] > 0 and pattern.intensity[0] != 0  # the 2θ = 0 rows and padding are gone
        assert pattern.wavelength == sample.wavelength
        model_input = preprocess(pattern, grid, 1.5418)
        assert model_input.x.max() == pytest.approx(1.0) and model_input.notes[: len(pattern.notes)] == pattern.notes
    wavelengths = {s.name: s.wavelength for s in samples}
    assert sum(abs(w - 1.5418) < 2e-4 for w in wavelengths.values()) == 110  # Cu Kα, from the peak lists
    assert wavelengths["R070497"] == pytest.approx(0.7098, abs=2e-4)  # zinc: the DIF peak list is Mo Kα ...
    zinc = read_labelled(next(s for s in samples if s.name == "R070497"))
    strongest = zinc.two_theta[np.argmax(zinc.intensity)]
    assert strongest == pytest.approx(2 * np.degrees(np.arcsin(0.7098 / (2 * 2.0955))), abs=0.15)  # ... and so is the scan (101)


def test_dif_wavelength_line_and_peak_list(rruff_dev):
    stated = [read_dif(p) for p in sorted(rruff_dev.glob("*_CIF.txt")) if "X-RAY WAVELENGTH" in p.read_text(encoding="latin-1")]
    assert stated and all(
        d.wavelength == pytest.approx(1.540562) and d.wavelength_source == "X-RAY WAVELENGTH line" for d in stated
    )
    alternate = read_dif(rruff_dev / "R070317_CIF.txt")
    assert alternate.alternate_setting and alternate.symbol == "Pca2_1" and alternate.spacegroup == 29


def test_malformed_dif_and_unpaired_files(rruff_dev, tmp_path):
    text = (rruff_dev / "R040009_CIF.txt").read_text(encoding="latin-1")
    cases = {
        "R100001_CIF.txt": (text.replace("SPACE GROUP: C2/c", "SPACEGROUP C2/c"), "no 'SPACE GROUP:' line"),
        "R100002_CIF.txt": (text.replace("SPACE GROUP: C2/c", "SPACE GROUP: C2/q"), "unknown space-group symbol 'C2/q'"),
        "R100003_CIF.txt": (
            text.replace("CELL PARAMETERS:", "X-RAY WAVELENGTH:   15.4\n      CELL PARAMETERS:"),
            "wavelength 15.4 Å on the X-RAY WAVELENGTH line",
        ),
    }
    for name, (content, expected) in cases.items():
        (tmp_path / name).write_text(content, encoding="latin-1")
        shutil.copy(rruff_dev / "R040009.csv", tmp_path / name.replace("_CIF.txt", ".csv"))
        with pytest.raises(UserError) as info:
            read_dif(tmp_path / name)
        assert str(info.value).startswith(f"{tmp_path / name}: ") and expected in str(info.value), str(info.value)
    shutil.copy(rruff_dev / "R040009.csv", tmp_path / "R200000.csv")  # a pattern without its DIF file
    shutil.copy(rruff_dev / "R040009_CIF.txt", tmp_path / "R300000_CIF.txt")  # a DIF file without its pattern
    shutil.copy(rruff_dev / "R040093.csv", tmp_path / "R040093.csv")
    shutil.copy(rruff_dev / "R040093_CIF.txt", tmp_path / "R040093_CIF.txt")
    samples, skipped = dif_samples(tmp_path)
    assert [s.name for s in samples] == ["R040093"] and samples[0].spacegroup == 61
    reasons = {s["name"]: s["reason"] for s in skipped}
    assert set(reasons) == {"R100001", "R100002", "R100003", "R200000", "R300000"}
    assert "no DIF file with the same RRUFF id (R200000)" in reasons["R200000"]
    assert "a DIF file without a pattern file" in reasons["R300000"]
    assert all("\n" not in r for r in reasons.values())
    empty = tmp_path / "no_difs"
    empty.mkdir()
    shutil.copy(rruff_dev / "R040009.csv", empty / "R040009.csv")
    assert not is_dif_directory(empty)
    with pytest.raises(UserError, match="no RRUFF DIF files"):
        dif_samples(empty)
