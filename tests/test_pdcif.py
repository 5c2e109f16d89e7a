"""pdCIF powder data through a real CIF 1.1 parser (gemmi): the quirks of real Rietveld pdCIFs
(quotes inside words, escaped quotes, '#' inside a word, semicolon text fields, line-folded text,
values on the next line, loop rows spread over lines, standard uncertainties, several data blocks)
in small files written here; a real lab17 measurement written out as pdCIF and read back; malformed
files give one line naming the file and the problem.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from xrdgen.errors import UserError
from xrdgen.measured.cif import item_value, read_cif
from xrdgen.measured.readers import read_pattern

CU_KA1 = 1.540598


def one_line_error(path: Path, expected: str) -> None:
    with pytest.raises(UserError) as info:
        read_pattern(path)
    message = str(info.value)
    assert message.startswith(f"{path}: ") and "\n" not in message and expected in message, message


# ------------------------------------------------------- a multi-block Rietveld pdCIF with its quirks
TWO_THETA = np.round(np.arange(10.0, 30.0 + 1e-9, 0.05), 4)
COUNTS = np.round(200.0 + 5000.0 * np.exp(-0.5 * ((TWO_THETA - 20.0) / 0.08) ** 2), 1)

PUBLICATION = r"""#\#CIF_1.1
# a comment with a 'lone quote
data_global
_journal_name_full                'Journal of Applied Crystallography'
_publ_contact_author_name         'Peschar, Ren\'e'
_computing_data_collection        '<i>X'pert Data Collector</i>'
_computing_structure_refinement   "Toby & Von Dreele's "GSAS-II""
_publ_contact_author_address      Ren\'e's_lab
_pd_spec_description              sample#2      # a '#' inside a word starts no comment
_diffrn_measurement_device_type   PW3050/60\
_publ_section_title
;\
A title folded by the line-folding convention of text fields: \
each of these lines ends in a backslash
;
loop_
_publ_author_name
_publ_author_address
'Peschar, Ren\'e'
;Laboratory for Crystallography
 University of Amsterdam; 'quoted' and loop_ and _pd_meas_counts_total in passing
;
"O'Brien, M. K."    'Dublin'

data_phase_1
_pd_block_id  2019-05-01T10:00|PHASE1|Peschar|X'Pert
_cell_length_a  5.4093(6)
_symmetry_space_group_name_H-M  'F m -3 m'
loop_
_atom_site_label
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
_atom_site_occupancy
Na1 0 0 0 1.0
Cl1 0.5 0.5 0.5 1.0
"""


def pattern_block(name: str, two_theta: np.ndarray, counts: np.ndarray, wavelength: str | None = "1.540598(3)") -> str:
    """A diffractogram block as GSAS-II writes it; one row is spread over two lines, the wavelength
    stands on the line after its tag, calculated values are '.' (unknown)."""
    lines = [f"data_{name}", f"_pd_block_id  2019-05-01T10:00|{name.upper()}|Peschar|X'Pert"]
    if wavelength is not None:
        lines += ["_diffrn_radiation_wavelength", f"   {wavelength}"]
    lines += ["loop_", "_pd_proc_2theta_corrected", "_pd_proc_intensity_total", "_pd_calc_intensity_total", "_pd_proc_ls_weight"]
    for i, (x, y) in enumerate(zip(two_theta, counts)):
        row = [f"{x:.4f}", f"{y:.1f}({int(np.sqrt(y))})", ".", f"{1 / y:.6f}"]
        lines.append(" ".join(row[:2]) + "\n   " + " ".join(row[2:]) if i == 3 else " ".join(row))
    return "\n".join(lines) + "\n"


def test_multi_block_rietveld_pdcif_with_cif11_quirks(tmp_path):
    path = tmp_path / "peschar.cif"
    second = pattern_block("pattern_2", TWO_THETA[:50] + 40.0, COUNTS[:50], wavelength="0.709300")
    path.write_text(PUBLICATION + "\n" + pattern_block("pattern_1", TWO_THETA, COUNTS) + "\n" + second)
    pattern = read_pattern(path)
    np.testing.assert_allclose(pattern.two_theta, TWO_THETA, atol=1e-9)
    np.testing.assert_allclose(pattern.intensity, COUNTS, atol=1e-9)  # standard uncertainties dropped
    assert pattern.wavelength == pytest.approx(CU_KA1)
    assert pattern.metadata == {"format": "pdcif", "intensity": "_pd_proc_intensity_total", "block": "pattern_1"}
    assert pattern.notes == ["read data block 'pattern_1', the first of 2 with powder data"]
    document, notes = read_cif(path, path.read_text())  # each quirk is one value, as CIF 1.1 reads it
    publication = document[0]
    assert [b.name for b in document] == ["global", "phase_1", "pattern_1", "pattern_2"] and notes == []
    assert item_value(publication, "_publ_contact_author_name") == "Peschar, Ren\\'e"
    assert item_value(publication, "_computing_data_collection") == "<i>X'pert Data Collector</i>"
    assert item_value(publication, "_computing_structure_refinement") == 'Toby & Von Dreele\'s "GSAS-II"'
    assert item_value(publication, "_publ_contact_author_address") == "Ren\\'e's_lab"
    assert item_value(publication, "_pd_spec_description") == "sample#2"
    assert item_value(publication, "_diffrn_measurement_device_type") == "PW3050/60\\"
    assert item_value(publication, "_publ_section_title").startswith("\\\nA title folded")
    assert list(publication.find_values("_publ_author_address"))[1] == "'Dublin'"


def test_wavelength_from_another_block_and_measured_counts_preferred(tmp_path):
    """The wavelength stated in the publication block only; a loop of both processed intensities and
    measured counts is read by its measured counts."""
    rows = [f"{x:.4f} {y:.1f}(12) {2 * y:.0f}" for x, y in zip(TWO_THETA, COUNTS)]
    block = ["data_pattern_1", "loop_", "_pd_meas_2theta_scan", "_pd_proc_intensity_total", "_pd_meas_counts_total", *rows]
    publication = PUBLICATION.replace("data_phase_1", "_diffrn_radiation_wavelength 0.7093\ndata_phase_1")
    path = tmp_path / "global_wavelength.cif"
    path.write_text(publication + "\n".join(block) + "\n")
    pattern = read_pattern(path)
    np.testing.assert_allclose(pattern.intensity, np.round(2 * COUNTS))
    assert pattern.metadata["intensity"] == "_pd_meas_counts_total"
    assert pattern.wavelength == pytest.approx(0.7093) and pattern.notes == ["wavelength 0.7093 Å from data block 'global'"]


def test_unknown_values_dropped_and_rule_breaks_noted(tmp_path):
    text = pattern_block("pattern_1", TWO_THETA, COUNTS)
    lines = text.splitlines()
    row = next(i for i, line in enumerate(lines) if line.startswith(f"{TWO_THETA[10]:.4f} "))
    lines[row] = f"{TWO_THETA[10]:.4f} ? . 0.1"
    lines.insert(2, "_pd_block_id  repeated")  # a duplicated tag breaks CIF 1.1 but not the data
    path = tmp_path / "unknown.cif"
    path.write_text("\n".join(lines) + "\n")
    pattern = read_pattern(path)
    np.testing.assert_allclose(pattern.two_theta, np.delete(TWO_THETA, 10))
    assert pattern.notes == [
        "not valid CIF 1.1, read anyway: line 3: duplicate tag _pd_block_id",
        "dropped 1 point(s) whose value is unknown ('?' or '.'), the first data point 11",
    ]


# ------------------------------------------------------------------ a real measurement as pdCIF


@pytest.fixture(scope="module")
def zns(lab17_dir) -> np.ndarray:
    """A real measurement (ZnS, lab17): columns 2θ, counts."""
    return np.loadtxt(lab17_dir / "ZnS" / "pattern.csv", delimiter=",", ndmin=2)


def write_pdcif(
    path: Path, data: np.ndarray, wavelength: float, ranged: bool = False, tag: str = "_pd_meas_counts_total"
) -> None:
    """A powder CIF as GSAS-II/FullProf export it: header items, wavelength loop, one data loop."""
    head = [
        "data_lab17_ZnS",
        "_pd_block_id  2024-01-01|ZnS|lab17",
        "_diffrn_radiation_type  'Cu K\\a~1~'",
        "loop_",
        "_diffrn_radiation_wavelength",
        "_diffrn_radiation_wavelength_wt",
        f"{wavelength:.6f}(3) 1.0",
        "1.544430 0.5",
        "_pd_proc_info_data_reduction",
        ";",
        "a text field that mentions loop_ and _pd_meas_counts_total in passing",
        ";",
    ]
    if ranged:
        step = (data[-1, 0] - data[0, 0]) / (len(data) - 1)
        head += [
            f"_pd_meas_2theta_range_min {data[0, 0]:.6f}",
            f"_pd_meas_2theta_range_max {data[-1, 0]:.6f}",
            f"_pd_meas_2theta_range_inc {step:.8f}",
            "loop_",
            tag,
        ]
        body = [f"{y:.3f}({int(np.sqrt(max(y, 1)))})" for y in data[:, 1]]
    else:
        head += ["loop_", "_pd_data_point_id", "_pd_meas_2theta_scan", tag, "_pd_calc_intensity_total"]
        body = [f"{i} {x:.6f} {y:.3f}({int(np.sqrt(max(y, 1)))}) ." for i, (x, y) in enumerate(data)]
    path.write_text("\n".join(head + body) + "\n")


@pytest.mark.parametrize("ranged", [False, True])
def test_pdcif_round_trip(zns, tmp_path, ranged):
    data = zns if not ranged else np.column_stack([np.linspace(zns[0, 0], zns[-1, 0], len(zns)), zns[:, 1]])
    for tag in ("_pd_meas_counts_total", "_pd_proc_intensity_total", "_pd_meas_intensity_total"):
        path = tmp_path / f"zns_{tag}.cif"
        write_pdcif(path, data, CU_KA1, ranged=ranged, tag=tag)
        pattern = read_pattern(path)
        np.testing.assert_allclose(pattern.two_theta, data[:, 0], atol=1e-5)
        np.testing.assert_allclose(pattern.intensity, data[:, 1], rtol=1e-5, atol=1e-9)
        assert pattern.wavelength == pytest.approx(CU_KA1)
        assert pattern.metadata == {"format": "pdcif", "intensity": tag, "block": "lab17_ZnS"} and pattern.notes == []
    renamed = tmp_path / "zns_pd.txt"  # found by content when the suffix says nothing
    renamed.write_text(path.read_text())
    assert read_pattern(renamed).metadata["format"] == "pdcif"


def test_pdcif_malformed(zns, tmp_path):
    good = tmp_path / "good.cif"
    write_pdcif(good, zns[:50], CU_KA1)
    text = good.read_text()
    loop_line = text.splitlines().index("_pd_data_point_id")  # gemmi names the line the loop starts on
    cases = {
        "letters.cif": (
            text.replace(f" {zns[3, 0]:.6f} ", " 2theta? ", 1),
            "non-numeric value '2theta?' in _pd_meas_2theta_scan",
        ),
        "ragged.cif": (text.rstrip("\n") + " 99\n", f"line {loop_line}: Wrong number of values in loop"),
        "no_loop.cif": (text.replace("_pd_meas_counts_total", "_pd_meas_foo"), "no powder intensity loop"),
        "no_angles.cif": (text.replace("_pd_meas_2theta_scan", "_pd_meas_foo"), "has no 2θ column"),
        "quotes.cif": (text.replace("'Cu K\\a~1~'", "'Cu K"), "line 3: unterminated 'string' (not valid CIF 1.1)"),
        "open_text_field.cif": (text.replace("in passing\n;\n", "in passing\n"), "unterminated text field"),
        "no_block.cif": (text.replace("data_lab17_ZnS\n", ""), "line 1: expected block header (data_)"),
        "bad_wavelength.cif": (text.replace(f"{CU_KA1:.6f}(3)", "15.0"), "wavelength 15 Å in the file is outside"),
    }
    for name, (content, expected) in cases.items():
        path = tmp_path / name
        path.write_text(content)
        one_line_error(path, expected)
    ranged = tmp_path / "ranged.cif"
    write_pdcif(ranged, zns[:50], CU_KA1, ranged=True)
    short = tmp_path / "short_range.cif"
    short.write_text("\n".join(ranged.read_text().splitlines()[:-5]) + "\n")
    one_line_error(short, "45 intensities but the 2θ range")
