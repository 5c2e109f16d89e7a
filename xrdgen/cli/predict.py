"""`xrdgen predict` (space groups of measured patterns) and `xrdgen evaluate` (accuracy on a labelled set).

Batch rule: a bad pattern file is reported on stderr as one line and the others go on; the exit
status is then 1 (0 when every file was read, 2 for a bad model directory or option).
"""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Optional

import numpy as np
import typer

from xrdgen.cli.common import ConfigOption, SeedOption, SetOption, start_run
from xrdgen.config import Config, parse_overrides
from xrdgen.errors import UserError
from xrdgen.evaluation.metrics import evaluate as score
from xrdgen.evaluation.metrics import top_k as rank_top_k
from xrdgen.evaluation.plots import plot_model_input
from xrdgen.evaluation.report import write_report
from xrdgen.jsonio import write_json
from xrdgen.measured.pattern import check_wavelength
from xrdgen.measured.readers import read_pattern
from xrdgen.statistics.model import Statistics
from xrdgen.training.datasets import load_measured_set, simulate_sets
from xrdgen.training.rundir import META_FILE, TrainedModel, load_model_run

ModelArgument = typer.Argument(..., help="Model run directory (model.keras + meta.json), as `xrdgen train` writes it.")
WavelengthOption = typer.Option(
    None, "--wavelength", "-w", help="Å; overrides the files' own. Without both, the model's wavelength is assumed."
)
FillOption = typer.Option("edge", "--fill", help="Grid parts the measurement misses: 'edge' (median of the nearest 0.5°) or 'zero'.")


def _quiet_tensorflow() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # keep TensorFlow's start-up chatter out of the table


def predict(
    model: Path = ModelArgument,
    files: list[Path] = typer.Argument(..., help="Measured patterns: .xy/.txt/.csv (two columns), RRUFF .txt, .xrdml."),
    top_k: int = typer.Option(5, "--top-k", "-k", min=1, help="How many space groups to list per pattern."),
    wavelength: Optional[float] = WavelengthOption,
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the predictions as JSON here."),
    plot_dir: Optional[Path] = typer.Option(None, "--plot", help="Write each pattern as the model sees it (PNG) into this folder."),
    fill: str = FillOption,
) -> None:
    """Most probable space groups of measured powder patterns, with probabilities and crystal systems."""
    _quiet_tensorflow()
    if fill not in ("edge", "zero"):
        raise UserError(f"--fill must be 'edge' or 'zero', not {fill!r}")
    if wavelength is not None:
        check_wavelength("--wavelength", wavelength, "given")
    trained = load_model_run(model)
    k = min(top_k, len(trained.spacegroups))
    if plot_dir is not None:
        plot_dir.mkdir(parents=True, exist_ok=True)

    results, failures = [], []
    inputs, patterns = [], []
    for path in files:
        try:
            pattern = read_pattern(path)
            model_input = trained.model_input(pattern, wavelength=wavelength, fill=fill)
        except UserError as exc:
            failures.append({"file": str(path), "error": str(exc)})
            typer.echo(f"skipped: {exc}", err=True)
            continue
        patterns.append(pattern)
        inputs.append(model_input)

    if inputs:
        probabilities = trained.probabilities(np.stack([m.x for m in inputs]))
        for pattern, model_input, ranked in zip(patterns, inputs, rank_top_k(probabilities, trained.spacegroups, k)):
            entry = {
                "file": pattern.source,
                "wavelength": model_input.wavelength,
                "wavelength_source": model_input.wavelength_source,
                "covered_fraction": round(model_input.covered_fraction, 4),
                "covered_range": [round(v, 4) for v in model_input.covered_range],
                "top_k": ranked,
            }
            if plot_dir is not None:
                name = "_".join(Path(pattern.source).with_suffix("").parts[-2:]) + ".png"
                entry["plot"] = str(plot_model_input(model_input, pattern, plot_dir / name))
            results.append(entry)
            _print_prediction(entry)

    if json_out is not None:
        payload = {"model": str(model), "model_name": trained.name, "predictions": results, "failed": failures}
        write_json(json_out, payload)
        typer.echo(f"wrote {json_out}")
    if failures:
        typer.echo(f"{len(failures)} of {len(files)} file(s) could not be used (see the lines above)", err=True)
        raise typer.Exit(1)


def _print_prediction(entry: dict) -> None:
    lo, hi = entry["covered_range"]
    typer.echo(
        f"\n{entry['file']}  (λ {entry['wavelength']:.5g} Å, {entry['wavelength_source']}; "
        f"measured {lo:.1f}–{hi:.1f}°, {entry['covered_fraction']:.0%} of the grid covered)"
    )
    typer.echo(f"  {'rank':>4}  {'SG':>3}  {'symbol':<10} {'crystal system':<13} {'probability':>11}")
    for rank, row in enumerate(entry["top_k"], start=1):
        typer.echo(f"  {rank:>4}  {row['spacegroup']:>3}  {row['symbol']:<10} {row['crystal_system']:<13} {row['probability']:>11.4f}")


def evaluate(
    model: Path = ModelArgument,
    dataset: Path = typer.Argument(
        ...,
        help="Labelled data: a folder of sample folders (pattern file + structure .cif, like lab17), "
        "or structures to simulate (a folder of CIFs, a CSV with a `cif` column, or saved test entries .json[.gz]).",
    ),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Report folder (default: MODEL/evaluation/<dataset name>)."),
    wavelength: Optional[float] = WavelengthOption,
    randomize: Optional[list[str]] = typer.Option(
        None, "--randomize", help="Also evaluate re-drawn test crystals (the method's randomized test sets): coordinates, lattice or both (repeatable)."
    ),
    statistics: Optional[Path] = typer.Option(
        None, "--statistics", help="Statistics JSON the model was trained from (needed by --randomize lattice/both)."
    ),
    max_structures: Optional[int] = typer.Option(None, "--max-structures", min=1, help="Simulate only the first N structures."),
    simulate: bool = typer.Option(False, "--simulate", help="Simulate the structures even of a folder that has measured patterns."),
    fill: str = FillOption,
    config: Optional[Path] = ConfigOption,
    seed: Optional[int] = SeedOption,
    sets: Optional[list[str]] = SetOption,
) -> None:
    """Top-k accuracy (k=1..10), per-space-group recall, crystal-system confusion: JSON + PNGs."""
    _quiet_tensorflow()
    if fill not in ("edge", "zero"):
        raise UserError(f"--fill must be 'edge' or 'zero', not {fill!r}")
    if wavelength is not None:
        check_wavelength("--wavelength", wavelength, "given")
    trained = load_model_run(model)
    if not dataset.exists():
        raise UserError(f"{dataset}: no such dataset")
    measured = not simulate and dataset.is_dir() and any(p.is_dir() and any(p.glob("*.cif")) for p in dataset.iterdir())
    run_config = _config_for(trained, config, seed, sets)
    if measured:
        if randomize:
            raise UserError(f"{dataset}: --randomize needs structures to simulate, not measured patterns")
        labelled = [load_measured_set(dataset, trained.spec, run_config.collection.symprec, wavelength=wavelength, fill=fill)]
    else:
        stats = Statistics.load(statistics) if statistics is not None else None
        labelled = simulate_sets(dataset, trained.spec, run_config, run_config.seed, stats, randomize or (), max_structures)

    evaluations = []
    for item in labelled:
        if len(item) == 0:
            raise UserError(f"{dataset}: nothing usable in '{item.name}' ({len(item.skipped)} skipped; first: {item.skipped[0]['reason'] if item.skipped else '-'})")
        ev = score(trained.probabilities(item.x), item.spacegroups, trained.spacegroups, name=item.name)
        ev.skipped = item.skipped
        evaluations.append(ev)
        for s in item.skipped:
            typer.echo(f"skipped: {s['reason'] if s['reason'].startswith(s['name']) else s['name'] + ': ' + s['reason']}", err=True)

    out = out or Path(model) / "evaluation" / dataset.stem
    extra = {"model": str(model), "model_name": trained.name, "dataset": str(dataset), "kind": "measured" if measured else "simulated"}
    if measured:
        extra["samples"] = labelled[0].details
    summary = write_report(evaluations, out, extra)
    _print_summary(evaluations)
    typer.echo(f"\nwrote {out / 'summary.json'} and {', '.join(Path(p).name for p in summary['figures'].values())}")


def _config_for(trained: TrainedModel, config_path: Optional[Path], seed: Optional[int], sets: Optional[list[str]]) -> Config:
    """The config a simulated test set uses: the model's own (meta.json) unless --config is given."""
    meta_config = trained.meta.get("config")
    if config_path is not None or not isinstance(meta_config, dict):
        return start_run(config_path, seed, sets)
    data = copy.deepcopy(meta_config)
    overrides = parse_overrides(sets)
    if seed is not None:
        overrides["seed"] = seed
    for dotted, value in overrides.items():
        node = data
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    try:
        run_config = Config(**data)
    except Exception as exc:  # noqa: BLE001 - pydantic's ValidationError and friends: one line
        raise UserError(f"{trained.run_dir / META_FILE}: its config does not validate ({str(exc).splitlines()[0]})") from None
    typer.echo(run_config.describe())
    return run_config


def _print_summary(evaluations) -> None:
    header = f"{'set':<24} {'n':>6} " + " ".join(f"{'top-' + str(k):>7}" for k in (1, 3, 5, 10)) + f" {'system':>7}"
    typer.echo("\n" + header)
    for ev in evaluations:
        d = ev.to_dict()
        cells = " ".join(f"{100 * ev.top_k_accuracy[k - 1]:>6.1f}%" for k in (1, 3, 5, 10))
        typer.echo(f"{ev.name:<24} {ev.n:>6} {cells} {100 * d['crystal_system_accuracy']:>6.1f}%")
        if ev.n_outside_classes:
            typer.echo(f"  ({ev.n_outside_classes} sample(s) have a space group outside the model's class list: counted as misses)")


def register(app: typer.Typer) -> None:
    app.command("predict")(predict)
    app.command("evaluate")(evaluate)
