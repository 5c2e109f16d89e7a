"""`xrdgen model ship RUN_DIR`: make a trained, calibrated run the model shipped in the package.

`xrdgen predict FILE...` without a run directory, and `default` where a run directory is asked for
(`xrdgen evaluate default DATASET`), then use it (xrdgen/training/pretrained.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

model_app = typer.Typer(help="The model shipped in the package.", no_args_is_help=True)


@model_app.command("ship")
def ship(
    run_dir: Path = typer.Argument(
        ..., help="A finished, calibrated run directory (model.keras + meta.json with a temperature)."
    ),
    folder: Optional[Path] = typer.Option(
        None, "--to", help="Destination folder (default: the package's xrdgen/data/pretrained, or $XRDGEN_PRETRAINED)."
    ),
    float16: bool = typer.Option(False, "--float16", help="Store the weights as float16 (half the size; loaded as float32)."),
) -> None:
    """Copy a run's model (no optimizer state) and meta into the package: the default of `xrdgen predict`."""
    # Lazy: TensorFlow loads only when a model is shipped, not for --help.
    from xrdgen.training.pretrained import ship_model

    folder, facts = ship_model(run_dir, folder, float16=float16)
    typer.echo(
        f"shipped {run_dir} to {folder}: {facts['bytes'] / 1e6:.2f} MB, {facts['parameters']:,} {facts['weights_dtype']} "
        f"weights ({facts['model']}, preset {facts['preset']}, {facts['steps']} steps, {facts['patterns_seen']:,} patterns)"
    )


def register(app: typer.Typer) -> None:
    app.add_typer(model_app, name="model")
