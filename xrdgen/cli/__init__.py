"""The `xrdgen` command: one Typer app, one module per pipeline stage registering its subcommands.

The CLI is the front door: it may call `services/` (Ray) while the science modules of `xrdgen/`
stay Ray-free. Every `UserError` becomes one line on stderr and exit status 2.
"""

from __future__ import annotations

import sys

import typer

from xrdgen.cli import ablation, experiment, generate, model, predict, run, simulate, stats, train
from xrdgen.errors import UserError

app = typer.Typer(
    name="xrdgen",
    help="Teach neural networks to read powder XRD patterns from synthetic crystals.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

for command in (run, stats, simulate, generate, train, predict, model, experiment, ablation):  # the order of `xrdgen --help`
    command.register(app)


def main() -> None:
    try:
        app()
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        sys.exit(2)
