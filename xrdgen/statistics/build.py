"""Statistics of the statistics part of a collection, defined as in Schopf et al.'s dataset preparation.

`build_statistics` counts, per space group, what the generator draws (space-group prior, number of
unique elements, elements, Wyckoff occupations) and pools the samples of the lattice KDE (per
crystal system) and of the volume KDE (V_atomic, f = V_cell / V_atomic) over all space groups.
`classes_for_min_counts` tells how the class list shrinks with the minimum count.
"""

from __future__ import annotations

import datetime
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import Optional

import numpy as np
from pymatgen.core.periodic_table import Element

from xrdgen.config import Config, StatisticsConfig
from xrdgen.geometry import (
    CRYSTAL_SYSTEMS,
    LATTICE_PARAMETER_NAMES,
    atomic_volume,
    crystal_system,
    lattice_parameters,
    unit_volume_parameters,
)
from xrdgen.statistics.kde import normal_reference_bandwidth
from xrdgen.statistics.model import SpaceGroupStatistics, Statistics


def _probabilities_from_counts(values: list[int]) -> list[float]:
    """P(value = i + 1) for i = 0..max-1 (the original's bincount[1:] normalised)."""
    counts = np.bincount(np.asarray(values, dtype=np.int64))[1:]
    return (counts / counts.sum()).tolist() if counts.sum() else []


def _normalised(counter: Counter) -> dict[str, float]:
    total = sum(counter.values())
    return {key: value / total for key, value in sorted(counter.items())} if total else {}


def build_statistics(
    entries: Sequence, config: StatisticsConfig | Config, provenance: Optional[dict] = None
) -> Statistics:
    """Statistics of the statistics part (`config` is the statistics section or the whole Config).

    Which entries count: ordered ones only (a partially occupied site has no single element to
    count; the original lost them the same way, through pyxtal), with a conventional cell of at most
    `max_volume` Å³ and at most `max_wyckoff_sites` occupied Wyckoff sites. Excluded ones are
    counted in the provenance.

    Per structure (entry.wyckoff_sites: one (element, Wyckoff name) per occupied orbit):
    1. unique elements E; number of unique elements |E| -> n_elements_probs;
    2. each e in E counts once for element_probs (P(element) ∝ structures containing it);
    3. number of Wyckoff sites occupied by each e in E, pooled -> n_sites_per_element_probs;
    4. every occupied Wyckoff name counts once -> wyckoff_probs;
    5. unit-volume lattice parameters of the conventional cell, per crystal system, all space
       groups pooled (the lattice KDE is per system, not per space group);
    6. (V_atomic, f = V_cell / V_atomic), all space groups pooled, with normal-reference
       bandwidths (the original fitted per space group with fixed bandwidths; pooled data keeps the
       KDE usable for rare space groups).
    The class list is the space groups with at least `min_count_per_spacegroup` counted
    structures; the prior is their relative frequency.
    """
    if isinstance(config, Config):
        config = config.statistics

    excluded = Counter()
    per_sg_elements_count: dict[int, list[int]] = defaultdict(list)
    per_sg_element_counter: dict[int, Counter] = defaultdict(Counter)
    per_sg_repetitions: dict[int, list[int]] = defaultdict(list)
    per_sg_wyckoff_counter: dict[int, Counter] = defaultdict(Counter)
    per_sg_count: Counter = Counter()
    lattice_rows: dict[str, list[np.ndarray]] = defaultdict(list)
    volume_rows: list[tuple[float, float]] = []

    for entry in entries:
        if not entry.ordered:
            excluded["partially occupied"] += 1
            continue
        crystal = entry.crystal
        if crystal.volume > config.max_volume:
            excluded["conventional cell above max_volume"] += 1
            continue
        sites = entry.wyckoff_sites
        if not sites:
            excluded["no Wyckoff sites"] += 1
            continue
        if len(sites) > config.max_wyckoff_sites:
            excluded["more Wyckoff sites than max_wyckoff_sites"] += 1
            continue
        symbols = [Element.from_Z(int(z)).symbol for z in crystal.numbers]
        try:
            v_atomic = atomic_volume(symbols)
        except ValueError:
            excluded["element without radii"] += 1
            continue

        sg = int(entry.spacegroup)
        per_sg_count[sg] += 1
        elements = [element for element, _ in sites]
        unique = sorted(set(elements))
        per_sg_elements_count[sg].append(len(unique))
        per_sg_element_counter[sg].update(unique)
        per_sg_repetitions[sg].extend(elements.count(element) for element in unique)
        per_sg_wyckoff_counter[sg].update(name for _, name in sites)

        system = crystal_system(sg)
        lattice_rows[system].append(unit_volume_parameters(system, lattice_parameters(crystal.lattice)))
        volume_rows.append((v_atomic, crystal.volume / v_atomic))

    if not volume_rows:
        raise ValueError("no structure is usable for statistics (all partially occupied, too large or empty)")

    per_spacegroup = {
        sg: SpaceGroupStatistics(
            count=per_sg_count[sg],
            n_elements_probs=_probabilities_from_counts(per_sg_elements_count[sg]),
            element_probs=_normalised(per_sg_element_counter[sg]),
            n_sites_per_element_probs=_probabilities_from_counts(per_sg_repetitions[sg]),
            wyckoff_probs=_normalised(per_sg_wyckoff_counter[sg]),
        )
        for sg in sorted(per_sg_count)
    }
    classes = [sg for sg in sorted(per_sg_count) if per_sg_count[sg] >= config.min_count_per_spacegroup]
    in_classes = sum(per_sg_count[sg] for sg in classes)
    prior = {sg: per_sg_count[sg] / in_classes for sg in classes}

    volume_samples = np.array(volume_rows, dtype=np.float64)
    bandwidth = normal_reference_bandwidth(volume_samples[:, ::-1])  # columns (f, V_atomic) as statsmodels
    if np.any(bandwidth <= 0):  # a single structure or identical ones: fall back to 5% of the values
        bandwidth = np.where(bandwidth > 0, bandwidth, 0.05 * np.abs(volume_samples[:, ::-1]).mean(axis=0))
    lattice_samples = {
        system: np.array(lattice_rows[system], dtype=np.float64).reshape(
            len(lattice_rows[system]), len(LATTICE_PARAMETER_NAMES[system])
        )
        for system, _, _ in CRYSTAL_SYSTEMS
        if lattice_rows.get(system)
    }

    prov = dict(provenance or {})
    prov.setdefault("date", datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"))
    counts = dict(prov.get("counts", {}))
    counts.update(
        {
            "statistics_entries": len(entries),
            "used_for_statistics": int(sum(per_sg_count.values())),
            "in_classes": int(in_classes),
        }
    )
    prov["counts"] = counts
    prov["excluded_from_statistics"] = dict(excluded)
    prov["min_count_per_spacegroup"] = config.min_count_per_spacegroup
    prov.setdefault("statistics_config", config.model_dump(mode="json"))
    return Statistics(
        spacegroups=classes,
        prior=prior,
        per_spacegroup=per_spacegroup,
        lattice_samples=lattice_samples,
        volume_samples=volume_samples,
        volume_bandwidth=(float(bandwidth[0]), float(bandwidth[1])),
        provenance=prov,
    )


def classes_for_min_counts(statistics: Statistics, min_counts: Iterable[int]) -> dict[int, int]:
    """Number of classes the class list would have for each minimum count (per_spacegroup counts)."""
    counts = [s.count for s in statistics.per_spacegroup.values()]
    return {m: sum(c >= m for c in counts) for m in min_counts}
