"""Options and start-up shared by every subcommand: config file, seed, dotted overrides.

Every module of the CLI imports only typer and the standard library at its top, and each command
imports what it runs inside its body: `xrdgen --help` and `xrdgen COMMAND --help` then load none of
pydantic, NumPy, pymatgen, Numba, Ray or TensorFlow (tests/test_cli.py checks the boundary).
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

if TYPE_CHECKING:
    from xrdgen.config import Config

ConfigOption = typer.Option(None, "--config", "-c", help="YAML config; defaults apply to what it leaves out.")
SeedOption = typer.Option(None, "--seed", help="Overrides config.seed.")
SetOption = typer.Option(None, "--set", help="Override one field, e.g. --set training.epochs=3 (repeatable).")
STATISTICS_HELP = "Statistics file written by `xrdgen stats build`, or 'default': the statistics shipped in the package."


def statistics_file(path: Path) -> Path:
    """A statistics argument as a file: 'default' is the one shipped in the package (xrdgen/data/),
    its held-out test part beside it under the name `xrdgen stats build` gives it; else the path."""
    from xrdgen.pipeline import resolve_statistics  # lazy: see the module docstring

    return resolve_statistics(path)[0]


def start_run(
    config_path: Optional[Path],
    seed: Optional[int],
    sets: Optional[list[str]],
    quiet: bool = False,
    run_dir: Optional[Path] = None,
    base: Optional[dict] = None,
    full_config_at: Optional[Path] = None,
) -> Config:
    """Load and validate the config, apply overrides and seed, announce it: the first thing every run does.

    Precedence: the config file, then `base` (a command's own presets, e.g. `--quick`), `--set`, `--seed`.
    `full_config_at`: where the command itself will write the full config (printed, not written here).
    """
    from xrdgen.config import load_config, parse_overrides  # lazy: see the module docstring

    overrides = {**(base or {}), **parse_overrides(sets)}
    if seed is not None:
        overrides["seed"] = seed
    config = load_config(config_path, overrides)
    if not quiet:
        announce(config, run_dir, full_config_at)
    return config


def announce(config: Config, run_dir: Optional[Path] = None, full_config_at: Optional[Path] = None) -> None:
    """Print the values that differ from the defaults (a full dump buries them) and, for a command with
    a run directory, write the full config to `run_dir/config.yaml`: the run is reproducible from it."""
    full = full_config_at
    if run_dir is not None:
        run_dir.mkdir(parents=True, exist_ok=True)
        full = run_dir / "config.yaml"
        full.write_text(config.to_yaml())
    typer.echo(config.describe_changes(full))


def rerun_command(
    name: str, config_path: Optional[Path], flags: list[str], seed: Optional[int], sets: Optional[list[str]], out: Path
) -> str:
    """The command line that repeats a run (written to its command.txt and report)."""
    command = ["xrdgen", name] + (["--config", str(config_path)] if config_path else []) + flags
    command += (["--seed", str(seed)] if seed is not None else []) + [arg for pair in (sets or []) for arg in ("--set", pair)]
    return shlex.join(command + ["-o", str(out)])
