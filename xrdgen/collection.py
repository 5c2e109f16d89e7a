"""Crystal collections: a directory of CIFs, CSV files with a CIF column, or the embedded default.

Reading has two halves so that Ray stays out of `xrdgen/`:

1. `list_records(source)` enumerates cheap `RawRecord`s (a path, a CIF string or a structure dict,
   with the file's space-group label and structure type) without parsing anything;
2. `read_chunk(records, collection_config)` parses a chunk into `CollectionEntry`s plus `Skipped`
   reasons. `read_collection` maps it over chunks serially, or through the `map_chunks` callable
   that `services.collection_reader` passes to run the chunks as Ray tasks.

Each entry carries the conventional standard cell found by spglib (as `Crystal`), spglib's space
group and the file's label (both kept; disagreements are counted), whether every site is fully
occupied, and, for ordered structures, the Wyckoff site of every orbit (element, pyxtal-style name
such as "4a") that the statistics need. A bad entry is skipped with its reason; nothing else is lost.
"""

from __future__ import annotations

import csv
import io
import re
import sys
import warnings
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional, Sequence

import numpy as np

from xrdgen.config import CollectionConfig, Config
from xrdgen.crystal import Crystal
from xrdgen.errors import UserError
from xrdgen.jsonio import read_json, write_json

csv.field_size_limit(sys.maxsize)

DEFAULT_SOURCE = "default"
CIF_SUFFIXES = (".cif",)


@dataclass
class RawRecord:
    """One unparsed structure: exactly one of `path`, `cif`, `structure_dict` is set."""

    source_id: str
    path: Optional[str] = None  # a CIF or POSCAR file, read by the worker
    cif: Optional[str] = None  # CIF text (CSV collections)
    structure_dict: Optional[dict] = None  # pymatgen Structure.as_dict()
    spacegroup_file: Optional[int] = None  # label given by the source (CSV column); else read from the CIF
    structure_type: Optional[str] = None  # given by the source (AFLOW label); else read from the CIF


@dataclass
class CollectionEntry:
    """A structure of the collection, ready for split, statistics and test-set simulation."""

    crystal: Crystal  # conventional standard cell (spglib), occupancies kept; crystal.spacegroup == spacegroup
    spacegroup: int  # spglib's, at CollectionConfig.symprec
    spacegroup_file: Optional[int]  # the source's label (None when it gives none)
    source_id: str
    ordered: bool  # every site fully occupied by one species
    structure_type: Optional[str] = None  # CIF `_chemical_name_structure_type` or AFLOW prototype label
    wyckoff_sites: list[tuple[str, str]] = field(default_factory=list)  # (element, "4a") per orbit; ordered only
    _structure: object = field(default=None, repr=False, compare=False)

    @property
    def structure(self):
        """pymatgen Structure of the conventional cell (built on first use)."""
        if self._structure is None:
            self._structure = self.crystal.to_structure()
        return self._structure

    @property
    def label_disagrees(self) -> bool:
        return self.spacegroup_file is not None and self.spacegroup_file != self.spacegroup

    def to_json(self) -> dict:
        c = self.crystal
        return {
            "source_id": self.source_id,
            "spacegroup": self.spacegroup,
            "spacegroup_file": self.spacegroup_file,
            "structure_type": self.structure_type,
            "ordered": self.ordered,
            "lattice": c.lattice.tolist(),
            "frac_coords": c.frac_coords.tolist(),
            "numbers": c.numbers.tolist(),
            "occupancies": c.occupancies.tolist(),
            "wyckoff_sites": [list(s) for s in self.wyckoff_sites],
        }

    @classmethod
    def from_json(cls, data: dict) -> "CollectionEntry":
        crystal = Crystal(
            np.array(data["lattice"]),
            np.array(data["frac_coords"]).reshape(-1, 3),
            np.array(data["numbers"], dtype=np.int64),
            np.array(data["occupancies"]),
            int(data["spacegroup"]),
        )
        return cls(
            crystal=crystal,
            spacegroup=int(data["spacegroup"]),
            spacegroup_file=data.get("spacegroup_file"),
            source_id=str(data["source_id"]),
            ordered=bool(data["ordered"]),
            structure_type=data.get("structure_type"),
            wyckoff_sites=[tuple(s) for s in data.get("wyckoff_sites", [])],
        )


@dataclass
class Skipped:
    source_id: str
    reason: str


@dataclass
class CollectionReport:
    """What `read_collection` returns: the usable entries and every skipped one with its reason."""

    source: str
    entries: list[CollectionEntry]
    skipped: list[Skipped]

    @property
    def counts(self) -> dict:
        with_label = [e for e in self.entries if e.spacegroup_file is not None]
        return {
            "records": len(self.entries) + len(self.skipped),
            "read": len(self.entries),
            "skipped": len(self.skipped),
            "ordered": sum(e.ordered for e in self.entries),
            "partially_occupied": sum(not e.ordered for e in self.entries),
            "with_file_label": len(with_label),
            "label_disagreements": sum(e.label_disagrees for e in with_label),
            "with_structure_type": sum(e.structure_type is not None for e in self.entries),
            "spacegroups": len({e.spacegroup for e in self.entries}),
        }

    def skipped_by_reason(self) -> Counter:
        return Counter(s.reason.split(":")[0] for s in self.skipped)

    def summary(self) -> str:
        c = self.counts
        lines = [
            f"collection {self.source}: {c['read']} of {c['records']} structures read, {c['skipped']} skipped",
            f"  ordered {c['ordered']}, partially occupied {c['partially_occupied']}, "
            f"{c['spacegroups']} space groups, structure type known for {c['with_structure_type']}",
            f"  space-group label in the file for {c['with_file_label']}; spglib disagrees with it for "
            f"{c['label_disagreements']}",
        ]
        for reason, n in self.skipped_by_reason().most_common():
            lines.append(f"  skipped ({n}): {reason}")
        return "\n".join(lines)

    def skipped_report(self) -> str:
        """One line per skipped entry: `source_id<TAB>reason`."""
        return "".join(f"{s.source_id}\t{s.reason}\n" for s in self.skipped)


# ------------------------------------------------------------------------------------ listing
def list_records(source: str | Path | Sequence[str | Path]) -> list[RawRecord]:
    """Records of `source`: "default", a directory (CIFs found recursively), a CSV, or a list of these.

    A source that does not exist or holds nothing readable is a `UserError`.
    """
    if isinstance(source, (list, tuple)):
        records: list[RawRecord] = []
        for one in source:
            records.extend(list_records(one))
        return records
    if str(source) == DEFAULT_SOURCE:
        from xrdgen.embedded import embedded_records

        return embedded_records()
    path = Path(source)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in CIF_SUFFIXES)
        if not files:
            raise UserError(f"{path}: no .cif files in this directory or below")
        return [RawRecord(source_id=str(p), path=str(p)) for p in files]
    if path.is_file() and path.suffix.lower() == ".csv":
        return _csv_records(path)
    if path.is_file() and path.suffix.lower() in CIF_SUFFIXES:
        return [RawRecord(source_id=str(path), path=str(path))]
    if not path.exists():
        raise UserError(f"{path}: no such file or directory (expected a CIF directory, a CSV, or 'default')")
    raise UserError(f"{path}: not a collection (expected a directory of CIFs, a .csv with a 'cif' column, or 'default')")


def _csv_records(path: Path) -> list[RawRecord]:
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
                label = _parse_int((row.get(label_column) or "").strip()) if label_column else None
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


def _parse_int(text: str) -> Optional[int]:
    try:
        value = int(float(text))
    except (TypeError, ValueError):
        return None
    return value if 1 <= value <= 230 else None


# ------------------------------------------------------------------------------------ parsing
_CIF_LABEL_TAGS = ("_space_group_it_number", "_symmetry_int_tables_number", "_space_group.it_number")
_CIF_TYPE_TAG = "_chemical_name_structure_type"


def _cif_tag(cif: str, tags: Iterable[str]) -> Optional[str]:
    """First value of one of `tags` in CIF text (single-line values, quotes stripped)."""
    for tag in tags:
        match = re.search(rf"^\s*{re.escape(tag)}\s+(.+?)\s*$", cif, flags=re.IGNORECASE | re.MULTILINE)
        if match:
            value = match.group(1).strip().strip("'\"").strip()
            if value and value not in ("?", "."):
                return value
    return None


def _structures_from_record(record: RawRecord) -> tuple[list, Optional[str]]:
    """pymatgen Structures of a record (one per CIF data block) and the CIF text, if any."""
    from pymatgen.core import Structure
    from pymatgen.io.cif import CifParser

    if record.structure_dict is not None:
        return [Structure.from_dict(record.structure_dict)], None
    text = record.cif
    if record.path is not None:
        path = Path(record.path)
        if path.suffix.lower() not in CIF_SUFFIXES:  # POSCAR and friends
            return [Structure.from_file(path)], None
        text = path.read_text(encoding="utf-8", errors="replace")
    if text is None or not text.strip():
        raise ValueError("empty file")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        parser = CifParser(io.StringIO(text), occupancy_tolerance=1.0)
        structures = parser.parse_structures(primitive=False, on_error="ignore")
    if not structures:
        raise ValueError("no structure could be built from the CIF")
    return structures, text


def read_chunk(records: Sequence[RawRecord], config: CollectionConfig) -> tuple[list[CollectionEntry], list[Skipped]]:
    """Parse records into entries; each failure becomes a `Skipped` with its reason (never raises)."""
    entries: list[CollectionEntry] = []
    skipped: list[Skipped] = []
    for record in records:
        try:
            structures, text = _structures_from_record(record)
        except Exception as exc:  # any parser failure is a property of this one entry
            skipped.append(Skipped(record.source_id, f"unparsable: {_short(exc)}"))
            continue
        label = record.spacegroup_file
        stype = record.structure_type
        if text is not None:
            if label is None:
                label = _parse_int(_cif_tag(text, _CIF_LABEL_TAGS) or "")
            if stype is None:
                stype = _cif_tag(text, (_CIF_TYPE_TAG,))
        for block, structure in enumerate(structures):
            source_id = record.source_id if len(structures) == 1 else f"{record.source_id}#{block}"
            try:
                entries.append(entry_from_structure(structure, source_id, config, label, stype))
            except ValueError as exc:
                skipped.append(Skipped(source_id, str(exc)))
            except Exception as exc:  # a library failure on a strange structure
                skipped.append(Skipped(source_id, f"unreadable: {_short(exc)}"))
    return entries, skipped


def _short(exc: Exception) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text[:160]


def entry_from_structure(
    structure,
    source_id: str,
    config: CollectionConfig,
    spacegroup_file: Optional[int] = None,
    structure_type: Optional[str] = None,
) -> CollectionEntry:
    """Check sanity, find the space group and conventional cell with spglib, and the Wyckoff sites.

    Raises ValueError("<reason>: <detail>") for an entry to be skipped.
    1. Empty structures, non-element species (D, dummy atoms) and absurd cells (volume per atom
       outside CollectionConfig's range) are rejected.
    2. spglib runs on the cell with one type per distinct site occupation, so a disordered site
       keeps its identity; its standardized cell is the conventional standard cell.
    3. The conventional cell is rejected when it has more than `max_atoms` sites.
    4. For ordered structures, spglib's orbits give one Wyckoff site per orbit (`wyckoff_sites_of`).
    """
    import spglib

    if len(structure) == 0:
        raise ValueError("empty: no atoms in the structure")
    occupations = []
    for site in structure:
        species = site.species
        for sp in species:
            if not hasattr(sp, "Z") or getattr(sp, "Z", 0) is None or sp.Z < 1 or type(sp).__name__.startswith("Dummy"):
                raise ValueError(f"unsupported species: {sp}")
        occupations.append(tuple(sorted((sp.Z, round(float(occ), 4)) for sp, occ in species.items())))
    volume_per_site = structure.volume / len(structure)
    if not (config.min_volume_per_atom <= volume_per_site <= config.max_volume_per_atom):
        raise ValueError(
            f"absurd cell: {volume_per_site:.3g} Å³ per site, outside "
            f"[{config.min_volume_per_atom}, {config.max_volume_per_atom}]"
        )

    kinds = sorted(set(occupations))
    type_of = {occ: i + 1 for i, occ in enumerate(kinds)}
    cell = (structure.lattice.matrix, structure.frac_coords, [type_of[o] for o in occupations])
    dataset = spglib.get_symmetry_dataset(cell, symprec=config.symprec)
    if dataset is None:
        raise ValueError("no symmetry: spglib found no space group")
    std_lattice = np.array(dataset.std_lattice)
    std_positions = np.mod(np.array(dataset.std_positions), 1.0)
    std_types = np.array(dataset.std_types)
    if len(std_types) > config.max_atoms:
        raise ValueError(f"too many atoms: {len(std_types)} in the conventional cell (max_atoms={config.max_atoms})")

    coords, numbers, occus = [], [], []
    for xyz, t in zip(std_positions, std_types):
        for z, occ in kinds[t - 1]:
            coords.append(xyz)
            numbers.append(z)
            occus.append(occ)
    crystal = Crystal(std_lattice, np.array(coords), np.array(numbers), np.array(occus), int(dataset.number))
    ordered = all(len(k) == 1 and k[0][1] >= 1.0 - 1e-3 for k in kinds)

    wyckoff_sites = wyckoff_sites_of(dataset, cell[2], kinds) if ordered else []
    return CollectionEntry(
        crystal=crystal,
        spacegroup=int(dataset.number),
        spacegroup_file=spacegroup_file,
        source_id=source_id,
        ordered=ordered,
        structure_type=structure_type,
        wyckoff_sites=wyckoff_sites,
    )


def wyckoff_sites_of(dataset, types: Sequence[int], kinds) -> list[tuple[str, str]]:
    """(element symbol, "<multiplicity><letter>") per crystallographic orbit, from spglib's dataset.

    spglib labels every input site with its Wyckoff letter (of the standard setting) and its orbit
    (`crystallographic_orbits`: found with the primitive cell's symmetry; `equivalent_atoms` splits
    orbits when the input cell is a supercell, as some Materials Project CIFs are). The multiplicity in the conventional cell is the orbit's size in the input
    cell times (sites in the conventional cell) / (sites in the input cell): each orbit has the same
    density of sites in every cell of the crystal.
    """
    from pymatgen.core.periodic_table import Element

    orbits = Counter(int(i) for i in dataset.crystallographic_orbits)
    scale = len(dataset.std_types) / len(types)
    sites = []
    for representative, size in sorted(orbits.items()):
        multiplicity = size * scale
        if abs(multiplicity - round(multiplicity)) > 1e-6:
            raise ValueError(f"inconsistent symmetry: orbit of {size} sites scales to {multiplicity:.3f}")
        z = kinds[int(types[representative]) - 1][0][0]
        sites.append((Element.from_Z(z).symbol, f"{int(round(multiplicity))}{dataset.wyckoffs[representative]}"))
    return sites


# ------------------------------------------------------------------------------------ reading
ChunkMapper = Callable[[list[list[RawRecord]], CollectionConfig], Iterator[tuple[list[CollectionEntry], list[Skipped]]]]


def chunked(records: Sequence[RawRecord], size: int) -> list[list[RawRecord]]:
    return [list(records[i : i + size]) for i in range(0, len(records), size)]


def serial_map_chunks(chunks, config: CollectionConfig, progress: bool = True):
    """The plain in-process mapper, with a tqdm bar over structures."""
    from tqdm import tqdm

    with tqdm(total=sum(len(c) for c in chunks), desc="reading structures", unit="cif", disable=not progress) as bar:
        for chunk in chunks:
            yield read_chunk(chunk, config)
            bar.update(len(chunk))


def read_collection(
    source: str | Path | Sequence[str | Path],
    config: Config | CollectionConfig | None = None,
    map_chunks: Optional[ChunkMapper] = None,
    progress: bool = True,
) -> CollectionReport:
    """Read every structure of `source`; bad entries are skipped and listed in the report.

    `map_chunks(chunks, collection_config)` yields `read_chunk` results in order; default: serial.
    """
    if isinstance(config, Config):
        config = config.collection
    config = config or CollectionConfig()
    records = list_records(source)
    chunks = chunked(records, config.chunk_size)
    if map_chunks is None:
        results = serial_map_chunks(chunks, config, progress=progress)
    else:
        results = map_chunks(chunks, config)
    entries: list[CollectionEntry] = []
    skipped: list[Skipped] = []
    for chunk_entries, chunk_skipped in results:
        entries.extend(chunk_entries)
        skipped.extend(chunk_skipped)
    name = source if isinstance(source, (str, Path)) else ", ".join(str(s) for s in source)
    return CollectionReport(source=str(name), entries=entries, skipped=skipped)


# ------------------------------------------------------------------------------ entry files
def save_entries(entries: Sequence[CollectionEntry], path: Path | str, meta: Optional[dict] = None) -> Path:
    """Entries as JSON (gzip when the name ends in .gz): the held-out test part of a statistics build."""
    payload = {"format": "xrdgen-entries", "version": 1, "meta": meta or {}, "entries": [e.to_json() for e in entries]}
    return write_json(path, payload)


def load_entries(path: Path | str) -> list[CollectionEntry]:
    """Read a file written by `save_entries`; problems are one `UserError` line."""
    path = Path(path)
    data = read_json(path, "entries")
    if not isinstance(data, dict) or data.get("format") != "xrdgen-entries" or data.get("version") != 1:
        raise UserError(f"{path}: not an xrdgen entries file (format xrdgen-entries, version 1)")
    try:
        return [CollectionEntry.from_json(e) for e in data["entries"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"{path}: malformed entry ({type(exc).__name__}: {exc})") from None
