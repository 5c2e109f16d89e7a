"""`xrdgen train`: a local (no Ray) training run on this machine.

On the endless synthetic stream (default): `xrdgen.stream.PatternStream` generates, simulates and
augments every batch in this process. In the seed's baseline mode (`--set training.baseline=true`)
the network instead sees a fixed set: the statistics-part structures given with `--train`, simulated
at the two crystallite sizes `training.baseline_sizes_nm`, with dropout on.

The run directory (`training.output_dir`) receives model.keras, meta.json, checkpoints/,
tensorboard/, history.json and accuracy.png; running the same command again resumes from the last
checkpoint. For the distributed version see `python -m services.train`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from xrdgen.cli.common import ConfigOption, SeedOption, SetOption, start_run
from xrdgen.errors import UserError


def _labelled_crystals(source: Path, config) -> list:
    """Crystals of an entries file (xrdgen stats build) or any collection, labelled with spglib's group."""
    from xrdgen.collection import load_entries, read_collection

    name = source.name
    if name.endswith(".json") or name.endswith(".json.gz"):
        entries = load_entries(source)
    else:
        report = read_collection(source, config)
        if report.skipped:
            typer.echo(f"{source}: skipped {len(report.skipped)} unreadable entries", err=True)
        entries = report.entries
    return [e.crystal for e in entries]  # labelled with spglib's space group


def _companion(statistics_path: Path, part: str) -> Optional[Path]:
    """The test/statistics part that `xrdgen stats build` wrote beside the statistics file, if any."""
    from xrdgen.cli.stats import output_base

    path = Path(output_base(statistics_path) + f".{part}.json.gz")
    return path if path.exists() else None


def train(
    statistics_path: Path = typer.Argument(..., help="Statistics file written by `xrdgen stats build`."),
    test: Optional[Path] = typer.Option(
        None, "--test", help="Held-out test structures (default: the test part `xrdgen stats build` wrote beside STATS; or a CSV/CIF folder)."
    ),
    train_source: Optional[Path] = typer.Option(
        None, "--train", help="Baseline mode: structures to train on (default: the statistics part beside STATS; or a CSV/CIF folder)."
    ),
    config_path: Optional[Path] = ConfigOption,
    seed: Optional[int] = SeedOption,
    sets: Optional[list[str]] = SetOption,
) -> None:
    """Train a space-group classifier locally; held-out top-1/top-5 after every epoch."""
    config = start_run(config_path, seed, sets)
    training = config.training.resolved()
    test = test if test is not None else _companion(statistics_path, "test")
    if training.baseline:
        train_source = train_source if train_source is not None else _companion(statistics_path, "statistics_part")
        if train_source is None:
            raise UserError("training.baseline=true: give the statistics-part structures with --train")
    for path in (statistics_path, test, train_source):
        if path is not None and not path.exists():
            raise UserError(f"{path}: no such file or directory")

    import numpy as np

    from xrdgen.statistics import Statistics
    from xrdgen.training import Trainer, build_pattern_set, epoch_batches

    statistics = Statistics.load(statistics_path)
    spacegroups = statistics.spacegroups
    typer.echo(f"statistics: {statistics_path} ({len(spacegroups)} classes)")

    test_set = None
    if test is not None:
        patterns = build_pattern_set(
            _labelled_crystals(test, config), spacegroups, config, seed=config.seed + 1,
            patterns_per_crystal=training.test_patterns_per_structure, progress=True,
        )
        typer.echo(f"test set: {len(patterns)} patterns; skipped {patterns.skipped or 'none'}")
        test_set = (patterns.x, patterns.y)

    batches_per_epoch = None
    if training.baseline:
        fixed = build_pattern_set(
            _labelled_crystals(train_source, config), spacegroups, config, seed=config.seed + 2,
            crystallite_sizes_nm=training.baseline_sizes_nm, progress=True,
        )
        if len(fixed) == 0:
            raise UserError(f"{train_source}: no structure of the statistics' class list to train on")
        typer.echo(f"baseline training set: {len(fixed)} patterns; skipped {fixed.skipped or 'none'}")
        batches = epoch_batches(fixed.x, fixed.y, training.batch_size, seed=config.seed)
        batches_per_epoch = int(np.ceil(len(fixed) / training.batch_size))
    else:
        try:
            from xrdgen.stream import PatternStream
        except ImportError as exc:  # a part of the pipeline is missing in this checkout
            raise UserError(f"the synthetic stream is unavailable ({exc}); use baseline mode with --train") from None
        stream = PatternStream(statistics, config, seed=config.seed)

        def stream_batches():
            while True:
                yield stream.next_batch(training.batch_size)

        batches = stream_batches()

    trainer = Trainer(config, spacegroups, run_dir=training.output_dir, test_set=test_set)
    history = trainer.fit(batches, batches_per_epoch=batches_per_epoch)
    last = history[-1] if history else {}
    typer.echo(f"run directory: {trainer.run_dir} (step {trainer.step})")
    if "test_top1" in last:
        typer.echo(f"held-out top-1 {last['test_top1']:.3f}, top-5 {last['test_top5']:.3f}")
    typer.echo(f"tensorboard --logdir {trainer.run_dir / 'tensorboard'}")


def register(app: typer.Typer) -> None:
    app.command("train")(train)
