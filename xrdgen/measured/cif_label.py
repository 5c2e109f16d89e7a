"""Labels for measured patterns from the structure CIF beside them (a folder per sample, like lab17):
the space group the CIF states, as a materials scientist reads the file.

The statement is read in the order one trusts it: `_space_group_IT_number` /
`_symmetry_Int_Tables_number`, the Hermann–Mauguin symbol in any setting
(`_space_group_name_H-M_alt` / `_symmetry_space_group_name_H-M`, through `dif.spacegroup_number`),
the Hall symbol, the listed symmetry operations (the last two looked up in gemmi's table of
settings). spglib decides (through pymatgen, at the collection's symprec) only where the file
states none that can be read, or states P1: exports such as the Materials Project's write every
structure in P1, so P1 says how the cell was written out, not what the crystal is (the collection
reader's rule, `xrdgen.collection.records.cif_labels`). Each label says where it came from.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import gemmi
from gemmi import cif

from xrdgen.errors import UserError
from xrdgen.measured.cif import item_value, read_cif
from xrdgen.measured.dif import spacegroup_number

_NUMBER_TAGS = ("_space_group_IT_number", "_symmetry_Int_Tables_number")
_SYMBOL_TAGS = ("_space_group_name_H-M_alt", "_symmetry_space_group_name_H-M")
_HALL_TAGS = ("_space_group_name_Hall", "_symmetry_space_group_name_Hall")
_OPERATION_TAGS = ("_space_group_symop_operation_xyz", "_symmetry_equiv_pos_as_xyz")


@dataclass(frozen=True)
class StructureLabel:
    """The space group of a structure CIF and where it comes from."""

    spacegroup: int  # International Tables number
    source: str  # e.g. "_space_group_IT_number of structure.cif", or the spglib fallback and why


def stated_spacegroup(path: Path | str, block: cif.Block) -> tuple[Optional[tuple[int, str]], list[str]]:
    """What the block states: (number, which item) or None, and the statements that could not be read.

    Items in the order a reader trusts them: the International Tables number, the Hermann–Mauguin
    symbol (any setting, `dif.spacegroup_number`), the Hall symbol, the listed symmetry operations
    (the last two looked up by gemmi). Two readable statements that disagree are a one-line
    `UserError`: the file contradicts itself.
    """
    stated: list[tuple[int, str]] = []
    unreadable: list[str] = []
    for tag in _NUMBER_TAGS:
        text = item_value(block, tag)
        if text is not None:
            if not re.fullmatch(r"\d+", text) or not 1 <= int(text) <= 230:
                raise UserError(f"{path}: {tag} {text!r} is not a space-group number (1–230)")
            stated.append((int(text), tag))
    for tag in _SYMBOL_TAGS:
        text = item_value(block, tag)
        if text is not None:
            try:
                stated.append((spacegroup_number(text), f"{tag} '{text}'"))
            except ValueError:
                unreadable.append(f"{tag} '{text}' is no known setting")
    for tag in _HALL_TAGS:
        text = item_value(block, tag)
        if text is not None:
            found = _group_number(gemmi.symops_from_hall, text)
            if found is None:
                unreadable.append(f"{tag} '{text}' is no known setting")
            else:
                stated.append((found, f"{tag} '{text}'"))
    for tag in _OPERATION_TAGS:
        column = block.find_values(tag)
        operations = [column.str(i) for i in range(len(column))]
        if operations and not stated:
            found = _group_number(lambda ops: gemmi.GroupOps([gemmi.Op(o) for o in ops]), operations)
            if found is None:
                unreadable.append(f"the {len(operations)} operations of {tag} are no known setting")
            else:
                stated.append((found, f"{tag} ({len(operations)} operations)"))
    if not stated:
        return None, unreadable
    number, tag = stated[0]
    for other, other_tag in stated[1:]:
        if other != number:
            raise UserError(f"{path}: the CIF states space group {number} ({tag}) but {other} ({other_tag})")
    return (number, tag), unreadable


def _group_number(operations_of, argument) -> Optional[int]:
    """The space-group number of a set of operations (gemmi's table of settings); None if none fits."""
    try:
        group = gemmi.find_spacegroup_by_ops(operations_of(argument))
    except (RuntimeError, ValueError):  # gemmi's words for a malformed symbol or operation
        return None
    return None if group is None else int(group.number)


def structure_label(path: Path | str, symprec: float) -> StructureLabel:
    """The label of a structure CIF (module docstring): the space group stated in its first data
    block with atoms, else spglib's at `symprec`; `source` says which, and why spglib decided."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as exc:
        raise UserError(f"{path}: cannot read the file ({exc.strerror})") from None
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        text = raw.decode("latin-1")
    document, _ = read_cif(path, text)
    blocks = [b for b in document if len(b.find_values("_atom_site_fract_x"))] or list(document)
    if not blocks:
        raise UserError(f"{path}: no data block in this CIF")
    stated, unreadable = stated_spacegroup(path, blocks[0])
    if stated is not None and stated[0] != 1:
        return StructureLabel(stated[0], f"{stated[1]} of {path.name}")
    why = "states P1, which says how the cell was written out" if stated is not None else "states no space group"
    found = _spglib_spacegroup(path, symprec)
    return StructureLabel(found, f"spglib on {path.name} (symprec {symprec}; the CIF {'; '.join([why, *unreadable])})")


def _spglib_spacegroup(path: Path, symprec: float) -> int:
    # pymatgen is imported here: it takes seconds, and reading patterns never needs it
    from pymatgen.core import Structure
    from pymatgen.symmetry.analyzer import SpacegroupAnalyzer, SymmetryUndeterminedError

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            structure = Structure.from_file(path)
        except Exception as exc:  # noqa: BLE001 - pymatgen raises many types for bad CIFs
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise UserError(f"{path}: cannot read the structure ({first})") from None
    try:
        return int(SpacegroupAnalyzer(structure, symprec=symprec).get_space_group_number())
    except SymmetryUndeterminedError:
        raise UserError(f"{path}: spglib finds no space group in the structure (symprec {symprec})") from None
