"""Labels of measured samples from the structure CIF beside them: the space group the CIF states
(number, Hermann–Mauguin symbol in any setting, Hall symbol, symmetry operations), spglib's only
where it states none or states P1 (how exports write every cell). On lab17 the labels are checked
against the number read from the file's text by a regular expression (pymatgen's table for the
one file that states only a symbol) and against spglib on the structure; small CIFs written here
cover every way a file states its group, the fallback and the contradictions.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import pytest
import spglib
from pymatgen.core import Structure
from pymatgen.symmetry.groups import SpaceGroup

from xrdgen.config import load_config
from xrdgen.errors import UserError
from xrdgen.measured.cif_label import structure_label
from xrdgen.training.datasets import load_measured_set
from xrdgen.training.rundir import InputSpec

STATED_NUMBER = re.compile(r"^_(?:space_group_IT_number|symmetry_Int_Tables_number)\s+(\d+)", re.MULTILINE)
STATED_SYMBOL = re.compile(r"^_symmetry_space_group_name_H-M\s+'?([^'\n]+?)'?\s*$", re.MULTILINE)


def spglib_number(path: Path) -> int:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        structure = Structure.from_file(path)
    species = [site.species.formula for site in structure]  # a disordered site keeps its mixture as one type
    cell = (structure.lattice.matrix, structure.frac_coords, [sorted(set(species)).index(s) for s in species])
    return spglib.get_symmetry_dataset(cell, symprec=0.1).number


def test_lab17_labels_are_the_space_groups_the_cifs_state(lab17_dir):
    folders = sorted(p for p in lab17_dir.iterdir() if p.is_dir())
    measured = load_measured_set(lab17_dir, InputSpec.from_config(load_config()), symprec=0.1)
    assert measured.names == [f.name for f in folders] and measured.skipped == []
    for folder, label, detail in zip(folders, measured.spacegroups, measured.details):
        cif = folder / "structure.cif"
        text = cif.read_text(errors="replace")
        numbers = STATED_NUMBER.findall(text)
        expected = int(numbers[0]) if numbers else SpaceGroup(STATED_SYMBOL.search(text).group(1)).int_number
        assert label == expected == structure_label(cif, 0.1).spacegroup, folder.name
        assert detail["label_source"].endswith("of structure.cif") and "spglib" not in detail["label_source"], detail
        assert ("_space_group_IT_number" in detail["label_source"]) == bool(numbers), detail
        assert label == spglib_number(cif), folder.name  # lab17's structures have the symmetry their files state


NACL_ATOMS = """loop_
_atom_site_label
_atom_site_type_symbol
_atom_site_fract_x
_atom_site_fract_y
_atom_site_fract_z
_atom_site_occupancy
Na1 Na 0 0 0 1
Na2 Na 0 0.5 0.5 1
Na3 Na 0.5 0 0.5 1
Na4 Na 0.5 0.5 0 1
Cl1 Cl 0.5 0.5 0.5 1
Cl2 Cl 0.5 0 0 1
Cl3 Cl 0 0.5 0 1
Cl4 Cl 0 0 0.5 1
"""


def write_cif(path: Path, symmetry: str, cell: str = "5.64 5.64 5.64 90 90 90", atoms: str = NACL_ATOMS) -> Path:
    """NaCl's conventional cell with every atom written out; `symmetry` is the file's statement."""
    a, b, c, alpha, beta, gamma = cell.split()
    path.write_text(
        f"data_test\n_cell_length_a {a}\n_cell_length_b {b}\n_cell_length_c {c}\n_cell_angle_alpha {alpha}\n"
        f"_cell_angle_beta {beta}\n_cell_angle_gamma {gamma}\n{symmetry}\n{atoms}"
    )
    return path


PNMA_OPERATIONS = (  # ITA, space group 62, written out by hand
    "x,y,z",
    "-x+1/2,-y,z+1/2",
    "-x,y+1/2,-z",
    "x+1/2,-y+1/2,-z+1/2",
    "-x,-y,-z",
    "x+1/2,y,-z+1/2",
    "x,-y+1/2,z",
    "-x+1/2,y+1/2,z+1/2",
)


@pytest.mark.parametrize(
    "symmetry, number, said_by",
    [
        ("_space_group_IT_number 62\n_space_group_name_H-M_alt 'P b n m'", 62, "_space_group_IT_number"),
        ("_symmetry_space_group_name_H-M 'P 1 21/n 1'", 14, "_symmetry_space_group_name_H-M 'P 1 21/n 1'"),
        ("_symmetry_space_group_name_H-M 'R -3 c :H'", 167, "_symmetry_space_group_name_H-M 'R -3 c :H'"),
        ("_space_group_name_Hall '-P 2ac 2n'", 62, "_space_group_name_Hall '-P 2ac 2n'"),
        ("loop_\n_symmetry_equiv_pos_as_xyz\n" + "\n".join(f"'{o}'" for o in PNMA_OPERATIONS), 62, "(8 operations)"),
    ],
)
def test_every_way_a_cif_states_its_group(tmp_path, symmetry, number, said_by):
    label = structure_label(write_cif(tmp_path / "stated.cif", symmetry), 0.1)
    assert label.spacegroup == number and said_by in label.source and label.source.endswith("of stated.cif"), label


def test_spglib_only_where_the_cif_states_none_or_states_p1_for_more(tmp_path):
    none = structure_label(write_cif(tmp_path / "none.cif", ""), 0.1)
    assert none.spacegroup == 225 and none.source == "spglib on none.cif (symprec 0.1; the CIF states no space group)"
    unknown = structure_label(write_cif(tmp_path / "unknown.cif", "_symmetry_space_group_name_H-M 'Q 9'"), 0.1)
    assert (
        unknown.spacegroup == 225 and "states no space group; _symmetry_space_group_name_H-M 'Q 9' is no known" in unknown.source
    )
    p1 = structure_label(
        write_cif(tmp_path / "p1.cif", "_symmetry_space_group_name_H-M 'P 1'\n_symmetry_Int_Tables_number 1"), 0.1
    )
    assert p1.spacegroup == 225 and "states P1, which says how the cell was written out" in p1.source
    triclinic_atoms = NACL_ATOMS.split("Na1")[0] + "Na1 Na 0 0 0 1\nCl1 Cl 0.31 0.22 0.13 1\n"
    truly_p1 = write_cif(tmp_path / "triclinic.cif", "_symmetry_Int_Tables_number 1", "4.0 5.0 6.0 80 85 95", triclinic_atoms)
    assert structure_label(truly_p1, 0.1).spacegroup == 1 == spglib_number(truly_p1)
    assert structure_label(truly_p1, 0.1).source.startswith("spglib on triclinic.cif (symprec 0.1; the CIF states P1")


def test_contradictions_and_bad_files_are_one_line(tmp_path):
    cases = {
        "contradicts.cif": (
            write_cif(tmp_path / "contradicts.cif", "_space_group_IT_number 225\n_symmetry_space_group_name_H-M 'P n m a'"),
            "states space group 225 (_space_group_IT_number) but 62",
        ),
        "number.cif": (
            write_cif(tmp_path / "number.cif", "_space_group_IT_number 231"),
            "_space_group_IT_number '231' is not a space-group number",
        ),
        "syntax.cif": (
            write_cif(tmp_path / "syntax.cif", "_symmetry_space_group_name_H-M 'P n m a"),
            "line 8: unterminated 'string'",
        ),
        "missing.cif": (tmp_path / "missing.cif", "cannot read the file"),
    }
    for name, (path, expected) in cases.items():
        with pytest.raises(UserError) as info:
            structure_label(path, 0.1)
        message = str(info.value)
        assert message.startswith(f"{path}: ") and "\n" not in message and expected in message, (name, message)
