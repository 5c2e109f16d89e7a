"""Options and start-up shared by every subcommand: config file, seed, dotted overrides."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
import yaml

from xrdgen.config import Config, load_config
from xrdgen.errors import UserError

ConfigOption = typer.Option(None, "--config", "-c", help="YAML config; defaults apply to what it leaves out.")
SeedOption = typer.Option(None, "--seed", help="Overrides config.seed.")
SetOption = typer.Option(
    None, "--set", help="Override one field, e.g. --set training.epochs=3 (repeatable)."
)


def parse_overrides(pairs: Optional[list[str]]) -> dict:
    """`a.b=value` strings to a dict; values are parsed as YAML scalars (3, 0.1, true, [1, 2])."""
    out = {}
    for pair in pairs or []:
        if "=" not in pair:
            raise UserError(f"--set {pair}: expected KEY=VALUE, e.g. training.epochs=3")
        key, value = pair.split("=", 1)
        out[key.strip()] = yaml.safe_load(value)
    return out


def start_run(config_path: Optional[Path], seed: Optional[int], sets: Optional[list[str]], quiet: bool = False) -> Config:
    """Load and validate the config, apply overrides and seed, print it: the first thing every run does."""
    overrides = parse_overrides(sets)
    if seed is not None:
        overrides["seed"] = seed
    config = load_config(config_path, overrides)
    if not quiet:
        typer.echo(config.describe())
    return config
