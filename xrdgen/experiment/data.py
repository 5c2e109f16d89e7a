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
3. statistics of the statistics part alone (`xrdgen.pipeline`), as the method draws every statistic
   from one collection: space-group prior, number of elements and element probabilities count every
   statistics-part structure within the limits (partially occupied ones included, as the method's
   prior counts every ICSD entry; mp26k's are all ordered), Wyckoff tables the ordered ones; the
   class list = the space groups with `statistics.min_count_per_spacegroup` such structures. With
   the synthetic_icsd arm, a second file: the same split with `experiment.metadata`'s prior and
   element statistics (fractional ICSD formulas counted, as every ICSD entry), restricted to that
   class list;
4. the labelled sets (`xrdgen.experiment.testsets` labels and filters), every one simulated in the
   run's pattern preset: the test set (test part within the generator's limits), the unfiltered
   test set (the same plus those outside the limits), on the structure-type split the reference
   and randomized sets, the measured patterns of the class list; and arm B's training set (the
   statistics-part structures within the limits, `training.baseline_patterns_per_structure`
   patterns each, every crystallite size drawn from `simulation.crystallite_size_nm`).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Optional

import numpy as np

from xrdgen.collection.entries import CollectionReport, save_entries
from xrdgen.collection.reading import list_records, read_records
from xrdgen.collection.records import RawRecord, deduplicate
from xrdgen.collection.split import split_by_structure_type
from xrdgen.config import Config
from xrdgen.errors import UserError
from xrdgen.experiment.prepared import (
    MEASURED_SET,
    RANDOM,
    STRUCTURE_TYPE,
    TEST_SET,
    UNFILTERED_SET,
    VALIDATION_SET,
    ExperimentData,
    data_key,
    load_data,
    save_data,
)
from xrdgen.experiment.testsets import randomized_sets, select, simulate
from xrdgen.pipeline import read_for_build, split_and_build
from xrdgen.statistics.metadata import Metadata, read_metadata
from xrdgen.training.datasets import LabelledSet, load_measured_set
from xrdgen.training.rundir import InputSpec


def prepare_data(
    config: Config, out: Path, log: Callable[[str], None] = print, progress: bool = True
) -> dict[str, ExperimentData]:
    """{split: data} for every split of `experiment.splits`, reused from OUT/data/<split> when the
    data settings are unchanged; the collection is read only when some split must be built."""
    result: dict[str, ExperimentData] = {}
    report = keys = measured = metadata = None
    for split in config.experiment.splits:
        folder, key = out / "data" / split, data_key(config, split)
        cached = load_data(folder, key, split, log)
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
    built = split_and_build(report, config, spec.split_seed, provenance, keys=keys)  # one source: the statistics part
    statistics = built.statistics
    classes = [int(sg) for sg in statistics.spacegroups]
    if len(classes) < 2:
        raise UserError(
            f"statistics.min_count_per_spacegroup={config.statistics.min_count_per_spacegroup}: only {len(classes)} "
            f"space group(s) reach it in the statistics part of the {split} split; lower it"
        )
    statistics.save(data_dir / "statistics.json.gz")
    icsd_path = None
    if metadata is not None:  # the synthetic_icsd arm: the metadata's prior and elements, restricted to the classes
        icsd_path = data_dir / "statistics_icsd.json.gz"
        every_class = config.model_copy(deep=True)
        every_class.statistics.min_count_per_spacegroup = every_class.statistics.min_structures_per_class = 1
        icsd = split_and_build(report, every_class, spec.split_seed, provenance, keys=built.keys, metadata=metadata)
        icsd.statistics.restricted(classes).save(icsd_path)
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
        "chance": {s.name: chance_levels(s.spacegroups, classes, statistics.prior, baseline.spacegroups) for s in sets},
        "row_groups": groups_of_rows(built, [s for s in sets if s.name in (TEST_SET, VALIDATION_SET)]),
        **randomized_facts,
        **validation_facts,
        **measured_facts,
    }
    return ExperimentData(split, statistics, classes, baseline, sets, facts, data_dir / "statistics.json.gz", "", icsd_path)


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


def chance_levels(labels: np.ndarray, classes: list[int], prior: dict[int, float], training_labels: np.ndarray) -> dict:
    """What a model that ignores the pattern achieves on `labels` (top-1; top-5 for the uniform guess):

    - uniform: a random class, 1/K;
    - prior_mode: always arm A's most probable class (the statistics' space-group prior);
    - training_mode: always arm B's most frequent training class;
    - test_majority: always this set's own most frequent class (the best any constant answer can do).
    """
    labels = np.asarray(labels)
    if len(labels) == 0:
        return {"uniform_top1": 1.0 / len(classes), "uniform_top5": min(5, len(classes)) / len(classes)}
    share = lambda sg: float(np.mean(labels == sg))  # noqa: E731
    values, counts = np.unique(np.asarray(training_labels), return_counts=True)
    return {
        "uniform_top1": 1.0 / len(classes),
        "uniform_top5": min(5, len(classes)) / len(classes),
        "prior_mode": share(max(classes, key=lambda sg: prior[sg])),
        "training_mode": share(int(values[np.argmax(counts)])) if len(values) else float("nan"),
        "test_majority": float(np.max(np.unique(labels, return_counts=True)[1]) / len(labels)),
    }


def groups_of_rows(built, sets: list[LabelledSet]) -> dict[str, str]:
    """{structure name: its prototype group} for the rows of `sets`: the unit of the bootstrap (structures of
    one prototype are not independent evidence)."""
    key_of = {str(e.source_id): k for e, k in zip(built.report.entries, built.keys)}
    return {name: key_of.get(name, f"alone:{name}") for s in sets for name in s.names}
