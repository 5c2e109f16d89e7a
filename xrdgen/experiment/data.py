"""The experiment's data per split: statistics, class list and labelled sets, prepared once and cached.

`prepare_data` returns, for every split of `experiment.splits`, what an earlier run with the same
data settings saved in OUT/data/<split>/ (`data_key`), or builds it (`build_split`):

1. the records (one per `collection.id_column`: the mp40 CSVs overlap) are read serially once, or
   taken with their structure-type grouping from `experiment.entries_cache` (the cache that
   `xrdgen stats build --entries-cache` writes: mp26k's grouping costs ~20 minutes);
2. split 70/30 with `experiment.split_seed`: by structure type ("structure_type", the method's
   split: no structure type on both sides) or at random ("random", the control of the original's
   Table S2: every structure its own group, so near-copies of a structure type land on both sides);
   with `experiment.validation_fraction`, a share of the test part's groups becomes the validation
   set (learning curves, plateau rule), so the test set is never used to decide anything;
3. statistics of the statistics part (`xrdgen.pipeline`, calibrated by `experiment.metadata` when
   given), the class list = the statistics' classes (`statistics.min_count_per_spacegroup`
   structures, or ICSD entries with metadata);
4. the labelled sets (`xrdgen.experiment.testsets` labels and filters), every one simulated in the
   run's pattern preset: the test set (test part within the generator's limits), the unfiltered
   test set (the same plus those outside the limits), on the structure-type split the reference
   and randomized sets, the measured patterns of the class list; and arm B's training set (the
   statistics-part structures within the limits, `training.baseline_patterns_per_structure`
   patterns each, every crystallite size drawn from `simulation.crystallite_size_nm`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from xrdgen.collection.entries import CollectionReport, save_entries
from xrdgen.collection.reading import list_records, read_records
from xrdgen.collection.records import RawRecord, deduplicate
from xrdgen.collection.split import split_by_structure_type
from xrdgen.config import Config
from xrdgen.errors import UserError
from xrdgen.experiment.testsets import randomized_sets, select, simulate
from xrdgen.jsonio import read_json, write_json
from xrdgen.pipeline import read_for_build, split_and_build
from xrdgen.statistics.metadata import Metadata, read_metadata
from xrdgen.statistics.model import Statistics
from xrdgen.training.datasets import LabelledSet, load_measured_set
from xrdgen.training.rundir import InputSpec

TEST_SET = "test"  # the test part of the class list within the generator's limits
UNFILTERED_SET = "test unfiltered"  # the same plus the test structures outside the limits
MEASURED_SET = "measured"
VALIDATION_SET = "validation"  # held-out structure types for the curves and the plateau rule, never reported as test
STRUCTURE_TYPE, RANDOM = "structure_type", "random"
CACHE_FORMAT = 4  # 4: validation set, metadata, entries cache


@dataclass
class ExperimentData:
    split: str
    statistics: Statistics
    classes: list[int]
    baseline: LabelledSet  # arm B's training set
    sets: list[LabelledSet]  # evaluation sets, TEST_SET first
    facts: dict  # counts for the report
    statistics_path: Path  # the statistics file (a Ray generator pool loads it)

    @property
    def curve_set(self) -> LabelledSet:
        """The set of the learning curves and the plateau rule: the validation set, else the test set."""
        return next((s for s in self.sets if s.name == VALIDATION_SET), self.sets[0])


def prepare_data(
    config: Config, out: Path, log: Callable[[str], None] = print, progress: bool = True
) -> dict[str, ExperimentData]:
    """{split: data} for every split of `experiment.splits`, reused from OUT/data/<split> when the
    data settings are unchanged; the collection is read only when some split must be built."""
    result: dict[str, ExperimentData] = {}
    report = keys = measured = metadata = None
    for split in config.experiment.splits:
        folder, key = out / "data" / split, data_key(config, split)
        cached = load_data(folder, key, split)
        if cached is not None:
            log(f"data ({split} split): reusing {folder} (same data settings, key {key})")
            result[split] = cached
            continue
        if report is None:
            spec = config.experiment
            metadata = read_metadata(Path(spec.metadata)) if spec.metadata is not None else None
            report, keys = read_experiment_collection(config, log, progress)
            measured = read_measured(config)
        data = build_split(split, report, keys, metadata, measured, config, folder, log, progress)
        save_data(data, folder, key)
        result[split] = data
    return result


def read_experiment_collection(
    config: Config, log: Callable[[str], None], progress: bool
) -> tuple[CollectionReport, Optional[list[str]]]:
    """(report, structure-type keys from the entries cache or None: computed at the split)."""
    spec = config.experiment
    keys = None
    if spec.entries_cache is not None:
        report, keys = read_for_build(spec.collection, config, entries_cache=Path(spec.entries_cache), log=log, progress=progress)
    else:
        report = read_records(collection_records(config), config.collection, ", ".join(spec.collection), progress=progress)
    c = report.counts
    log(f"collection: {c['records']} records, {c['read']} read, {c['skipped']} skipped, {c['duplicates']} repeated ids")
    return report, keys


def read_measured(config: Config) -> Optional[LabelledSet]:
    if config.experiment.measured is None:
        return None
    return load_measured_set(Path(config.experiment.measured), InputSpec.from_config(config), symprec=config.collection.symprec)


def build_split(
    split: str,
    report: CollectionReport,
    keys: Optional[list[str]],
    metadata: Optional[Metadata],
    measured: Optional[LabelledSet],
    config: Config,
    data_dir: Path,
    log: Callable[[str], None],
    progress: bool,
) -> ExperimentData:
    """Split, build statistics, select and simulate every labelled set of one split (module docstring)."""
    spec = config.experiment
    data_dir.mkdir(parents=True, exist_ok=True)
    if split == RANDOM:
        keys = [f"entry:{i}" for i in range(len(report.entries))]
    provenance = {"split_seed": spec.split_seed, "split": split}
    built = split_and_build(report, config, spec.split_seed, provenance, keys=keys, metadata=metadata)
    statistics = built.statistics
    classes = [int(sg) for sg in statistics.spacegroups]
    if len(classes) < 2:
        raise UserError(
            f"statistics.min_count_per_spacegroup={config.statistics.min_count_per_spacegroup}: only {len(classes)} "
            f"space group(s) reach it in the statistics part of the {split} split; lower it"
        )
    statistics.save(data_dir / "statistics.json.gz")
    log(
        f"{split} split (seed {spec.split_seed}): {len(built.statistics_part)} statistics, {len(built.test_part)} test, "
        f"{built.n_structure_types} groups; {len(classes)} classes (>= {config.statistics.min_count_per_spacegroup})"
    )

    inputs = InputSpec.from_config(config)
    test_part, validation_part = validation_split(built, spec.validation_fraction, spec.split_seed)
    test = select(test_part, classes, config)
    kept = set(test.within_names)
    save_entries(
        [e for e in test_part if e.source_id in kept],
        data_dir / "test_part.json.gz",
        {"part": "test", "split": split, "classes": classes},
    )
    seed = config.seed
    within = simulate(
        test.within, inputs, config, [seed, 1], name=TEST_SET, names=test.within_names, classes=classes, progress=progress
    )
    outside = simulate(
        test.outside, inputs, config, [seed, 2], name="outside", names=test.outside_names, classes=classes, progress=progress
    )
    sets = [within, concatenated(UNFILTERED_SET, [within, outside])]
    randomized_facts = {}
    if split == STRUCTURE_TYPE:
        extra, randomized_facts = randomized_sets(
            test.within, test.within_names, statistics, config, inputs, seed + 1, classes, spec.randomizations, progress
        )
        sets += extra
    validation_facts = {}
    if validation_part:
        validation = select(validation_part, classes, config)
        how = dict(name=VALIDATION_SET, names=validation.within_names, classes=classes, progress=progress)
        sets.append(simulate(validation.within, inputs, config, [seed, 4], **how))
        validation_facts = {"validation_part": len(validation_part), "validation_selection": validation.facts}
    measured_facts = {}
    if measured is not None:
        in_classes = set(classes)
        measured_facts = {
            "measured_total": len(measured),
            "measured_outside_classes": {
                n: int(sg) for n, sg in zip(measured.names, measured.spacegroups) if int(sg) not in in_classes
            },
            "measured_skipped": measured.skipped,
        }
        inside = measured.restricted(classes)
        sets.append(LabelledSet(MEASURED_SET, inside.x, inside.spacegroups, inside.names, inside.skipped, inside.details))

    train = select(built.statistics_part, classes, config)
    baseline = simulate(
        train.within,
        inputs,
        config,
        [seed, 3],
        name="baseline",
        names=train.within_names,
        classes=classes,
        patterns_per_crystal=config.training.baseline_patterns_per_structure,
        progress=progress,
    )
    log(
        f"arm B training set: {len(baseline)} patterns of {len(train.within)} statistics-part structures; "
        + ", ".join(f"{s.name}: {len(s)}" for s in sets)
    )

    stats_counts = {int(sg): statistics.per_spacegroup[sg].count for sg in classes}
    facts = {
        "split": split,
        "preset": config.preset,
        "records": report.counts["records"],
        "duplicates": len(report.duplicates),
        "metadata": config.experiment.metadata,
        "read": len(report.entries),
        "skipped": len(report.skipped),
        "groups": built.n_structure_types,
        "statistics_part": len(built.statistics_part),
        "test_part": len(test_part),
        "test_selection": test.facts,
        "baseline_selection": train.facts,
        "test_part_partially_occupied": sum(not e.ordered for e in built.test_part),
        "classes": classes,
        "n_classes": len(classes),
        "min_count_per_spacegroup": config.statistics.min_count_per_spacegroup,
        "statistics_counts": stats_counts,
        "baseline_patterns": len(baseline),
        "baseline_skipped": baseline.skipped_summary(),
        "sets": {s.name: len(s) for s in sets},
        "set_skipped": {s.name: len(s.skipped) for s in sets},
        "chance": {s.name: chance_levels(s.spacegroups, classes, stats_counts) for s in sets},
        **randomized_facts,
        **validation_facts,
        **measured_facts,
    }
    return ExperimentData(split, statistics, classes, baseline, sets, facts, data_dir / "statistics.json.gz")


def concatenated(name: str, parts: list[LabelledSet]) -> LabelledSet:
    """One set of the rows (and skipped items) of `parts`, in order."""
    n_points = parts[0].x.shape[1]
    return LabelledSet(
        name,
        np.concatenate([p.x for p in parts]).reshape(-1, n_points),
        np.concatenate([p.spacegroups for p in parts]).astype(np.int64),
        [n for p in parts for n in p.names],
        [s for p in parts for s in p.skipped],
        [d for p in parts for d in p.details],
    )


def collection_records(config: Config) -> list[RawRecord]:
    """The experiment's records, optionally a seeded subset of one record per id (`collection.id_column`;
    `read_records` drops and counts repeated ids of the full list itself)."""
    spec = config.experiment
    records = list_records(list(spec.collection), config.collection.id_column)
    if spec.max_structures is not None and spec.max_structures < len(records):
        records, _ = deduplicate(records)
        rng = np.random.default_rng(spec.split_seed)
        records = [records[i] for i in sorted(rng.choice(len(records), min(spec.max_structures, len(records)), replace=False))]
    return records


def validation_split(built, fraction: float, split_seed: int) -> tuple[list, list]:
    """(test entries, validation entries): `fraction` of the test part's groups (structure types on the
    structure-type split, single structures on the random one) set aside, seeded by the split seed."""
    if fraction == 0:
        return built.test_part, []
    key_of = {id(e): k for e, k in zip(built.report.entries, built.keys)}
    keys = [key_of[id(e)] for e in built.test_part]
    return split_by_structure_type(built.test_part, fraction, split_seed + 1, keys=keys)


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
def data_key(config: Config, split: str) -> str:
    """Hash of every setting one split's data depend on: training seeds, steps and the optimiser are
    left out, so a rerun with more seeds or steps reuses the prepared data."""
    dump = config.model_dump(mode="json")
    spec = {
        k: v
        for k, v in dump["experiment"].items()
        if k not in ("seeds", "steps", "eval_every", "splits", "max_steps", "patience")
    }
    parts = {k: v for k, v in dump.items() if k not in ("experiment", "training", "cluster", "evaluation", "ablation")}
    parts.update(
        experiment=spec,
        split=split,
        baseline_patterns=dump["training"]["baseline_patterns_per_structure"],
        cache_format=CACHE_FORMAT,
    )
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def save_data(data: ExperimentData, folder: Path, key: str) -> None:
    """prepared.npz (patterns, space groups) + prepared.json (names, skipped, details, facts); the
    statistics are in statistics.json.gz already."""
    every = [data.baseline] + data.sets
    arrays = {}
    for i, s in enumerate(every):
        arrays[f"x{i}"], arrays[f"y{i}"] = s.x, s.spacegroups
    np.savez(folder / "prepared.npz", **arrays)
    sets = [{"name": s.name, "names": s.names, "skipped": s.skipped, "details": s.details} for s in every]
    write_json(
        folder / "prepared.json", {"key": key, "split": data.split, "classes": data.classes, "sets": sets, "facts": data.facts}
    )


def load_data(folder: Path, key: str, split: str) -> Optional[ExperimentData]:
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
    return ExperimentData(split, statistics, meta["classes"], every[0], every[1:], meta["facts"], folder / "statistics.json.gz")
