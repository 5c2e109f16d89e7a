"""`xrdgen stats build SOURCE... -o OUT` and `xrdgen stats show OUT`.

`build` reads the collection on Ray (a local Ray is started when none runs), splits it by
structure type, computes the statistics of the statistics part and writes, beside OUT
(e.g. `runs/mp40.json.gz` -> base `runs/mp40`):

- OUT                               the statistics (JSON, gzip when OUT ends in .gz);
- <base>.test.json.gz               held-out test part: entries (conventional cell, labels, source id)
                                    that `xrdgen.collection.load_entries` reads back, so later stages
                                    simulate the test structures without the original collection;
- <base>.statistics_part.json.gz    the statistics part in the same format (baseline training);
- <base>.skipped.tsv                every skipped entry with its reason;
- <base>.prior.png, .lattice.png, .denseness.png   plots of the statistics against the data.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from xrdgen.cli.common import ConfigOption, SeedOption, SetOption, start_run
from xrdgen.errors import UserError

stats_app = typer.Typer(help="Build and inspect ICSD-style statistics of a crystal collection.", no_args_is_help=True)

MIN_COUNT_TABLE = (1, 5, 10, 20, 50, 100)


def output_base(out: Path) -> str:
    """`runs/x.json.gz` -> `runs/x` (the prefix of the companion files)."""
    name = str(out)
    for suffix in (".json.gz", ".json", ".gz"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def build_statistics_files(sources: list[str], out: Path, config, parallel: bool = True, plots: bool = True) -> dict:
    """Read, split, build and write everything `stats build` promises; returns the paths and objects."""
    from xrdgen import __version__ as xrdgen_version
    from xrdgen.collection import read_collection, save_entries
    from xrdgen.split import split_by_structure_type
    from xrdgen.statistics import build_statistics, classes_for_min_counts, plot_statistics

    source = sources[0] if len(sources) == 1 else sources
    if parallel:
        from services.collection_reader import read_collection_parallel

        report = read_collection_parallel(source, config, address=config.cluster.address)
    else:
        report = read_collection(source, config)
    typer.echo(report.summary())
    if not report.entries:
        raise UserError(f"{', '.join(sources)}: no readable structure (see the skipped list)")

    stats_cfg = config.statistics
    stats_part, test_part = split_by_structure_type(report.entries, stats_cfg.test_fraction, config.seed, stats_cfg.prototype_grouping)
    typer.echo(f"structure-type split (seed {config.seed}): {len(stats_part)} statistics, {len(test_part)} test")

    base = output_base(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    paths = {
        "statistics": out,
        "test_part": Path(base + ".test.json.gz"),
        "statistics_part": Path(base + ".statistics_part.json.gz"),
        "skipped": Path(base + ".skipped.tsv"),
    }
    provenance = {
        "source": ", ".join(str(s) for s in sources),
        "xrdgen_version": xrdgen_version,
        "seed": config.seed,
        "counts": {**report.counts, "statistics_part": len(stats_part), "test_part": len(test_part)},
        "skipped_total": len(report.skipped),
        "skipped_by_reason": dict(report.skipped_by_reason()),
        "skipped": [[s.source_id, s.reason] for s in report.skipped[:1000]],
        "test_part_file": paths["test_part"].name,
        "statistics_part_file": paths["statistics_part"].name,
        "config": config.model_dump(mode="json"),
    }
    try:
        statistics = build_statistics(stats_part, config, provenance)
    except ValueError as exc:
        raise UserError(f"{', '.join(sources)}: {exc}") from None
    statistics.save(out)
    meta = {"source": provenance["source"], "seed": config.seed, "statistics": out.name}
    save_entries(test_part, paths["test_part"], {**meta, "part": "test"})
    save_entries(stats_part, paths["statistics_part"], {**meta, "part": "statistics"})
    paths["skipped"].write_text(report.skipped_report(), encoding="utf-8")
    if plots:
        for i, png in enumerate(plot_statistics(statistics, base, seed=config.seed)):
            paths[f"plot{i}"] = png
    typer.echo(statistics.summary())
    table = classes_for_min_counts(statistics, MIN_COUNT_TABLE)
    typer.echo("  classes for other min counts: " + ", ".join(f">={m}: {n}" for m, n in table.items()))
    if len(statistics.spacegroups) < 2:
        typer.echo(
            f"warning: only {len(statistics.spacegroups)} space group(s) reach statistics.min_count_per_spacegroup="
            f"{stats_cfg.min_count_per_spacegroup}; lower it (--set statistics.min_count_per_spacegroup=N) or use a larger collection",
            err=True,
        )
    typer.echo("wrote " + ", ".join(str(p) for p in paths.values()))
    return {"paths": paths, "statistics": statistics, "report": report, "statistics_part": stats_part, "test_part": test_part}


@stats_app.command("build")
def build(
    sources: list[str] = typer.Argument(..., help="A directory of CIFs, one or more CSVs with a 'cif' column, or 'default'."),
    out: Path = typer.Option(..., "--out", "-o", help="Statistics file to write (.json or .json.gz); companions go beside it."),
    serial: bool = typer.Option(False, "--serial", help="Read in this process instead of Ray tasks."),
    no_plots: bool = typer.Option(False, "--no-plots", help="Skip the PNG plots."),
    config_path: Optional[Path] = ConfigOption,
    seed: Optional[int] = SeedOption,
    sets: Optional[list[str]] = SetOption,
) -> None:
    """Read a collection, split it by structure type, write statistics, test part, skip report and plots."""
    config = start_run(config_path, seed, sets)
    if not (out.name.endswith(".json") or out.name.endswith(".json.gz")):
        raise UserError(f"{out}: the statistics file must end in .json or .json.gz")
    build_statistics_files(sources, out, config, parallel=not serial, plots=not no_plots)


@stats_app.command("show")
def show(path: Path = typer.Argument(..., help="A statistics file written by `xrdgen stats build`.")) -> None:
    """Print a readable summary of a statistics file."""
    from xrdgen.statistics import Statistics, classes_for_min_counts

    statistics = Statistics.load(path)
    typer.echo(statistics.summary())
    table = classes_for_min_counts(statistics, MIN_COUNT_TABLE)
    typer.echo("  classes for other min counts: " + ", ".join(f">={m}: {n}" for m, n in table.items()))
    typer.echo("  class list: " + " ".join(str(sg) for sg in statistics.spacegroups))


def register(app: typer.Typer) -> None:
    app.add_typer(stats_app, name="stats")
