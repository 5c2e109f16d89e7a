"""`xrdgen stats build SOURCE... -o OUT` and `xrdgen stats show OUT`.

`build` runs `xrdgen.pipeline.build_statistics_files` (read, structure-type split, statistics,
files beside OUT: see that module) with the collection read as Ray tasks (a local Ray is started
when none runs; `--serial` reads in this process).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from services.collection_reader import ray_chunk_mapper
from xrdgen.cli.common import ConfigOption, SeedOption, SetOption, start_run
from xrdgen.pipeline import build_statistics_files, min_count_table
from xrdgen.statistics.model import Statistics

stats_app = typer.Typer(help="Build and inspect ICSD-style statistics of a crystal collection.", no_args_is_help=True)


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
    map_chunks = None if serial else ray_chunk_mapper(address=config.cluster.address)
    built = build_statistics_files(sources, out, config, map_chunks=map_chunks, plots=not no_plots, log=typer.echo)
    if len(built.statistics.spacegroups) < 2:
        typer.echo(
            f"warning: only {len(built.statistics.spacegroups)} space group(s) reach statistics.min_count_per_spacegroup="
            f"{config.statistics.min_count_per_spacegroup}; lower it (--set statistics.min_count_per_spacegroup=N) "
            "or use a larger collection",
            err=True,
        )


@stats_app.command("show")
def show(path: Path = typer.Argument(..., help="A statistics file written by `xrdgen stats build`.")) -> None:
    """Print a readable summary of a statistics file."""
    statistics = Statistics.load(path)
    typer.echo(statistics.summary())
    typer.echo("  classes for other min counts: " + min_count_table(statistics))
    typer.echo("  class list: " + " ".join(str(sg) for sg in statistics.spacegroups))


def register(app: typer.Typer) -> None:
    app.add_typer(stats_app, name="stats")
