"""Options and start-up shared by every subcommand: config file, seed, dotted overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from xrdgen.config import Config, load_config, parse_overrides

ConfigOption = typer.Option(None, "--config", "-c", help="YAML config; defaults apply to what it leaves out.")
SeedOption = typer.Option(None, "--seed", help="Overrides config.seed.")
SetOption = typer.Option(None, "--set", help="Override one field, e.g. --set training.epochs=3 (repeatable).")


def start_run(config_path: Optional[Path], seed: Optional[int], sets: Optional[list[str]], quiet: bool = False) -> Config:
    """Load and validate the config, apply overrides and seed, print it: the first thing every run does."""
    overrides = parse_overrides(sets)
    if seed is not None:
        overrides["seed"] = seed
    config = load_config(config_path, overrides)
    if not quiet:
        typer.echo(config.describe())
    return config
