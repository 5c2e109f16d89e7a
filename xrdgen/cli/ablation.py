"""`xrdgen ablation -o OUT`: which sample and instrument effects help on measured patterns.

    xrdgen ablation --config configs/ablation_rruff.yaml -o results/ablation_rruff          # the full run
    xrdgen ablation --config configs/ablation_rruff.yaml --quick -o runs/ablation-quick     # seconds

Precedence: config file, then the `--quick` overrides (xrdgen.experiment.ablation.QUICK), then
`--seed` and `--set`. Repeating a command reuses the variants it finished; each OUT/runs/<variant>/
is a calibrated model for `xrdgen evaluate` and `xrdgen predict`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

from xrdgen.cli.common import ConfigOption, SeedOption, SetOption, rerun_command, start_run


def ablation(
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (table, figure, one run directory per variant)."),
    config_path: Optional[Path] = ConfigOption,
    quick: bool = typer.Option(
        False, "--quick", help="Reduced version (short coarse grid, three variants, a few steps) for tests."
    ),
    seed: Optional[int] = SeedOption,
    sets: Optional[list[str]] = SetOption,
) -> None:
    """Train one model per effect group (alone), none and all, equal budget; score each on measured patterns."""
    from xrdgen.experiment.ablation import QUICK, run  # lazy: TensorFlow and the science, only when it runs

    config = start_run(config_path, seed, sets, base=dict(QUICK) if quick else None, full_config_at=out / "config.yaml")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before the Trainer imports TensorFlow: no start-up chatter
    command = rerun_command("ablation", config_path, ["--quick"] if quick else [], seed, sets, out)
    results = run(config, out, command=command, log=typer.echo)
    typer.echo(f"wrote {out / 'ablation.md'}, {out / 'ablation.json'}, {results['figure']}")


def register(app: typer.Typer) -> None:
    app.command("ablation")(ablation)
