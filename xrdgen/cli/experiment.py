"""`xrdgen experiment -o OUT`: the method's central comparison, synthetic stream vs real structures.

    xrdgen experiment --config configs/reproduce.yaml -o results/reproduce           # the full run
    xrdgen experiment --config configs/reproduce.yaml --quick -o runs/quick          # about two minutes
    xrdgen experiment --config configs/reproduce.yaml --seeds 0,1 -o results/two-seeds
    xrdgen experiment --config configs/reproduce_mp26k.yaml --pool -o results/mp26k     # arm A from every core

`--pool`: arm A's stream comes from the Ray generator pool (`cluster.n_generators` actors, "auto"
= every free CPU of the cluster; `services.experiment_stream`) on the cluster of
`cluster.address`/RAY_ADDRESS, or a local Ray started for the command.

Precedence: config file, then the `--quick` overrides (xrdgen.experiment.run.QUICK), then `--seeds`
and `--set`. Repeating a command reuses the runs it finished (see xrdgen/experiment/).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path
from typing import Optional

import typer

from xrdgen.cli.common import ConfigOption, SeedOption, SetOption, rerun_command, start_run
from xrdgen.errors import UserError


def parse_seeds(text: str) -> list[int]:
    """'0,1,2' or '0 1 2' -> [0, 1, 2]; one line naming the problem otherwise."""
    parts = [p for p in text.replace(",", " ").split() if p]
    try:
        seeds = [int(p) for p in parts]
    except ValueError:
        raise UserError(f"--seeds {text!r}: expected integers separated by commas, e.g. --seeds 0,1,2") from None
    if not seeds or len(set(seeds)) != len(seeds):
        raise UserError(f"--seeds {text!r}: give at least one seed, each once")
    return seeds


def experiment(
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (results table, figures, runs)."),
    config_path: Optional[Path] = ConfigOption,
    quick: bool = typer.Option(
        False, "--quick", help="Reduced version (700 records, short grid, few steps, both splits) for tests."
    ),
    seeds: Optional[str] = typer.Option(None, "--seeds", help="Training seeds, e.g. 0,1,2 (overrides experiment.seeds)."),
    seed: Optional[int] = SeedOption,
    sets: Optional[list[str]] = SetOption,
    pool: bool = typer.Option(False, "--pool", help="Arm A's stream from the Ray generator pool (cluster.n_generators actors)."),
) -> None:
    """Train on the synthetic stream (A) and on the statistics-part structures (B); compare on unseen structure types and a random split."""
    # Lazy: Ray, TensorFlow and the science load only when the experiment runs, not for --help.
    from services.experiment_stream import pool_stream
    from services.ray_runtime import ray_session
    from xrdgen.experiment.arms import local_stream
    from xrdgen.experiment.run import QUICK, run

    base = dict(QUICK) if quick else {}
    if seeds is not None:
        base["experiment.seeds"] = parse_seeds(seeds)
    config = start_run(config_path, seed, sets, base=base, full_config_at=out / "config.yaml")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before the Trainer imports TensorFlow: no start-up chatter
    flags = (["--quick"] if quick else []) + (["--seeds", seeds] if seeds else []) + (["--pool"] if pool else [])
    command = rerun_command("experiment", config_path, flags, seed, sets, out)
    with ray_session(config.cluster.address) if pool else contextlib.nullcontext():
        results = run(config, out, command=command, log=typer.echo, open_stream=pool_stream if pool else local_stream)
    typer.echo(f"wrote {out / 'results.md'}, {out / 'results.json'}, " + ", ".join(results["figures"].values()))


def register(app: typer.Typer) -> None:
    app.command("experiment")(experiment)
