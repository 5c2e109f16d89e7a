"""Statistics of the statistics part of a collection, defined as in Schopmans et al.'s dataset preparation,
optionally calibrated with a database's metadata (`metadata.py`).

`build_statistics` counts, per space group, what the generator draws (space-group prior, number of
unique elements, elements, Wyckoff occupations), the samples of the lattice KDE (per crystal
system) and of the volume KDE ((V_atomic, f = V_cell / V_atomic) rows, tagged with their space
group). `class_list` says which space groups are classes and why each one is in or out;
`classes_for_min_counts` tells how the class list shrinks with the minimum count.

The class list rule (one rule, with or without metadata):
    class  ⇔  prior count ≥ m  and  ordered structures ≥ n,
where the prior count is the metadata's entries of the space group when metadata is given (else
its statistics-part structures within the limits), m = `min_count_per_spacegroup` (50, the
original's on the ICSD) and n = `min_structures_per_class` (capped at m without metadata, so a small
collection built with a low m keeps its classes). Why a minimum of structures: the Wyckoff
occupation statistics (which sites, how many per element) exist only per space group and only
from structures — the metadata has no coordinates — and they cannot be borrowed from another space
group, whose Wyckoff sites are different. A space group frequent in the ICSD with fewer ordered
structures is therefore not a class; its ICSD entries leave the prior (which is renormalised over
the class list) and `class_list` reports it with its reason.
"""

from __future__ import annotations

import datetime
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Optional

import numpy as np
import spglib
from pymatgen.core.periodic_table import Element

from xrdgen.config import Config, StatisticsConfig
from xrdgen.geometry import (
    CRYSTAL_SYSTEMS,
    LATTICE_PARAMETER_NAMES,
    atomic_volume,
    crystal_system,
    element_volume,
    lattice_parameters,
    unit_volume_parameters,
)
from xrdgen.statistics.kde import volume_bandwidth
from xrdgen.statistics.metadata import Metadata
from xrdgen.statistics.model import SpaceGroupStatistics, Statistics

CLASS = "class"  # kinds of `ClassDecision`
FEW_ENTRIES = "few_entries"
FEW_STRUCTURES = "few_structures"
ORBIT_SYMPREC = 1e-3  # Å; the conventional cells of entries are spglib's idealised ones


@dataclass
class ClassDecision:
    """Whether a space group is a class, and why (one line)."""

    spacegroup: int
    kind: str  # CLASS, FEW_ENTRIES or FEW_STRUCTURES
    prior_count: int  # metadata entries, or statistics-part structures within the limits
    structures: int  # statistics-part structures within the limits (partially occupied too)
    ordered: int  # the ordered ones among them (Wyckoff occupation statistics)
    reason: str

    @property
    def is_class(self) -> bool:
        return self.kind == CLASS


@dataclass
class _Tally:
    """Everything counted over the entries, per space group."""

    excluded: Counter = field(default_factory=Counter)
    count: Counter = field(default_factory=Counter)  # within the limits, partially occupied too
    ordered: Counter = field(default_factory=Counter)
    n_elements: dict = field(default_factory=lambda: defaultdict(list))
    elements: dict = field(default_factory=lambda: defaultdict(Counter))
    repetitions: dict = field(default_factory=lambda: defaultdict(list))
    wyckoff: dict = field(default_factory=lambda: defaultdict(Counter))
    lattice_rows: dict = field(default_factory=lambda: defaultdict(list))
    volume_rows: list = field(default_factory=list)  # (V_atomic, f, space group)


def asymmetric_unit_atoms(crystal) -> int:
    """Atoms of the asymmetric unit of a (possibly disordered) conventional cell: Σ over orbits of
    the species sharing the orbit's site (a site with Fe0.5Co0.5 counts 2, as a CIF lists it).

    Rows are grouped into sites by rounded coordinates, but spglib sees each site's own coordinates:
    rounded to 1e-4, the atoms of mp-19804 (R-3m, c = 13.7 Å) moved by up to 7e-4 Å, so that
    equivalent atoms no longer matched at `ORBIT_SYMPREC` (11 orbits instead of 4)."""
    mixes: dict[tuple, int] = {}
    positions: dict[tuple, list[int]] = defaultdict(list)
    wrapped = np.mod(crystal.frac_coords, 1.0)
    for row, xyz in enumerate(np.round(wrapped, 4) % 1.0):
        positions[tuple(xyz)].append(row)
    coords, types, sizes = [], [], []
    for rows in positions.values():
        mix = tuple(sorted((int(crystal.numbers[r]), round(float(crystal.occupancies[r]), 4)) for r in rows))
        coords.append(wrapped[rows[0]])
        types.append(mixes.setdefault(mix, len(mixes) + 1))
        sizes.append(len(rows))
    dataset = spglib.get_symmetry_dataset((crystal.lattice, np.array(coords), types), symprec=ORBIT_SYMPREC)
    if dataset is None:
        return len(crystal.numbers)  # no symmetry found: every row is its own orbit
    return int(sum(sizes[int(i)] for i in np.unique(dataset.crystallographic_orbits)))


def asymmetric_unit_size(entry) -> int:
    """Atoms in the asymmetric unit of a collection entry, the count `max_atoms_asymmetric_unit`
    limits: one per Wyckoff orbit of an ordered entry, the species of each orbit's site summed for a
    partially occupied one. The generator counts its drawn sites, the same number for the ordered
    crystal it builds."""
    if entry.ordered and entry.wyckoff_sites:
        return len(entry.wyckoff_sites)
    return asymmetric_unit_atoms(entry.crystal)


def _tally(entries: Iterable, config: StatisticsConfig) -> _Tally:
    """Per structure: the limits (conventional cell ≤ `max_volume` Å³, asymmetric unit ≤
    `max_atoms_asymmetric_unit` atoms), then the prior count; ordered structures only (a partially
    occupied site has no single element; the original lost them the same way, through pyxtal):
    1. unique elements E, |E| -> n_elements; each e in E once -> elements;
    2. number of Wyckoff sites occupied by each e in E -> repetitions; every occupied Wyckoff
       name once -> wyckoff;
    3. unit-volume lattice parameters of the conventional cell, per crystal system;
    4. (V_atomic, f = V_cell / V_atomic, space group)."""
    tally = _Tally()
    for entry in entries:
        crystal = entry.crystal
        if crystal.volume > config.max_volume:
            tally.excluded["conventional cell above max_volume"] += 1
            continue
        sites = entry.wyckoff_sites
        if entry.ordered and not sites:
            tally.excluded["no Wyckoff sites"] += 1
            continue
        if asymmetric_unit_size(entry) > config.max_atoms_asymmetric_unit:
            tally.excluded["asymmetric unit above max_atoms_asymmetric_unit"] += 1
            continue
        sg = int(entry.spacegroup)
        tally.count[sg] += 1
        if not entry.ordered:
            tally.excluded["partially occupied (prior only)"] += 1
            continue
        try:
            v_atomic = atomic_volume(Element.from_Z(int(z)).symbol for z in crystal.numbers)
        except ValueError:
            tally.excluded["element without radii (prior only)"] += 1
            continue
        tally.ordered[sg] += 1
        elements = [element for element, _ in sites]
        unique = sorted(set(elements))
        tally.n_elements[sg].append(len(unique))
        tally.elements[sg].update(unique)
        tally.repetitions[sg].extend(elements.count(element) for element in unique)
        tally.wyckoff[sg].update(name for _, name in sites)
        system = crystal_system(sg)
        tally.lattice_rows[system].append(unit_volume_parameters(system, lattice_parameters(crystal.lattice)))
        tally.volume_rows.append((v_atomic, crystal.volume / v_atomic, sg))
    return tally


def _decide(tally: _Tally, metadata: Optional[Metadata], config: StatisticsConfig) -> list[ClassDecision]:
    """The class list rule of the module docstring, for every space group seen anywhere."""
    m = config.min_count_per_spacegroup
    n = config.min_structures_per_class if metadata is not None else min(config.min_structures_per_class, m)
    source = "metadata entries" if metadata is not None else "structures"
    seen = set(tally.count) | (set(metadata.entries) if metadata is not None else set())
    decisions = []
    for sg in sorted(seen):
        prior = metadata.entries.get(sg, 0) if metadata is not None else tally.count[sg]
        ordered = tally.ordered[sg]
        if metadata is not None and not metadata.n_elements_probs(sg):
            prior = 0  # only placeholder formulas: no element statistics to draw from
        if prior < m:
            kind, reason = FEW_ENTRIES, f"{prior} {source} < {m}"
        elif ordered < n:
            kind, reason = FEW_STRUCTURES, f"{prior} {source}, but {ordered} ordered structures < {n}"
        else:
            kind, reason = CLASS, f"{prior} {source} >= {m}, {ordered} ordered structures >= {n}"
        decisions.append(ClassDecision(sg, kind, prior, tally.count[sg], ordered, reason))
    return decisions


def class_list(entries: Sequence, config: StatisticsConfig | Config, metadata: Optional[Metadata] = None) -> list[ClassDecision]:
    """Every space group of the statistics-part `entries` and of `metadata`, in or out, with the reason."""
    config = config.statistics if isinstance(config, Config) else config
    return _decide(_tally(entries, config), metadata, config)


def _probabilities_from_counts(values: list[int]) -> list[float]:
    """P(value = i + 1) for i = 0..max-1 (the original's bincount[1:] normalised)."""
    counts = np.bincount(np.asarray(values, dtype=np.int64))[1:]
    return (counts / counts.sum()).tolist() if counts.sum() else []


def _normalised(counter: Counter) -> dict[str, float]:
    total = sum(counter.values())
    return {key: value / total for key, value in sorted(counter.items())} if total else {}


def _has_radii(symbol: str) -> bool:
    try:
        element_volume(symbol)
    except ValueError:
        return False
    return True


def build_statistics(
    entries: Sequence,
    config: StatisticsConfig | Config,
    provenance: Optional[dict] = None,
    metadata: Optional[Metadata] = None,
) -> Statistics:
    """Statistics of the statistics part (`config` is the statistics section or the whole Config).

    Counting per structure: `_tally`. Per space group with ordered structures (and, with
    `metadata`, metadata entries): the Wyckoff tables from the structures; the number of unique
    elements and the element probabilities from the metadata when given (elements without
    covalent/van der Waals radii dropped: the generator cannot size them), else from the
    structures. The class list and the prior follow the module docstring's rule. The volume KDE
    of a space group is its own when it has at least `min_structures_volume_kde` rows, else the
    pooled one; all bandwidths are normal-reference.
    """
    config = config.statistics if isinstance(config, Config) else config
    tally = _tally(entries, config)
    if not tally.volume_rows:
        raise ValueError("no structure is usable for statistics (all partially occupied, too large or empty)")
    decisions = _decide(tally, metadata, config)

    dropped: Counter = Counter()
    per_spacegroup = {}
    for sg in sorted(tally.ordered):
        if metadata is None:
            n_elements_probs, element_probs = _probabilities_from_counts(tally.n_elements[sg]), _normalised(tally.elements[sg])
        elif metadata.n_elements_probs(sg):
            counts = metadata.element_counts(sg)
            dropped.update({e: c for e, c in counts.items() if not _has_radii(e)})
            n_elements_probs = metadata.n_elements_probs(sg)
            element_probs = _normalised(Counter({e: c for e, c in counts.items() if _has_radii(e)}))
        else:
            continue  # no metadata for this space group: it cannot follow the metadata
        per_spacegroup[sg] = SpaceGroupStatistics(
            count=tally.count[sg],
            n_elements_probs=n_elements_probs,
            element_probs=element_probs,
            n_sites_per_element_probs=_probabilities_from_counts(tally.repetitions[sg]),
            wyckoff_probs=_normalised(tally.wyckoff[sg]),
            ordered_count=tally.ordered[sg],
            metadata_count=None if metadata is None else metadata.entries.get(sg, 0),
        )
    classes = [d.spacegroup for d in decisions if d.is_class]
    in_classes = sum(per_spacegroup[sg].prior_count for sg in classes)
    prior = {sg: per_spacegroup[sg].prior_count / in_classes for sg in classes}

    rows = np.array(tally.volume_rows, dtype=np.float64)
    volume_samples, volume_spacegroups = rows[:, :2].copy(), rows[:, 2].astype(np.int64)
    pooled = volume_bandwidth(volume_samples)
    own = {}
    for sg, n in sorted(Counter(volume_spacegroups.tolist()).items()):
        if n >= config.min_structures_volume_kde:
            bw = volume_bandwidth(volume_samples[volume_spacegroups == sg])
            own[int(sg)] = (float(bw[0]), float(bw[1]))
    lattice_samples = {
        system: np.array(tally.lattice_rows[system], dtype=np.float64).reshape(
            len(tally.lattice_rows[system]), len(LATTICE_PARAMETER_NAMES[system])
        )
        for system, _, _ in CRYSTAL_SYSTEMS
        if tally.lattice_rows.get(system)
    }

    prov = dict(provenance or {})
    prov.setdefault("date", datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"))
    prov["counts"] = {
        **prov.get("counts", {}),
        "statistics_entries": len(entries),
        "within_limits": int(sum(tally.count.values())),
        "used_for_statistics": int(sum(tally.ordered.values())),
        "in_classes": int(sum(tally.count[sg] for sg in classes)),
    }
    prov["excluded_from_statistics"] = dict(tally.excluded)
    prov["min_count_per_spacegroup"] = config.min_count_per_spacegroup
    prov["class_rule"] = {
        "prior_source": "metadata" if metadata is not None else "structures",
        "min_count_per_spacegroup": config.min_count_per_spacegroup,
        "min_structures_per_class": config.min_structures_per_class,
        "min_structures_volume_kde": config.min_structures_volume_kde,
    }
    prov["class_decisions"] = {str(d.spacegroup): [d.kind, d.reason] for d in decisions}
    if metadata is not None:
        prov["metadata"] = {**metadata.provenance, "elements_without_radii": dict(dropped)}
    prov.setdefault("statistics_config", config.model_dump(mode="json"))
    return Statistics(
        spacegroups=classes,
        prior=prior,
        per_spacegroup=per_spacegroup,
        lattice_samples=lattice_samples,
        volume_samples=volume_samples,
        volume_bandwidth=(float(pooled[0]), float(pooled[1])),
        provenance=prov,
        volume_spacegroups=volume_spacegroups,
        volume_bandwidths=own,
    )


def classes_for_min_counts(statistics: Statistics, min_counts: Iterable[int]) -> dict[int, int]:
    """Number of classes the class list would have for each minimum count m (the module's rule,
    with the statistics' own `min_structures_per_class`; without a recorded rule, one structure)."""
    rule = statistics.provenance.get("class_rule", {})
    n = int(rule.get("min_structures_per_class", 1))
    with_metadata = rule.get("prior_source") == "metadata"
    result = {}
    for m in min_counts:
        need = n if with_metadata else min(n, m)
        result[m] = sum(s.prior_count >= m and s.ordered >= need for s in statistics.per_spacegroup.values())
    return result
