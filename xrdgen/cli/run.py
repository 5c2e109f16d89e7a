"""`xrdgen run` (what `make run` calls): the whole pipeline on this machine, through a real Ray cluster.

The shipped default statistics -> private local Ray head (token auth on) -> `ray job submit`
of `services.train` (generator pool, bounded queue, trainer actor) -> accuracy plot and summary.md
in the run directory -> Ray stopped, also on error or Ctrl-C. See `services/main_job.py`.

Without --config it uses configs/run.yaml (a few minutes of training on a 2-core machine); running
it again resumes the same run directory (`training.output_dir`) from its last checkpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from xrdgen.cli.common import ConfigOption, SeedOption, SetOption, start_run


def run(
    config_path: Optional[Path] = ConfigOption,
    seed: Optional[int] = SeedOption,
    sets: Optional[list[str]] = SetOption,
) -> None:
    """The shipped default statistics, a local Ray head, the training job, plots and summary."""
    from services.main_job import RUN_CONFIG, run_main_job  # lazy: Ray and the science, only when the job runs

    if config_path is None and RUN_CONFIG.exists():
        config_path = RUN_CONFIG
    config = start_run(config_path, seed, sets)
    run_main_job(config, echo=typer.echo)


def register(app: typer.Typer) -> None:
    app.command("run")(run)
