"""Parsed structures of a collection (`CollectionEntry`), what a read reports, and entry files.

`read_chunk(records, collection_config)` parses records into entries plus `Skipped` reasons; it
never raises, so one bad CIF costs one entry. Each entry carries the conventional standard cell
found by spglib (as `Crystal`), spglib's space group and the file's label (both kept;
disagreements are counted), whether every site is fully occupied, and, for ordered structures, the
Wyckoff site of every orbit (element, pyxtal-style name such as "4a") that the statistics need.

`save_entries`/`load_entries` write and read entries as JSON: the held-out test part of a
statistics build travels to later stages without the original collection.
"""

from __future__ import annotations

import io
import warnings
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np
import spglib
from pymatgen.core import Structure
from pymatgen.core.periodic_table import Element
from pymatgen.io.cif import CifParser

from xrdgen.collection.records import CIF_SUFFIXES, RawRecord, cif_labels, has_suffix, open_text
from xrdgen.config import CollectionConfig
from xrdgen.crystal import Crystal
from xrdgen.errors import UserError
from xrdgen.jsonio import read_json, write_json


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
    def from_json(cls, data: dict) -> CollectionEntry:
        numbers = np.array(data["numbers"], dtype=np.int64)
        crystal = Crystal(
            np.array(data["lattice"]),
            np.array(data["frac_coords"]).reshape(-1, 3),
            numbers,
            np.array(data["occupancies"]) if "occupancies" in data else np.ones(len(numbers)),  # compact files omit unit ones
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
    """What `read_collection` returns: the usable entries, every skipped one with its reason, and the
    records left out as a repeat of an id already read (`duplicates`, reason names the first)."""

    source: str
    entries: list[CollectionEntry]
    skipped: list[Skipped]
    duplicates: list[Skipped] = field(default_factory=list)

    @property
    def counts(self) -> dict:
        with_label = [e for e in self.entries if e.spacegroup_file is not None]
        return {
            "records": len(self.entries) + len(self.skipped) + len(self.duplicates),
            "read": len(self.entries),
            "skipped": len(self.skipped),
            "duplicates": len(self.duplicates),
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
            f"collection {self.source}: {c['read']} of {c['records']} structures read, {c['skipped']} skipped, "
            f"{c['duplicates']} duplicate ids left out",
            f"  ordered {c['ordered']}, partially occupied {c['partially_occupied']}, "
            f"{c['spacegroups']} space groups, structure type known for {c['with_structure_type']}",
            f"  space-group label in the file for {c['with_file_label']}; spglib disagrees with it for "
            f"{c['label_disagreements']}",
        ]
        for reason, n in self.skipped_by_reason().most_common():
            lines.append(f"  skipped ({n}): {reason}")
        return "\n".join(lines)

    def skipped_report(self) -> str:
        """One line per skipped entry or left-out duplicate: `source_id<TAB>reason`."""
        return "".join(f"{s.source_id}\t{s.reason}\n" for s in self.skipped + self.duplicates)


# ------------------------------------------------------------------------------------ parsing
def structures_of(record: RawRecord) -> tuple[list, Optional[str]]:
    """pymatgen Structures of a record (one per CIF data block) and the CIF text, if any."""
    if record.structure_dict is not None:
        return [Structure.from_dict(record.structure_dict)], None
    text = record.cif
    if record.path is not None:
        path = Path(record.path)
        if not has_suffix(path, CIF_SUFFIXES):  # POSCAR and friends
            return [Structure.from_file(path)], None
        with open_text(path, errors="replace") as handle:  # .cif.gz decompressed here, in the worker
            text = handle.read()
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
            structures, text = structures_of(record)
        except Exception as exc:  # any parser failure is a property of this one entry
            skipped.append(Skipped(record.source_id, f"unparsable: {_short(exc)}"))
            continue
        label = record.spacegroup_file
        stype = record.structure_type
        if text is not None:
            file_label, file_type = cif_labels(text)
            label = file_label if label is None else label
            stype = file_type if stype is None else stype
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


# ------------------------------------------------------------------------------ entry files
def save_entries(entries: Sequence[CollectionEntry], path: Path | str, meta: Optional[dict] = None) -> Path:
    """Entries as JSON (gzip when the name ends in .gz): the held-out test part of a statistics build."""
    payload = {"format": "xrdgen-entries", "version": 1, "meta": meta or {}, "entries": [e.to_json() for e in entries]}
    return write_json(path, payload)


def load_entries(path: Path | str) -> list[CollectionEntry]:
    """Read a file written by `save_entries`; problems are one `UserError` line."""
    return load_entries_file(path)[0]


def load_entries_file(path: Path | str) -> tuple[list[CollectionEntry], dict]:
    """(entries, meta) of a file written by `save_entries`; problems are one `UserError` line."""
    path = Path(path)
    data = read_json(path, "entries")
    if not isinstance(data, dict) or data.get("format") != "xrdgen-entries" or data.get("version") != 1:
        raise UserError(f"{path}: not an xrdgen entries file (format xrdgen-entries, version 1)")
    try:
        return [CollectionEntry.from_json(e) for e in data["entries"]], dict(data.get("meta") or {})
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"{path}: malformed entry ({type(exc).__name__}: {exc})") from None
