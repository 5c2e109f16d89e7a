"""The collection's expensive reads, computed once per pytest process and shared by its test modules.

(A session fixture would need conftest.py; a process-level cache does the same job for the three
modules test_collection.py, test_split.py and test_statistics.py.) Every step is the pipeline's:
the Ray reader of the services, then `xrdgen.pipeline.split_and_build`.
"""

from __future__ import annotations

import functools
from pathlib import Path

from services.collection_reader import read_collection_parallel
from xrdgen.collection.split import group_keys, split_by_structure_type
from xrdgen.config import load_config
from xrdgen.pipeline import split_and_build


@functools.cache
def mp40_report(mp40_dir: str):
    """The whole mp40 collection (three CSVs) read as Ray tasks on the running (test) Ray."""
    csvs = sorted(str(p) for p in Path(mp40_dir).glob("*.csv"))
    return read_collection_parallel(csvs, load_config(), progress=False)


@functools.cache
def mp40_group_keys(mp40_dir: str):
    return tuple(group_keys(mp40_report(mp40_dir).entries))


@functools.cache
def mp40_split(mp40_dir: str, seed: int = 0):
    return split_by_structure_type(mp40_report(mp40_dir).entries, 0.3, seed, keys=mp40_group_keys(mp40_dir))


@functools.cache
def mp40_build(mp40_dir: str, min_count: int = 20):
    """The pipeline's split (seed 0, test fraction 0.3) and statistics of mp40."""
    config = load_config(overrides={"statistics.min_count_per_spacegroup": min_count, "statistics.test_fraction": 0.3, "seed": 0})
    return split_and_build(
        mp40_report(mp40_dir), config, split_seed=0, provenance={"source": "mp40"}, keys=mp40_group_keys(mp40_dir)
    )


def mp40_statistics(mp40_dir: str, min_count: int = 20):
    return mp40_build(mp40_dir, min_count).statistics
