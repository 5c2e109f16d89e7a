"""The experiment's data: statistics, class list and labelled sets, prepared once and cached in OUT/data.

`prepare_data` returns what an earlier run with the same data settings saved (`data_key`), or
builds it (`build_data`): records -> `xrdgen.pipeline` (serial read, structure-type split with
`experiment.split_seed`, statistics) -> class list -> the labelled sets of `xrdgen.training.datasets`
(test part, its randomized variants, measured patterns, arm B's training set) -> facts for the report.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from xrdgen.collection.entries import save_entries
from xrdgen.collection.reading import list_records, read_records
from xrdgen.collection.records import RawRecord
from xrdgen.config import Config
from xrdgen.errors import UserError
from xrdgen.jsonio import read_json, write_json
from xrdgen.pipeline import split_and_build
from xrdgen.statistics.model import Statistics
from xrdgen.training.datasets import LabelledSet, load_measured_set, simulate_set, simulate_sets
from xrdgen.training.rundir import InputSpec

TEST_SET = "test"  # name of the unmodified held-out set
MEASURED_SET = "measured"
CACHE_FORMAT = 2  # 2: labelled sets keep space groups (and measured details); 1 held class indices


@dataclass
class ExperimentData:
    statistics: Statistics
    classes: list[int]
    baseline: LabelledSet  # arm B's training set: statistics-part structures of the class list, two sizes each
    sets: list[LabelledSet]  # evaluation sets, TEST_SET first
    facts: dict  # counts for the report


def prepare_data(config: Config, out: Path, log: Callable[[str], None] = print, progress: bool = True) -> ExperimentData:
    """The data of an earlier run with the same data settings, or `build_data` (then saved in OUT/data)."""
    key = data_key(config)
    cached = load_data(out / "data", key)
    if cached is not None:
        log(f"data: reusing {out / 'data'} (same data settings, key {key})")
        return cached
    data = build_data(config, out / "data", log, progress)
    save_data(data, out / "data", key)
    return data


def build_data(config: Config, data_dir: Path, log: Callable[[str], None], progress: bool) -> ExperimentData:
    """Read, split, build statistics, simulate the evaluation sets and arm B's training set."""
    spec = config.experiment
    data_dir.mkdir(parents=True, exist_ok=True)

    records = collection_records(config)
    report = read_records(records, config.collection, ", ".join(spec.collection), progress=progress)
    log(f"collection: {len(records)} unique records, {len(report.entries)} read, {len(report.skipped)} skipped")
    built = split_and_build(report, config, spec.split_seed, {"split_seed": spec.split_seed})
    statistics = built.statistics
    classes = [int(sg) for sg in statistics.spacegroups]
    if len(classes) < 2:
        raise UserError(
            f"statistics.min_count_per_spacegroup={config.statistics.min_count_per_spacegroup}: only {len(classes)} "
            f"space group(s) reach it in the statistics part; lower it"
        )
    statistics.save(data_dir / "statistics.json.gz")
    log(
        f"structure-type split (seed {spec.split_seed}): {len(built.statistics_part)} statistics, {len(built.test_part)} test, "
        f"{built.n_structure_types} structure types; {len(classes)} classes (>= {config.statistics.min_count_per_spacegroup})"
    )

    in_classes = set(classes)
    test_entries = [e for e in built.test_part if e.spacegroup in in_classes]
    test_file = save_entries(test_entries, data_dir / "test_part.json.gz", {"part": "test", "classes": classes})
    inputs = InputSpec.from_config(config)
    sets = [
        dataclasses.replace(s, name=TEST_SET) if s.name == "unmodified" else s
        for s in simulate_sets(test_file, inputs, config, config.seed, statistics, spec.randomizations)
    ]
    measured_facts = {}
    if spec.measured is not None:
        measured = load_measured_set(Path(spec.measured), inputs, symprec=config.collection.symprec)
        inside = measured.restricted(classes)
        measured_facts = {
            "measured_total": len(measured),
            "measured_outside_classes": {n: int(sg) for n, sg in zip(measured.names, measured.spacegroups) if int(sg) not in in_classes},
            "measured_skipped": measured.skipped,
        }
        sets.append(dataclasses.replace(inside, name=MEASURED_SET))

    crystals = [e.crystal for e in built.statistics_part]  # labelled with spglib's space group
    baseline = simulate_set(
        crystals,
        inputs,
        config.simulation,
        config.seed,
        name="baseline",
        classes=classes,
        crystallite_sizes_nm=config.training.baseline_sizes_nm,
        progress=progress,
    )
    log(
        f"arm B training set: {len(baseline)} patterns of {len(baseline) // 2} statistics-part structures; "
        + ", ".join(f"{s.name}: {len(s)}" for s in sets)
    )

    stats_counts = {int(sg): statistics.per_spacegroup[sg].count for sg in classes}
    facts = {
        "records": len(records),
        "read": len(report.entries),
        "skipped": len(report.skipped),
        "structure_types": built.n_structure_types,
        "statistics_part": len(built.statistics_part),
        "test_part": len(built.test_part),
        "test_part_in_classes": len(test_entries),
        "test_part_partially_occupied": sum(not e.ordered for e in test_entries),
        "classes": classes,
        "n_classes": len(classes),
        "min_count_per_spacegroup": config.statistics.min_count_per_spacegroup,
        "statistics_counts": stats_counts,
        "baseline_patterns": len(baseline),
        "baseline_skipped": baseline.skipped_summary(),
        "sets": {s.name: len(s) for s in sets},
        "set_skipped": {s.name: len(s.skipped) for s in sets},
        "chance": {s.name: chance_levels(s.spacegroups, classes, stats_counts) for s in sets},
        **measured_facts,
    }
    return ExperimentData(statistics, classes, baseline, sets, facts)


def collection_records(config: Config) -> list[RawRecord]:
    """The experiment's records: folders of CSVs expanded, one per id, optionally a seeded subset."""
    spec = config.experiment
    sources: list[Path] = []
    for item in spec.collection:
        path = Path(item)
        csvs = sorted(path.glob("*.csv")) if path.is_dir() else []
        sources.extend(csvs or [path])
    records = list_records([str(p) for p in sources])
    if spec.dedupe_ids:
        unique: dict[str, RawRecord] = {}
        for record in records:
            unique.setdefault(_record_key(record), record)
        records = list(unique.values())
    if spec.max_structures is not None and spec.max_structures < len(records):
        rng = np.random.default_rng(spec.split_seed)
        records = [records[i] for i in sorted(rng.choice(len(records), spec.max_structures, replace=False))]
    return records


def _record_key(record: RawRecord) -> str:
    """The CSV row's id (material_id) when the CSV has one, else the CIF text, else the file."""
    row_id = record.source_id.rsplit(":", 1)[-1]
    if record.cif is not None and not re.fullmatch(r"row\d+", row_id):
        return row_id
    return record.cif if record.cif is not None else record.source_id


def chance_levels(labels: np.ndarray, classes: list[int], class_counts: dict[int, int]) -> dict:
    """What guessing achieves: uniformly random classes, and always the most frequent training classes."""
    n_classes = len(classes)
    by_frequency = sorted(classes, key=lambda sg: -class_counts[sg])
    labels = np.asarray(labels)

    def share(chosen: list[int]) -> float:
        return float(np.mean(np.isin(labels, chosen))) if len(labels) else float("nan")

    return {
        "uniform_top1": 1.0 / n_classes,
        "uniform_top5": min(5, n_classes) / n_classes,
        "majority_top1": share(by_frequency[:1]),
        "majority_top5": share(by_frequency[:5]),
    }


# ------------------------------------------------------------------------------------ cache in data/
def data_key(config: Config) -> str:
    """Hash of every setting the data depend on: training seeds, steps and the optimiser are left out,
    so a rerun with more seeds or steps reuses the prepared data."""
    dump = config.model_dump(mode="json")
    spec = {k: v for k, v in dump["experiment"].items() if k not in ("seeds", "steps", "eval_every")}
    parts = {k: dump[k] for k in ("seed", "grid", "simulation", "augmentation", "collection", "statistics")}
    parts.update(experiment=spec, baseline_sizes_nm=dump["training"]["baseline_sizes_nm"], cache_format=CACHE_FORMAT)
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def save_data(data: ExperimentData, folder: Path, key: str) -> None:
    """data/prepared.npz (patterns, space groups) + data/prepared.json (names, skipped, facts); the
    statistics are in data/statistics.json.gz already."""
    every = [data.baseline] + data.sets
    arrays = {}
    for i, s in enumerate(every):
        arrays[f"x{i}"], arrays[f"y{i}"] = s.x, s.spacegroups
    np.savez(folder / "prepared.npz", **arrays)
    sets = [{"name": s.name, "names": s.names, "skipped": s.skipped, "details": s.details} for s in every]
    write_json(folder / "prepared.json", {"key": key, "classes": data.classes, "sets": sets, "facts": data.facts})


def load_data(folder: Path, key: str) -> Optional[ExperimentData]:
    """The data a previous run with the same `data_key` prepared, or None."""
    try:
        meta = read_json(folder / "prepared.json", "prepared data")
        if meta["key"] != key:
            return None
        arrays = np.load(folder / "prepared.npz")
        statistics = Statistics.load(folder / "statistics.json.gz")
        every = [
            LabelledSet(m["name"], arrays[f"x{i}"], arrays[f"y{i}"], m["names"], m["skipped"], m["details"])
            for i, m in enumerate(meta["sets"])
        ]
    except (UserError, FileNotFoundError, KeyError, ValueError):
        return None
    return ExperimentData(statistics, meta["classes"], every[0], every[1:], meta["facts"])
