"""The experiment's prepared data of one split (`ExperimentData`) and their cache in OUT/data/<split>/.

`data_key` hashes every setting the data depend on (the collection, split, statistics, pattern
preset, labelled sets and arm B's set; not the training, budget or report settings), so a rerun with
more seeds or steps reuses them, and any other change prepares them again.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from xrdgen.config import Config
from xrdgen.errors import UserError
from xrdgen.jsonio import read_json, write_json
from xrdgen.statistics.model import Statistics
from xrdgen.training.datasets import LabelledSet

TEST_SET = "test"  # the test part of the class list within the generator's limits
UNFILTERED_SET = "test unfiltered"  # the same plus the test structures outside the limits
MEASURED_SET = "measured"
VALIDATION_SET = "validation"  # held-out structure types for the curves and the plateau rule, never reported as test
STRUCTURE_TYPE, RANDOM = "structure_type", "random"
CACHE_FORMAT = 5  # 5: statistics of the statistics part alone (metadata for the synthetic_icsd arm), groups, chance levels


@dataclass
class ExperimentData:
    split: str
    statistics: Statistics
    classes: list[int]
    baseline: LabelledSet  # arm B's training set
    sets: list[LabelledSet]  # evaluation sets, TEST_SET first
    facts: dict  # counts for the report
    statistics_path: Path  # the statistics file (a Ray generator pool loads it)
    key: str = ""  # data_key: what these data depend on (a finished run is reused only on the same data)
    icsd_statistics_path: Optional[Path] = None  # the synthetic_icsd arm's statistics, on the same class list

    def statistics_of(self, arm: str) -> tuple[Statistics, Path]:
        """The statistics a synthetic arm draws from, and their file."""
        if arm == "synthetic_icsd":
            return Statistics.load(self.icsd_statistics_path), self.icsd_statistics_path
        return self.statistics, self.statistics_path

    @property
    def curve_set(self) -> LabelledSet:
        """The set of the learning curves and the plateau rule: the validation set, else the test set."""
        return next((s for s in self.sets if s.name == VALIDATION_SET), self.sets[0])


def data_key(config: Config, split: str) -> str:
    """Hash of every setting one split's data depend on: training seeds, steps and the optimiser are
    left out, so a rerun with more seeds or steps reuses the prepared data."""
    dump = config.model_dump(mode="json")
    spec = {
        k: v
        for k, v in dump["experiment"].items()
        if k
        not in (
            "seeds",
            "steps",
            "eval_every",
            "splits",
            "max_steps",
            "patience",
            "smoothing",
            "bootstrap",
            "min_gain_per_doubling",
        )
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
    icsd = data.icsd_statistics_path.name if data.icsd_statistics_path is not None else None
    write_json(
        folder / "prepared.json",
        {"key": key, "split": data.split, "classes": data.classes, "sets": sets, "facts": data.facts, "icsd_statistics": icsd},
    )
    data.key = key


def load_data(folder: Path, key: str, split: str, log: Callable[[str], None] = print) -> Optional[ExperimentData]:
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
    except FileNotFoundError:
        return None  # nothing prepared yet
    except (UserError, KeyError, ValueError) as exc:
        log(f"data ({split} split): not reusing {folder} ({type(exc).__name__}: {exc}); preparing it again")
        return None
    icsd = folder / meta["icsd_statistics"] if meta.get("icsd_statistics") else None
    return ExperimentData(
        split, statistics, meta["classes"], every[0], every[1:], meta["facts"], folder / "statistics.json.gz", key, icsd
    )
