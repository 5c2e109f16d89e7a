"""`xrdgen train`: a local (no Ray) training run on this machine.

On the endless synthetic stream (default): `PatternStream` generates, simulates and adds the
imperfections to every batch in this process. `training.data` may instead stream patterns of real
structures (`structures`: every pattern with its effects drawn afresh) or a mix of both (`mix`,
`training.synthetic_fraction`), xrdgen/training/structure_stream.py. In the baseline mode of the
method (`--set training.baseline=true`) the network sees a fixed set: the real structures,
`training.baseline_patterns_per_structure` patterns of each (the crystallite size of each drawn
from `simulation.crystallite_size_nm`), with dropout on. The real structures are
`training.structures` (`--train`), by default the statistics part beside the statistics file,
without the held-out test structures.

The run directory (`training.output_dir`) receives model.keras, meta.json, checkpoints/,
tensorboard/, history.json and accuracy.png; running the same command again resumes from the last
checkpoint. For the distributed version see `python -m services.train`.

At the end, `train` calibrates the model (`xrdgen calibrate`, also a command of its own): the
temperature T of p = softmax(z / T) is fitted on `evaluation.calibration_patterns` fresh patterns of
the synthetic stream and stored in meta.json (xrdgen/training/calibrate.py).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from xrdgen.cli.common import STATISTICS_HELP, ConfigOption, SeedOption, SetOption, announce, start_run, statistics_file
from xrdgen.errors import UserError

if TYPE_CHECKING:
    from xrdgen.crystal import Crystal
    from xrdgen.training.datasets import LabelledSet


def _companion(statistics_path: Path, part: str) -> Optional[Path]:
    """The test/statistics part that `xrdgen stats build` wrote beside the statistics file, if any."""
    from xrdgen.pipeline import output_base  # lazy: pymatgen and spglib, not for --help

    path = Path(output_base(statistics_path) + f".{part}.json.gz")
    return path if path.exists() else None


def _read(source: Path, config) -> list:
    """The entries of a structure source (entries file or collection); unreadable ones counted on stderr."""
    from xrdgen.training.datasets import read_structures  # lazy: pymatgen, not for --help

    entries, skipped = read_structures(source, config)
    if skipped:
        typer.echo(f"{source}: skipped {len(skipped)} unreadable entries", err=True)
    return entries


def _simulated(
    name: str, crystals: list[Crystal], names: list[str], spacegroups: list[int], config, seed: int, **how
) -> LabelledSet:
    """The crystals in the class list, simulated with the config's physics and input spec (labels: spglib's space groups)."""
    # Lazy: Numba and pymatgen load only when a set is simulated, not for --help.
    from xrdgen.training.datasets import simulate_set
    from xrdgen.training.rundir import InputSpec

    return simulate_set(
        crystals,
        InputSpec.from_config(config),
        config.simulation,
        seed,
        name=name,
        names=names,
        classes=spacegroups,
        augmentation=config.augmentation,
        progress=True,
        **how,
    )


def train(
    statistics_path: Path = typer.Argument(..., help=STATISTICS_HELP),
    test: Optional[Path] = typer.Option(
        None,
        "--test",
        help="Held-out test structures (default: the test part `xrdgen stats build` wrote beside STATS; or a CSV/CIF folder).",
    ),
    train_source: Optional[Path] = typer.Option(
        None,
        "--train",
        help="Real structures to train on (baseline, training.data structures or mix): sets training.structures "
        "(default: the statistics part beside STATS; or an entries file, a CSV/CIF folder).",
    ),
    validation: Optional[Path] = typer.Option(
        None,
        "--validation",
        help="Labelled measured patterns (RRUFF DIF layout or sample folders) evaluated after every epoch instead of "
        "the test structures: the learning curve, and the set whose top-1 picks best.keras.",
    ),
    config_path: Optional[Path] = ConfigOption,
    seed: Optional[int] = SeedOption,
    sets: Optional[list[str]] = SetOption,
) -> None:
    """Train a space-group classifier locally; held-out top-1/top-5 after every epoch."""
    # Lazy: TensorFlow, Numba and pymatgen load only when training runs, not for --help.
    from xrdgen.statistics.model import Statistics
    from xrdgen.training.calibrate import calibrate_run
    from xrdgen.training.datasets import epoch_batches
    from xrdgen.training.rundir import TENSORBOARD_DIR
    from xrdgen.training.structure_stream import training_stream, training_structures
    from xrdgen.training.trainer import Trainer

    sets = [*(sets or []), *([f"training.structures={train_source}"] if train_source is not None else [])]
    config = start_run(config_path, seed, sets, quiet=True)
    training = config.training.resolved()
    statistics_path = statistics_file(statistics_path)
    if validation is not None and test is not None:
        raise UserError("give --test or --validation: one set is evaluated after every epoch")
    if validation is not None and not validation.is_dir():
        raise UserError(f"{validation}: no such folder of measured patterns")
    test = test if test is not None or validation is not None else _companion(statistics_path, "test")
    train_source = None
    if training.baseline or training.data != "synthetic":
        train_source = training.structures or _companion(statistics_path, "statistics_part")
        if train_source is None:
            raise UserError(
                f"{statistics_path}: no statistics part beside it; give the real structures to train on with --train PATH "
                "(an entries file, e.g. runs/mp26k.entries.json.gz for the shipped default, or a CSV/CIF folder)"
            )
    for path in (statistics_path, test, train_source):
        if path is not None and not path.exists():
            raise UserError(f"{path}: no such file or directory")

    statistics = Statistics.load(statistics_path)
    spacegroups = [int(sg) for sg in statistics.spacegroups]
    announce(config, Path(config.training.output_dir))  # after the input checks: bad input writes nothing
    typer.echo(
        f"statistics: {statistics_path} ({len(spacegroups)} classes); pattern preset: {config.preset} (training and test patterns)"
    )

    test_set, test_entries = None, []
    if test is not None:
        test_entries = _read(test, config)
        crystals, names = [e.crystal for e in test_entries], [str(e.source_id) for e in test_entries]
        patterns = _simulated(
            test.name,
            crystals,
            names,
            spacegroups,
            config,
            config.seed + 1,
            patterns_per_crystal=training.test_patterns_per_structure,
        )
        typer.echo(f"test set: {len(patterns)} patterns; skipped {patterns.skipped_summary() or 'none'}")
        test_set = (patterns.x, patterns.class_indices(spacegroups))
    if validation is not None:
        from xrdgen.training.datasets import load_measured_set  # lazy: the measured readers, not for --help
        from xrdgen.training.rundir import InputSpec  # lazy: with the readers

        measured = load_measured_set(validation, InputSpec.from_config(config), symprec=config.collection.symprec)
        inside = measured.restricted(spacegroups)
        typer.echo(f"validation: {len(inside)} of {len(measured)} measured patterns in the class list ({validation})")
        test_set = (inside.x, inside.class_indices(spacegroups))
    structures = None
    if train_source is not None:
        structures = training_structures(train_source, spacegroups, config, held_out=test_entries)
        typer.echo(structures.summary(train_source))

    trainer = Trainer(config, spacegroups, run_dir=training.output_dir, test_set=test_set)
    batch = trainer.global_batch_size  # batch_size per replica x replicas
    batches_per_epoch = None
    if training.baseline:
        fixed = _simulated(
            train_source.name,
            structures.crystals,
            structures.names,
            spacegroups,
            config,
            config.seed + 2,
            patterns_per_crystal=training.baseline_patterns_per_structure,
        )
        if len(fixed) < batch:
            raise UserError(
                f"{train_source}: {len(fixed)} patterns of the statistics' class list, fewer than one batch of {batch}"
            )
        typer.echo(f"baseline training set: {len(fixed)} patterns; skipped {fixed.skipped_summary() or 'none'}")
        batches = epoch_batches(fixed.x, fixed.class_indices(spacegroups), batch, seed=config.seed)
        batches_per_epoch = len(fixed) // batch
    else:
        stream = training_stream(config, statistics, structures, config.seed)
        if training.data != "synthetic":
            share = f"{training.synthetic_fraction:.0%} synthetic, the rest " if training.data == "mix" else ""
            typer.echo(f"training data: {share}patterns of {len(structures.crystals)} real structures, effects drawn per pattern")
        batches = iter(lambda: stream.next_batch(batch), None)

    history = trainer.fit(batches, batches_per_epoch=batches_per_epoch)
    last = history[-1] if history else {}
    typer.echo(f"run directory: {trainer.run_dir} (step {trainer.step})")
    if "test_top1" in last:
        what = "validation" if validation is not None else "held-out"
        typer.echo(f"{what} top-1 {last['test_top1']:.3f}, top-5 {last['test_top5']:.3f}")
    calibrate_run(trainer.run_dir, statistics, config, statistics_path, log=typer.echo)
    typer.echo(f"tensorboard --logdir {trainer.run_dir / TENSORBOARD_DIR}")


def calibrate(
    run_dir: Path = typer.Argument(..., help="Model run directory (model.keras + meta.json), as `xrdgen train` writes it."),
    statistics_path: Optional[Path] = typer.Argument(
        None,
        help="The statistics file the run was trained from (its class list and generator); 'default': the shipped one. "
        "Not with --measured.",
    ),
    patterns: Optional[int] = typer.Option(
        None, "--patterns", min=1, help="Held-out patterns (default: evaluation.calibration_patterns)."
    ),
    measured: Optional[Path] = typer.Option(
        None,
        "--measured",
        help="Fit T on these labelled measured patterns (RRUFF DIF layout or sample folders) instead of synthetic ones; "
        "5-fold cross-validated ECE reported beside the in-sample one.",
    ),
    seed: Optional[int] = SeedOption,
    sets: Optional[list[str]] = SetOption,
) -> None:
    """Fit the temperature of calibrated probabilities softmax(z / T) on fresh synthetic (or labelled measured) patterns; store it in meta.json."""
    # Lazy: TensorFlow and the science load only when it runs, not for --help.
    from xrdgen.training.calibrate import calibrate_on_measured, calibrate_run
    from xrdgen.training.datasets import load_measured_set
    from xrdgen.training.rundir import META_FILE, config_of_run, load_model_run, overrides_of, read_meta, write_calibration

    if (statistics_path is None) == (measured is None):
        raise UserError("give the run's statistics (synthetic patterns) or --measured DIR (measured patterns), one of them")
    if measured is not None:
        if not measured.is_dir():
            raise UserError(f"{measured}: no such folder of measured patterns")
        trained = load_model_run(run_dir)
        labelled = load_measured_set(
            measured, trained.spec, symprec=config_of_run(trained.meta, run_dir / META_FILE).collection.symprec
        )
        calibration = calibrate_on_measured(trained, labelled, seed=seed or 0)
        write_calibration(run_dir, calibration)
        typer.echo(
            f"temperature T = {calibration['temperature']:.4g} on {calibration['patterns']} measured patterns: ECE "
            f"{100 * calibration['ece_before']:.1f}% -> {100 * calibration['ece_after']:.1f}% in sample, "
            f"{100 * calibration['ece_cross_validated']:.1f}% cross-validated ({calibration['folds']} folds); stored in {run_dir / META_FILE}"
        )
        return
    from xrdgen.statistics.model import Statistics  # lazy: with the synthetic stream

    statistics_path = statistics_file(statistics_path)
    if not statistics_path.exists():
        raise UserError(f"{statistics_path}: no such file")
    overrides = overrides_of(sets, seed)
    if patterns is not None:
        overrides["evaluation.calibration_patterns"] = patterns
    config = config_of_run(read_meta(run_dir), run_dir / META_FILE, overrides)  # the run's own distribution
    calibrate_run(run_dir, Statistics.load(statistics_path), config, statistics_path, log=typer.echo)


def register(app: typer.Typer) -> None:
    app.command("train")(train)
    app.command("calibrate")(calibrate)
