"""Options and start-up shared by every subcommand: config file, seed, dotted overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from xrdgen.config import Config, load_config, parse_overrides

ConfigOption = typer.Option(None, "--config", "-c", help="YAML config; defaults apply to what it leaves out.")
SeedOption = typer.Option(None, "--seed", help="Overrides config.seed.")
SetOption = typer.Option(None, "--set", help="Override one field, e.g. --set training.epochs=3 (repeatable).")


def start_run(
    config_path: Optional[Path],
    seed: Optional[int],
    sets: Optional[list[str]],
    quiet: bool = False,
    run_dir: Optional[Path] = None,
) -> Config:
    """Load and validate the config, apply overrides and seed, announce it: the first thing every run does."""
    overrides = parse_overrides(sets)
    if seed is not None:
        overrides["seed"] = seed
    config = load_config(config_path, overrides)
    if not quiet:
        announce(config, run_dir)
    return config


def announce(config: Config, run_dir: Optional[Path] = None) -> None:
    """Print the values that differ from the defaults (a full dump buries them) and, for a command with
    a run directory, write the full config to `run_dir/config.yaml`: the run is reproducible from it."""
    full = None
    if run_dir is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
        full = run_dir / "config.yaml"
        full.write_text(config.to_yaml())
    typer.echo(config.describe_changes(full))
