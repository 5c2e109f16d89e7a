"""From a crystal collection to the statistics the generator samples from: read -> split -> build -> files.

The one path used by `xrdgen stats build`, the Ray services (`services.main_job`), the experiment,
the benchmarks and the tests:

1. read (`read_collection`, or `read_records` for a list the caller prepared): every structure
   parsed, bad ones skipped with their reason, repeated ids left out when `collection.id_column`
   is set. Parallel reading is a `map_chunks` callable passed in (`services.collection_reader`), so
   this module stays Ray-free; None is serial. An entries cache (`xrdgen.collection.cache`) keeps a
   large read (and its grouping) for the next build;
2. split by structure type (`xrdgen.collection.split`): no structure type on both sides,
   reproducible from the split seed; the prototype grouping runs through a `map_groups` callable
   (Ray tasks in the services, serial by default);
3. build the statistics of the statistics part (`xrdgen.statistics.build`), optionally with a
   database's metadata (`xrdgen.statistics.metadata`: the ICSD's space-group prior and element
   statistics) for the steps the metadata can give;
4. write (`build_statistics_files`), beside OUT (`runs/mp40.json.gz` -> base `runs/mp40`):

   - OUT                             the statistics (JSON, gzip when OUT ends in .gz);
   - <base>.test.json.gz             held-out test part: entries (conventional cell, labels, source
                                     id) that `xrdgen.collection.entries.load_entries` reads back, so
                                     later stages simulate the test structures without the collection;
   - <base>.statistics_part.json.gz  the statistics part in the same format (baseline training);
   - <base>.skipped.tsv              every skipped entry with its reason;
   - <base>.prior.png, .lattice.png, .denseness.png   plots of the statistics against the data.

`--statistics default` means the statistics shipped in the package (`default_statistics`, built by
`make default-statistics` and `xrdgen.collection.shipped`), not a build at run time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from xrdgen import __version__ as xrdgen_version
from xrdgen.collection.cache import ReadCache
from xrdgen.collection.entries import CollectionEntry, CollectionReport, save_entries
from xrdgen.collection.reading import ChunkMapper, read_collection
from xrdgen.collection.shipped import DEFAULT_STATISTICS, default_statistics
from xrdgen.collection.split import GroupMapper, group_keys, split_by_structure_type
from xrdgen.config import Config
from xrdgen.errors import UserError
from xrdgen.statistics.build import build_statistics, classes_for_min_counts
from xrdgen.statistics.metadata import Metadata, read_metadata
from xrdgen.statistics.model import Statistics
from xrdgen.statistics.plots import plot_statistics

MIN_COUNT_TABLE = (1, 5, 10, 20, 50, 100)  # class counts printed for other `min_count_per_spacegroup` values
SKIPPED_IN_PROVENANCE = 1000  # skipped entries listed in the statistics file (all are in <base>.skipped.tsv)


@dataclass
class StatisticsBuild:
    """What the pipeline produced: the read report, the split and the statistics (and files, once written)."""

    report: CollectionReport
    keys: list[str]  # structure-type group key per read entry (`group_keys`)
    statistics_part: list[CollectionEntry]
    test_part: list[CollectionEntry]
    statistics: Statistics
    split_seed: int
    paths: dict[str, Path] = field(default_factory=dict)

    @property
    def n_structure_types(self) -> int:
        return len(set(self.keys))


def output_base(out: Path | str) -> str:
    """`runs/x.json.gz` -> `runs/x` (the prefix of the companion files)."""
    name = str(out)
    for suffix in (".json.gz", ".json", ".gz"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def statistics_paths(out: Path) -> dict[str, Path]:
    """The files a statistics build writes (module docstring, step 4), plots left out."""
    base = output_base(out)
    return {
        "statistics": out,
        "test_part": Path(base + ".test.json.gz"),
        "statistics_part": Path(base + ".statistics_part.json.gz"),
        "skipped": Path(base + ".skipped.tsv"),
    }


def resolve_statistics(statistics: Path | str, test: Optional[Path | str] = None) -> tuple[Path, Optional[Path]]:
    """(statistics file, held-out test structures): "default" is the shipped pair, anything else a path.

    For a path, `test` is returned as given (None: no test set).
    """
    if str(statistics) == DEFAULT_STATISTICS:
        shipped_stats, shipped_test = default_statistics()
        return shipped_stats, Path(test) if test is not None else shipped_test
    return Path(statistics), Path(test) if test is not None else None


def split_and_build(
    report: CollectionReport,
    config: Config,
    split_seed: int,
    provenance: Optional[dict] = None,
    keys: Optional[Sequence[str]] = None,
    map_groups: Optional[GroupMapper] = None,
    metadata: Optional[Metadata] = None,
) -> StatisticsBuild:
    """Steps 2-3: structure-type split of the read entries, statistics of the statistics part.

    `keys` (from `group_keys`) may be passed to reuse a grouping, else it is computed with
    `map_groups`; `provenance` adds to what the statistics file records (source, version, split
    seed, counts, skipped entries, config); `metadata` calibrates the statistics (`build_statistics`).
    """
    if not report.entries:
        raise UserError(f"{report.source}: no readable structure (see the skipped list)")
    stats_cfg = config.statistics
    keys = list(keys) if keys is not None else group_keys(report.entries, stats_cfg.prototype_grouping, map_groups)
    stats_part, test_part = split_by_structure_type(report.entries, stats_cfg.test_fraction, split_seed, keys=keys)
    record = {
        "source": report.source,
        "xrdgen_version": xrdgen_version,
        "seed": split_seed,
        "counts": {**report.counts, "statistics_part": len(stats_part), "test_part": len(test_part)},
        "skipped_total": len(report.skipped),
        "skipped_by_reason": dict(report.skipped_by_reason()),
        "skipped": [[s.source_id, s.reason] for s in report.skipped[:SKIPPED_IN_PROVENANCE]],
        "duplicates_total": len(report.duplicates),
        **(provenance or {}),
        "config": config.model_dump(mode="json"),
    }
    try:
        statistics = build_statistics(stats_part, config, record, metadata=metadata)
    except ValueError as exc:
        raise UserError(f"{report.source}: {exc}") from None
    return StatisticsBuild(report, keys, stats_part, test_part, statistics, split_seed)


def read_for_build(
    sources: Sequence[str | Path],
    config: Config,
    map_chunks: Optional[ChunkMapper] = None,
    map_groups: Optional[GroupMapper] = None,
    entries_cache: Optional[Path] = None,
    log: Callable[[str], None] = print,
    progress: bool = True,
) -> tuple[CollectionReport, list[str]]:
    """Step 1 and the grouping of step 2, reused from `entries_cache` when it holds this very read."""
    source = sources[0] if len(sources) == 1 else list(sources)
    grouping = config.statistics.prototype_grouping
    cache = ReadCache(entries_cache, sources, config.collection) if entries_cache is not None else None
    report = cache.load() if cache is not None else None
    if report is not None:
        log(f"entries: reusing {entries_cache} ({len(report.entries)} entries)")
    else:
        report = read_collection(source, config, map_chunks, progress)
        if cache is not None:
            cache.save(report)
            log(f"entries: cached in {entries_cache}")
    keys = cache.group_keys(grouping) if cache is not None else None
    if keys is None:
        keys = group_keys(report.entries, grouping, map_groups)
        if cache is not None:
            cache.save_group_keys(grouping, keys)
    else:
        log(f"structure-type groups ({grouping}): reusing the cached grouping")
    return report, keys


def build_statistics_files(
    sources: Sequence[str | Path],
    out: Path,
    config: Config,
    map_chunks: Optional[ChunkMapper] = None,
    plots: bool = True,
    log: Callable[[str], None] = print,
    progress: bool = True,
    map_groups: Optional[GroupMapper] = None,
    entries_cache: Optional[Path] = None,
    metadata: Optional[Path] = None,
) -> StatisticsBuild:
    """Steps 1-4 with the split seed `config.seed`: everything `xrdgen stats build` promises.

    `entries_cache`: a file keeping the parsed entries and their grouping for the next build of the
    same sources with the same collection config (`xrdgen.collection.cache`). `metadata`: a
    database metadata file (`read_metadata`), read before the collection so a bad one fails at once.
    """
    out = Path(out)
    if not (out.name.endswith(".json") or out.name.endswith(".json.gz")):
        raise UserError(f"{out}: the statistics file must end in .json or .json.gz")
    calibration = read_metadata(metadata) if metadata is not None else None
    report, keys = read_for_build(sources, config, map_chunks, map_groups, entries_cache, log, progress)
    log(report.summary())
    paths = statistics_paths(out)
    built = split_and_build(
        report,
        config,
        config.seed,
        {"test_part_file": paths["test_part"].name, "statistics_part_file": paths["statistics_part"].name},
        keys=keys,
        metadata=calibration,
    )
    log(f"structure-type split (seed {config.seed}): {len(built.statistics_part)} statistics, {len(built.test_part)} test")

    out.parent.mkdir(parents=True, exist_ok=True)
    built.statistics.save(out)
    meta = {"source": report.source, "seed": config.seed, "statistics": out.name}
    save_entries(built.test_part, paths["test_part"], {**meta, "part": "test"})
    save_entries(built.statistics_part, paths["statistics_part"], {**meta, "part": "statistics"})
    paths["skipped"].write_text(report.skipped_report(), encoding="utf-8")
    if plots:
        for i, png in enumerate(plot_statistics(built.statistics, output_base(out), seed=config.seed)):
            paths[f"plot{i}"] = png
    built.paths = paths
    log(built.statistics.summary())
    log("  classes for other min counts: " + min_count_table(built.statistics))
    log("wrote " + ", ".join(str(p) for p in paths.values()))
    return built


def min_count_table(statistics: Statistics) -> str:
    """ ">=1: 120, >=5: 80, ...": how the class list shrinks with `statistics.min_count_per_spacegroup`."""
    table = classes_for_min_counts(statistics, MIN_COUNT_TABLE)
    return ", ".join(f">={m}: {n}" for m, n in table.items())
