"""Unparsed structures of a collection (`RawRecord`) and the sources that list them cheaply.

Listing reads no structure: a directory of CIFs becomes one record per file, a CSV one record per
row (its CIF text, and the space-group label and structure type when the CSV has such columns).
Files may be gzip-compressed (`.csv.gz`, `.cif.gz`): large exports are shipped that way. Parsing
happens later, in chunks (`xrdgen.collection.entries.read_chunk`), where a failure costs one entry
and not the run. The CIF tags read here (`cif_tag`) are the two labels a CIF may carry beside its
structure: the space-group number and the structure-type name.

Every record carries an id (`record_id`: the CSV's id column, or a CIF's file name without its
suffixes) so that a collection assembled from overlapping files can be deduplicated
(`deduplicate`, when `CollectionConfig.id_column` is set): the Materials Project CSVs of
../shared/data/mp26k hold 1,369 ids twice.
"""

from __future__ import annotations

import csv
import gzip
import re
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from xrdgen.errors import UserError

csv.field_size_limit(sys.maxsize)  # a CIF in one CSV cell is often larger than csv's 128 kB default

CIF_SUFFIXES = (".cif", ".cif.gz")
CSV_SUFFIXES = (".csv", ".csv.gz")
ID_COLUMNS = ("material_id", "id", "icsd_id", "cod_id")  # id column found without `id_column`
LABEL_COLUMNS = ("space_group_number", "spacegroup", "spacegroup.number", "spg")
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
    record_id: Optional[str] = None  # the source's id (CSV id column, CIF file name): what deduplication compares


def has_suffix(path: Path | str, suffixes: Sequence[str]) -> bool:
    """Whether the file name ends in one of `suffixes` (case-insensitive; ".cif.gz" counts as a CIF)."""
    return str(path).lower().endswith(tuple(suffixes))


def open_text(path: Path | str, errors: str = "strict", newline: Optional[str] = None):
    """A UTF-8 text handle on `path`, decompressed on the fly when the name ends in .gz."""
    if str(path).lower().endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8", errors=errors, newline=newline)
    return open(path, encoding="utf-8", errors=errors, newline=newline)


def cif_file_id(path: Path | str) -> str:
    """A CIF file's id: its name without .cif/.cif.gz (ICSD and COD exports name files by their id)."""
    name = Path(path).name
    for suffix in CIF_SUFFIXES[::-1]:  # longest first
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def cif_file_record(path: Path) -> RawRecord:
    return RawRecord(source_id=str(path), path=str(path), record_id=cif_file_id(path))


def directory_records(path: Path, id_column: Optional[str] = None) -> list[RawRecord]:
    """The CIFs below `path` (recursively, as ICSD/COD exports nest them), sorted; a directory without
    CIFs is read as its CSVs (.csv, .csv.gz, recursively, sorted), as ../shared/data/mp26k is shipped.

    CIFs win when both exist: a CIF export often carries an index CSV without a `cif` column.
    """
    files = sorted(p for p in path.rglob("*") if p.is_file() and has_suffix(p, CIF_SUFFIXES))
    if files:
        return [cif_file_record(p) for p in files]
    tables = sorted(p for p in path.rglob("*") if p.is_file() and has_suffix(p, CSV_SUFFIXES))
    if not tables:
        raise UserError(f"{path}: no .cif, .cif.gz, .csv or .csv.gz files in this directory or below")
    return [record for table in tables for record in csv_records(table, id_column)]


def csv_records(path: Path, id_column: Optional[str] = None) -> list[RawRecord]:
    """Rows of a CSV (or .csv.gz) with a `cif` column; a space-group and an id column are used when present.

    `id_column`: the column whose value identifies a structure (it must exist); None: the first of
    `ID_COLUMNS` that the CSV has, if any.
    """
    try:
        with open_text(path, newline="") as handle:  # csv wants the raw line ends
            reader = csv.DictReader(handle)
            fields = reader.fieldnames or []
            cif_column = next((f for f in fields if f.lower() == "cif"), None)
            if cif_column is None:
                raise UserError(f"{path}: no 'cif' column (columns: {', '.join(fields[:8]) or 'none'})")
            if id_column is not None and id_column not in fields:
                raise UserError(f"{path}: no '{id_column}' column to deduplicate by (columns: {', '.join(fields[:8])})")
            if id_column is None:
                id_column = next((f for f in fields if f.lower() in ID_COLUMNS), None)
            label_column = next((f for f in fields if f.lower() in LABEL_COLUMNS), None)
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
                        record_id=row_id or None,
                    )
                )
    except UnicodeDecodeError:
        raise UserError(f"{path}: not a UTF-8 text CSV") from None
    except (OSError, EOFError) as exc:  # gzip.BadGzipFile, a truncated .gz
        raise UserError(f"{path}: not a readable (gzip) CSV ({type(exc).__name__})") from None
    except csv.Error as exc:
        raise UserError(f"{path}: not a valid CSV ({exc})") from None
    return records


def deduplicate(records: Sequence[RawRecord]) -> tuple[list[RawRecord], list[tuple[RawRecord, RawRecord]]]:
    """(kept, [(duplicate, first)]): the first record of each `record_id` is kept, in listing order.

    Records without an id are all kept (nothing says they are the same structure).
    """
    first: dict[str, RawRecord] = {}
    kept: list[RawRecord] = []
    duplicates: list[tuple[RawRecord, RawRecord]] = []
    for record in records:
        if record.record_id is None:
            kept.append(record)
        elif record.record_id in first:
            duplicates.append((record, first[record.record_id]))
        else:
            first[record.record_id] = record
            kept.append(record)
    return kept, duplicates


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
    """(space-group number, structure type) as the CIF states them, each None when absent.

    A stated P1 (number 1) is no label: exports such as the Materials Project's write every
    structure in P1, so the number describes the setting of the coordinates, not the crystal.
    """
    label = parse_spacegroup(cif_tag(cif, CIF_LABEL_TAGS) or "")
    return (None if label == 1 else label), cif_tag(cif, (CIF_TYPE_TAG,))
