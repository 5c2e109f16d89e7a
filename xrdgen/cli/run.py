"""`xrdgen run`: the main job of `make run`.

For now: build statistics from the embedded default collection (structures shipped inside the
installed packages; no download) and print their summary. Area F extends it to the full pipeline.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from xrdgen.cli.common import ConfigOption, SeedOption, SetOption, start_run


def run(
    out: Path = typer.Option(Path("runs/default/statistics.json.gz"), "--out", "-o", help="Statistics file to write."),
    config_path: Optional[Path] = ConfigOption,
    seed: Optional[int] = SeedOption,
    sets: Optional[list[str]] = SetOption,
) -> None:
    """Build statistics from the embedded default collection and print their summary."""
    from xrdgen.cli.stats import build_statistics_files

    config = start_run(config_path, seed, sets)
    build_statistics_files(["default"], out, config)


def register(app: typer.Typer) -> None:
    app.command("run")(run)
