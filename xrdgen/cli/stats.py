"""`xrdgen stats build SOURCE... -o OUT`, `xrdgen stats show OUT` and `xrdgen stats ship OUT`.

`build` runs `xrdgen.pipeline.build_statistics_files` (read, structure-type split, statistics,
files beside OUT: see that module) with the reading and the prototype grouping as Ray tasks (a
local Ray is started when none runs; `--serial` does both in this process). `ship` makes a build
the package's `--statistics default` (`xrdgen.collection.shipped`; `make default-statistics`).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Optional

import typer

from xrdgen.cli.common import STATISTICS_HELP, ConfigOption, SeedOption, SetOption, start_run, statistics_file

stats_app = typer.Typer(help="Build and inspect ICSD-style statistics of a crystal collection.", no_args_is_help=True)


@stats_app.command("build")
def build(
    sources: list[str] = typer.Argument(
        ...,
        help="Directories of CIFs or CSVs, CSVs with a 'cif' column (.csv, .csv.gz), CIFs (.cif, .cif.gz), "
        "or 'embedded' (the 406 structures shipped in pymatgen, pyxtal and ASE).",
    ),
    out: Path = typer.Option(..., "--out", "-o", help="Statistics file to write (.json or .json.gz); companions go beside it."),
    serial: bool = typer.Option(False, "--serial", help="Read and group in this process instead of Ray tasks."),
    no_plots: bool = typer.Option(False, "--no-plots", help="Skip the PNG plots."),
    entries_cache: Optional[Path] = typer.Option(
        None,
        "--entries-cache",
        help="Keep the parsed entries and their grouping here; reused while sources and collection config are unchanged.",
    ),
    metadata: Optional[Path] = typer.Option(
        None,
        "--metadata",
        help="Database metadata (space group and formula per entry, e.g. the ICSD's): space-group prior and element statistics from it.",
    ),
    config_path: Optional[Path] = ConfigOption,
    seed: Optional[int] = SeedOption,
    sets: Optional[list[str]] = SetOption,
) -> None:
    """Read a collection, split it by structure type, write statistics, test part, skip report and plots."""
    # Lazy: Ray, pymatgen and spglib load only when a build runs, not for --help.
    from services.collection_reader import ray_mappers
    from xrdgen.pipeline import build_statistics_files

    config = start_run(config_path, seed, sets)
    with contextlib.ExitStack() as stack:
        map_chunks = map_groups = None
        if not serial:
            map_chunks, map_groups = stack.enter_context(ray_mappers(address=config.cluster.address))
        built = build_statistics_files(
            sources,
            out,
            config,
            map_chunks=map_chunks,
            plots=not no_plots,
            log=typer.echo,
            map_groups=map_groups,
            entries_cache=entries_cache,
            metadata=metadata,
        )
    if len(built.statistics.spacegroups) < 2:
        typer.echo(
            f"warning: only {len(built.statistics.spacegroups)} space group(s) reach statistics.min_count_per_spacegroup="
            f"{config.statistics.min_count_per_spacegroup}; lower it (--set statistics.min_count_per_spacegroup=N) "
            "or use a larger collection",
            err=True,
        )


@stats_app.command("show")
def show(path: Path = typer.Argument(..., help=STATISTICS_HELP)) -> None:
    """Print a readable summary of a statistics file ('default': the shipped statistics)."""
    # Lazy: SciPy and the science load only when a file is shown, not for --help.
    from xrdgen.pipeline import min_count_table
    from xrdgen.statistics.model import Statistics

    path = statistics_file(path)
    typer.echo(f"statistics file: {path}")
    statistics = Statistics.load(path)
    typer.echo(statistics.summary())
    typer.echo("  classes for other min counts: " + min_count_table(statistics))
    typer.echo("  class list: " + " ".join(str(sg) for sg in statistics.spacegroups))


@stats_app.command("ship")
def ship(
    path: Path = typer.Argument(..., help="A statistics file written by `xrdgen stats build` (its test part beside it)."),
    folder: Optional[Path] = typer.Option(None, "--to", help="Destination folder (default: the package's xrdgen/data)."),
) -> None:
    """Make a statistics build the shipped `--statistics default` (statistics + compact test part)."""
    # Lazy: SciPy and the science load only when it runs, not for --help.
    from xrdgen.collection.shipped import ship as ship_default
    from xrdgen.pipeline import statistics_paths
    from xrdgen.statistics.model import Statistics

    Statistics.load(path)  # a readable statistics file, or one error line
    stats_out, test_out = ship_default(path, statistics_paths(path)["test_part"], folder)
    for written in (stats_out, test_out):
        typer.echo(f"wrote {written} ({written.stat().st_size / 1e6:.2f} MB)")


def register(app: typer.Typer) -> None:
    app.add_typer(stats_app, name="stats")
