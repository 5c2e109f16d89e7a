"""Unparsed structures of a collection (`RawRecord`) and the sources that list them cheaply.

Listing reads no structure: a directory of CIFs becomes one record per file, a CSV one record per
row (its CIF text, and the space-group label and structure type when the CSV has such columns).
Parsing happens later, in chunks (`xrdgen.collection.entries.read_chunk`), where a failure costs
one entry and not the run. The CIF tags read here (`cif_tag`) are the two labels a CIF may carry
beside its structure: the space-group number and the structure-type name.
"""

from __future__ import annotations

import csv
import re
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from xrdgen.errors import UserError

csv.field_size_limit(sys.maxsize)  # a CIF in one CSV cell is often larger than csv's 128 kB default

CIF_SUFFIXES = (".cif",)
CIF_LABEL_TAGS = ("_space_group_it_number", "_symmetry_int_tables_number", "_space_group.it_number")
CIF_TYPE_TAG = "_chemical_name_structure_type"


@dataclass
class RawRecord:
    """One unparsed structure: exactly one of `path`, `cif`, `structure_dict` is set."""

    source_id: str
    path: Optional[str] = None  # a CIF or POSCAR file, read by the worker
    cif: Optional[str] = None  # CIF text (CSV collections)
    structure_dict: Optional[dict] = None  # pymatgen Structure.as_dict()
    spacegroup_file: Optional[int] = None  # label given by the source (CSV column); else read from the CIF
    structure_type: Optional[str] = None  # given by the source (AFLOW label); else read from the CIF


def cif_directory_records(path: Path) -> list[RawRecord]:
    """One record per .cif file below `path` (recursively, as ICSD/COD exports nest them), sorted."""
    files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in CIF_SUFFIXES)
    if not files:
        raise UserError(f"{path}: no .cif files in this directory or below")
    return [RawRecord(source_id=str(p), path=str(p)) for p in files]


def csv_records(path: Path) -> list[RawRecord]:
    """Rows of a CSV with a `cif` column; `space_group_number` and an id column are used when present."""
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            fields = reader.fieldnames or []
            cif_column = next((f for f in fields if f.lower() == "cif"), None)
            if cif_column is None:
                raise UserError(f"{path}: no 'cif' column (columns: {', '.join(fields[:8]) or 'none'})")
            id_column = next((f for f in fields if f.lower() in ("material_id", "id", "icsd_id", "cod_id")), None)
            label_column = next((f for f in fields if f.lower() in ("space_group_number", "spacegroup", "spg")), None)
            type_column = next((f for f in fields if f.lower() in ("structure_type", "prototype")), None)
            records = []
            for row_number, row in enumerate(reader, start=2):
                row_id = (row.get(id_column) or "").strip() if id_column else ""
                label = parse_spacegroup((row.get(label_column) or "").strip()) if label_column else None
                stype = (row.get(type_column) or "").strip() or None if type_column else None
                records.append(
                    RawRecord(
                        source_id=f"{path}:{row_id or f'row{row_number}'}",
                        cif=row.get(cif_column) or "",
                        spacegroup_file=label,
                        structure_type=stype,
                    )
                )
    except UnicodeDecodeError:
        raise UserError(f"{path}: not a UTF-8 text CSV") from None
    except csv.Error as exc:
        raise UserError(f"{path}: not a valid CSV ({exc})") from None
    return records


def parse_spacegroup(text: str) -> Optional[int]:
    """A space-group number 1..230 from text ("225", "225.0"); None for anything else."""
    try:
        value = int(float(text))
    except (TypeError, ValueError):
        return None
    return value if 1 <= value <= 230 else None


def cif_tag(cif: str, tags: Iterable[str]) -> Optional[str]:
    """First value of one of `tags` in CIF text (single-line values, quotes stripped; "?" and "." are none)."""
    for tag in tags:
        match = re.search(rf"^\s*{re.escape(tag)}\s+(.+?)\s*$", cif, flags=re.IGNORECASE | re.MULTILINE)
        if match:
            value = match.group(1).strip().strip("'\"").strip()
            if value and value not in ("?", "."):
                return value
    return None


def cif_labels(cif: str) -> tuple[Optional[int], Optional[str]]:
    """(space-group number, structure type) as the CIF states them, each None when absent."""
    return parse_spacegroup(cif_tag(cif, CIF_LABEL_TAGS) or ""), cif_tag(cif, (CIF_TYPE_TAG,))
