"""`xrdgen predict` (space groups of measured patterns) and `xrdgen evaluate` (accuracy on a labelled set).

Probabilities are calibrated: softmax(z / T) with the temperature T stored in the run's meta.json
(`xrdgen calibrate`; T = 1 and a line saying so where none is stored). A prediction whose top-1
probability is below `evaluation.confidence_threshold` is marked uncertain and its answer is the
crystal system, whose probability is the sum of its space groups' (xrdgen/evaluation/metrics.py).

Without a run directory (`--model RUN_DIR`, or a run directory before the patterns) `predict` uses
the model shipped in the package (xrdgen/training/pretrained.py); `default` names that model where
a run directory is asked for (`xrdgen evaluate default DATASET`).

Batch rule: a bad pattern file is reported on stderr as one line and the others go on; the exit
status is then 1 (0 when every file was read, 2 for a bad model directory or option).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Optional

import typer

from xrdgen.cli.common import ConfigOption, SeedOption, SetOption, start_run, statistics_file
from xrdgen.errors import UserError
from xrdgen.jsonio import write_json

if TYPE_CHECKING:
    from xrdgen.config import Config
    from xrdgen.training.rundir import TrainedModel

ModelArgument = typer.Argument(
    ..., help="Model run directory (model.keras + meta.json), as `xrdgen train` writes it; 'default': the shipped model."
)
WavelengthOption = typer.Option(
    None, "--wavelength", "-w", help="Å; overrides the files' own. Without both, the model's wavelength is assumed."
)
FillOption = typer.Option(
    "edge", "--fill", help="Grid parts the measurement misses: 'edge' (median of the nearest 0.5°) or 'zero'."
)


def _start(fill: str, wavelength: Optional[float]) -> None:
    """Quiet TensorFlow's start-up chatter (out of the table); check --fill and --wavelength first."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from xrdgen.measured.pattern import check_wavelength  # lazy: the readers load only when patterns are read

    if fill not in ("edge", "zero"):
        raise UserError(f"--fill must be 'edge' or 'zero', not {fill!r}")
    if wavelength is not None:
        check_wavelength("--wavelength", wavelength, "given")


def predict(
    files: list[Path] = typer.Argument(
        ...,
        help="Measured patterns: .xy/.txt/.csv (two columns), RRUFF .txt, .xrdml; a run directory before them is the model.",
    ),
    model: Optional[Path] = typer.Option(
        None,
        "--model",
        "-m",
        help="Model run directory, as `xrdgen train` writes it (default: the model shipped in the package).",
    ),
    top_k: int = typer.Option(5, "--top-k", "-k", min=1, help="How many space groups to list per pattern."),
    wavelength: Optional[float] = WavelengthOption,
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the predictions as JSON here."),
    plot_dir: Optional[Path] = typer.Option(
        None, "--plot", help="Write each pattern as the model sees it (PNG) into this folder."
    ),
    fill: str = FillOption,
    threshold: Optional[float] = typer.Option(
        None,
        "--threshold",
        min=0.0,
        max=1.0,
        help="Top-1 calibrated probability below which a prediction is uncertain (default: the run's evaluation.confidence_threshold).",
    ),
) -> None:
    """Most probable space groups of measured powder patterns: calibrated probabilities, crystal systems."""
    _start(fill, wavelength)
    # Lazy: TensorFlow, NumPy and the readers load only when patterns are predicted, not for --help.
    from xrdgen.evaluation.plots import plot_model_input
    from xrdgen.training.prediction import predict_files
    from xrdgen.training.pretrained import load_model

    if model is None and files and files[0].is_dir():  # `xrdgen predict RUN_DIR FILE...`: a pattern is never a folder
        model, files = files[0], files[1:]
    if not files:
        raise UserError("no pattern file given: xrdgen predict [--model RUN_DIR] FILE...")
    trained = load_model(model)
    threshold, threshold_source = _threshold(trained, threshold)
    typer.echo(_model_line(model, trained))
    typer.echo(
        f"probabilities: softmax(z / T), T = {trained.temperature:.4g} ({trained.temperature_source}); "
        f"uncertain below {threshold:g} ({threshold_source})"
    )

    predictions = predict_files(trained, files, top_k, threshold, wavelength=wavelength, fill=fill)
    results, failures = predictions.entries, predictions.failures
    for failure in failures:
        typer.echo(f"skipped: {failure['error']}", err=True)
    for entry, pattern, model_input in zip(results, predictions.patterns, predictions.inputs):
        if plot_dir is not None:
            name = "_".join(Path(pattern.source).with_suffix("").parts[-2:]) + ".png"
            entry["plot"] = str(plot_model_input(model_input, pattern, plot_dir / name))
        _print_prediction(entry, threshold)

    if json_out is not None:
        payload = {
            "model": str(model) if model is not None else f"shipped ({trained.run_dir})",
            "model_name": trained.name,
            "temperature": trained.temperature,
            "temperature_source": trained.temperature_source,
            "confidence_threshold": threshold,
            "predictions": results,
            "failed": failures,
        }
        write_json(json_out, payload)
        typer.echo(f"wrote {json_out}")
    if failures:
        typer.echo(f"{len(failures)} of {len(files)} file(s) could not be used (see the lines above)", err=True)
        raise typer.Exit(1)


def _model_line(model: Optional[Path], trained: TrainedModel) -> str:
    """Which model answers: the run directory given, or the shipped one with its card's facts."""
    what = f"{trained.name}, {len(trained.spacegroups)} space groups, preset {trained.meta.get('preset', 'unknown')}"
    if model is not None:
        return f"model: {model} ({what})"
    facts = trained.meta.get("shipped", {})
    return f"model: shipped with xrdgen ({what}; trained {facts.get('patterns_seen', 0):,} patterns) from {trained.run_dir}"


def _threshold(trained: TrainedModel, option: Optional[float]) -> tuple[float, str]:
    """--threshold, else the run's config's evaluation.confidence_threshold, else the section's default."""
    # Lazy: called only once a model is loaded (see predict).
    from xrdgen.config import EvaluationConfig
    from xrdgen.training.rundir import META_FILE, config_of_run

    if option is not None:
        return float(option), "--threshold"
    if isinstance(trained.meta.get("config"), dict):
        run_config = config_of_run(trained.meta, trained.run_dir / META_FILE)
        return run_config.evaluation.confidence_threshold, "the run's evaluation.confidence_threshold"
    return EvaluationConfig().confidence_threshold, "evaluation.confidence_threshold default"


def _print_prediction(entry: dict, threshold: float) -> None:
    (m_lo, m_hi), (lo, hi), (g_lo, g_hi) = entry["measured_range"], entry["covered_range"], entry["grid_range"]
    at_model = (
        ""
        if entry["wavelength"] == entry["model_wavelength"]
        else f" = {lo:.1f}–{hi:.1f}° at the model's {entry['model_wavelength']:.5g} Å"
    )
    typer.echo(
        f"\n{entry['file']}\n  λ {entry['wavelength']:.5g} Å, {entry['wavelength_source']}; 2θ {m_lo:.1f}–{m_hi:.1f}° measured{at_model}, "
        f"covering {entry['covered_fraction']:.0%} of the model's {g_lo:g}–{g_hi:g}° grid"
    )
    for note in entry["notes"]:
        typer.echo(f"  note: {note}")
    typer.echo(f"  {'rank':>4}  {'SG':>3}  {'symbol':<10} {'crystal system':<14} {'calibrated p':>12}")
    for rank, row in enumerate(entry["top_k"], start=1):
        typer.echo(
            f"  {rank:>4}  {row['spacegroup']:>3}  {row['symbol']:<10} {row['crystal_system']:<14} {row['probability']:>12.4f}"
        )
    system = entry["crystal_system"]
    others = sorted(entry["crystal_systems"].items(), key=lambda item: -item[1])[1:3]
    typer.echo(
        f"  crystal system: {system['name']} (summed probability {system['probability']:.4f}; then "
        + ", ".join(f"{name} {p:.4f}" for name, p in others)
        + ")"
    )
    if entry["uncertain"]:
        typer.echo(
            f"  UNCERTAIN: top-1 probability {entry['top_k'][0]['probability']:.4f} < threshold {threshold:g}; "
            f"answer: {system['name']} (crystal system, p = {system['probability']:.4f})"
        )


def evaluate(
    model: Path = ModelArgument,
    dataset: Path = typer.Argument(
        ...,
        help="Labelled data: a folder of sample folders (pattern file + structure .cif, like lab17), "
        "or structures to simulate (a folder of CIFs, a CSV with a `cif` column, or saved test entries .json[.gz]).",
    ),
    out: Optional[Path] = typer.Option(
        None,
        "--out",
        "-o",
        help="Report folder (default: MODEL/evaluation/<dataset name>; runs/evaluation/default/<dataset name> for the shipped model).",
    ),
    wavelength: Optional[float] = WavelengthOption,
    randomize: Optional[list[str]] = typer.Option(
        None,
        "--randomize",
        help="Also evaluate re-drawn test crystals (the method's randomized test sets): coordinates, lattice or both (repeatable).",
    ),
    statistics: Optional[Path] = typer.Option(
        None,
        "--statistics",
        help="Statistics file the model was trained from, or 'default' (needed by --randomize lattice/both).",
    ),
    max_structures: Optional[int] = typer.Option(None, "--max-structures", min=1, help="Simulate only the first N structures."),
    simulate: bool = typer.Option(
        False, "--simulate", help="Simulate the structures even of a folder that has measured patterns."
    ),
    fill: str = FillOption,
    config: Optional[Path] = ConfigOption,
    seed: Optional[int] = SeedOption,
    sets: Optional[list[str]] = SetOption,
) -> None:
    """Top-k accuracy (k=1..10), per-space-group recall, crystal-system confusion: JSON + PNGs ('default': the shipped model)."""
    _start(fill, wavelength)
    # Lazy: TensorFlow, pymatgen and the readers load only when a set is evaluated, not for --help.
    from xrdgen.evaluation.calibration import calibration_summary, softmax
    from xrdgen.evaluation.metrics import evaluate as score
    from xrdgen.evaluation.report import write_report
    from xrdgen.measured.dif import is_dif_directory
    from xrdgen.statistics.model import Statistics
    from xrdgen.training.datasets import load_measured_set, simulate_sets
    from xrdgen.training.pretrained import DEFAULT_MODEL, load_model

    trained = load_model(model)
    if not dataset.exists():
        raise UserError(f"{dataset}: no such dataset")
    measured = (
        not simulate
        and dataset.is_dir()
        and (is_dif_directory(dataset) or any(p.is_dir() and any(p.glob("*.cif")) for p in dataset.iterdir()))
    )
    run_config = _config_for(trained, config, seed, sets)
    if measured:
        if randomize:
            raise UserError(f"{dataset}: --randomize needs structures to simulate, not measured patterns")
        labelled = [load_measured_set(dataset, trained.spec, run_config.collection.symprec, wavelength=wavelength, fill=fill)]
    else:
        stats = Statistics.load(statistics_file(statistics)) if statistics is not None else None
        labelled = simulate_sets(dataset, trained.spec, run_config, run_config.seed, stats, randomize or (), max_structures)

    evaluations = []
    for item in labelled:
        if len(item) == 0:
            raise UserError(
                f"{dataset}: nothing usable in '{item.name}' ({len(item.skipped)} skipped; first: {item.skipped[0]['reason'] if item.skipped else '-'})"
            )
        logits = trained.logits(item.x)
        minerals = [d.get("mineral") for d in item.details] if measured else []
        by_mineral = bool(minerals) and all(minerals)  # patterns of one mineral are not independent evidence
        ev = score(
            softmax(logits, trained.temperature),
            item.spacegroups,
            trained.spacegroups,
            name=item.name,
            names=item.names,
            groups=minerals if by_mineral else None,
            groups_are="minerals",
        )
        ev.skipped = item.skipped
        ev.calibration = calibration_summary(
            logits, item.spacegroups, trained.spacegroups, trained.temperature, trained.temperature_source
        )
        evaluations.append(ev)
        for s in item.skipped:
            named = s["name"] in s["reason"].split(": ")[0]  # the reason already starts with the file or folder
            typer.echo(f"skipped: {s['reason'] if named else s['name'] + ': ' + s['reason']}", err=True)

    shipped = str(model) == DEFAULT_MODEL
    out = out or (Path("runs") / "evaluation" / DEFAULT_MODEL if shipped else Path(model) / "evaluation") / dataset.stem
    extra = {
        "model": str(model),
        "model_name": trained.name,
        "dataset": str(dataset),
        "kind": "measured" if measured else "simulated",
        "temperature": {"value": trained.temperature, "source": trained.temperature_source},
    }
    if shipped:
        extra["shipped"] = trained.meta.get("shipped", {})  # the model card's facts (xrdgen/training/pretrained.py)
    if measured:
        extra.update(samples=labelled[0].details, patterns_scored=len(labelled[0]), samples_skipped=len(labelled[0].skipped))
    summary = write_report(evaluations, out, extra)
    if measured:
        typer.echo(
            f"\nscored {extra['patterns_scored']} measured patterns; {extra['samples_skipped']} sample(s) skipped (lines above)"
        )
    _print_summary(evaluations)
    typer.echo(f"\nwrote {out / 'summary.json'} and {', '.join(Path(p).name for p in summary['figures'].values())}")


def _config_for(trained: TrainedModel, config_path: Optional[Path], seed: Optional[int], sets: Optional[list[str]]) -> Config:
    """The config a simulated test set uses: the model's own (meta.json) unless --config is given."""
    from xrdgen.training.rundir import META_FILE, config_of_run, overrides_of  # lazy: see evaluate

    if config_path is not None or not isinstance(trained.meta.get("config"), dict):
        return start_run(config_path, seed, sets)
    run_config = config_of_run(trained.meta, trained.run_dir / META_FILE, overrides_of(sets, seed))
    typer.echo(run_config.describe())
    return run_config


INTERVAL_NAMES = {"top1": "top-1", "top5": "top-5", "crystal_system": "crystal system (summed probability)"}


def _print_summary(evaluations) -> None:
    from xrdgen.training.rundir import NO_TEMPERATURE  # lazy: see evaluate

    header = f"{'set':<24} {'n':>6} " + " ".join(f"{'top-' + str(k):>7}" for k in (1, 3, 5, 10)) + f" {'system':>7}"
    typer.echo("\n" + header)
    for ev in evaluations:
        d = ev.to_dict()
        cells = " ".join(f"{100 * ev.top_k_accuracy[k - 1]:>6.1f}%" for k in (1, 3, 5, 10))
        typer.echo(f"{ev.name:<24} {ev.n:>6} {cells} {100 * d['crystal_system_accuracy']:>6.1f}%")
        if ev.intervals:
            typer.echo(
                "  95 % intervals (bootstrap over "
                + ev.groups
                + "): "
                + ", ".join(f"{INTERVAL_NAMES[k]} {100 * lo:.1f}–{100 * hi:.1f}%" for k, (lo, hi) in ev.intervals.items())
            )
        if ev.n_outside_classes:
            outside = ", ".join(f"{o['name']} (SG {o['spacegroup']})" for o in ev.outside_class_list[:10])
            more = f" and {ev.n_outside_classes - 10} more" if ev.n_outside_classes > 10 else ""
            inside = ev.top_k_accuracy_in_class_list
            typer.echo(
                f"  {ev.n_outside_classes} sample(s) have a space group outside the model's class list, counted as misses: {outside}{more}"
                + (
                    f"\n  over the {ev.n - ev.n_outside_classes} inside it: top-1 {100 * inside[0]:.1f}%, top-5 {100 * inside[4]:.1f}%"
                    if ev.n > ev.n_outside_classes
                    else ""
                )
            )
        c = ev.calibration
        if c:
            stored = c["temperature_source"] != NO_TEMPERATURE
            after = (
                f" -> {100 * c['ece_after']:.1f}% at T = {c['temperature']:.3g} ({c['temperature_source']})"
                if stored
                else f" (T = 1: {NO_TEMPERATURE})"
            )
            typer.echo(
                f"  calibration: ECE {100 * c['ece_before']:.1f}% uncalibrated{after}; "
                f"crystal system by summed probability {100 * d['crystal_system_accuracy_summed_probability']:.1f}%"
            )


def register(app: typer.Typer) -> None:
    app.command("predict")(predict)
    app.command("evaluate")(evaluate)
