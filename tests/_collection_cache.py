"""Area A's expensive reads, computed once per pytest process and shared by its test modules.

(A session fixture would need conftest.py; a process-level cache does the same job for the three
modules test_collection.py, test_split.py and test_statistics.py.)
"""

from __future__ import annotations

import functools
from pathlib import Path


@functools.lru_cache(maxsize=None)
def mp40_report(mp40_dir: str):
    """The whole mp40 collection (three CSVs) read as Ray tasks on the running (test) Ray."""
    from services.collection_reader import read_collection_parallel

    return read_collection_parallel(sorted(str(p) for p in Path(mp40_dir).glob("*.csv")), progress=False)


@functools.lru_cache(maxsize=None)
def mp40_split(mp40_dir: str, seed: int = 0):
    from xrdgen.split import split_by_structure_type

    return split_by_structure_type(mp40_report(mp40_dir).entries, 0.3, seed, keys=mp40_group_keys(mp40_dir))


@functools.lru_cache(maxsize=None)
def mp40_group_keys(mp40_dir: str):
    from xrdgen.split import group_keys

    return tuple(group_keys(mp40_report(mp40_dir).entries))


@functools.lru_cache(maxsize=None)
def mp40_statistics(mp40_dir: str, min_count: int = 20):
    from xrdgen.config import StatisticsConfig
    from xrdgen.statistics import build_statistics

    stats_part, _ = mp40_split(mp40_dir)
    return build_statistics(stats_part, StatisticsConfig(min_count_per_spacegroup=min_count), {"source": "mp40"})
