"""The model shipped in the package: what `xrdgen predict FILE...` uses when no run directory is given.

A user with one measured pattern should get an answer without training first, so the package
carries one trained, calibrated model in package data, `xrdgen/data/pretrained/`:

    meta.json                 the run's meta.json (class list, input spec, preset, config, calibration)
                              plus "shipped": the facts its model card quotes (`training_facts`)
    model.json, weights.npz   the model without optimizer state (xrdgen/training/weights.py)

so the folder is itself a run directory that `load_model_run` reads. `xrdgen model ship RUN_DIR`
writes it from a finished, calibrated run (`ship_model`); the wheel takes at most
`MAX_SHIPPED_BYTES` of it. `$XRDGEN_PRETRAINED` names another folder to read it from (a test's,
or a model kept outside the package).
"""

from __future__ import annotations

import os
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Optional

from xrdgen.collection.shipped import package_data_dir
from xrdgen.errors import UserError
from xrdgen.jsonio import write_json
from xrdgen.training.rundir import CALIBRATION_KEY, META_FILE, MODEL_FILE, RunDirectory, TrainedModel, load_model_run
from xrdgen.training.weights import has_weights, save_weights

PRETRAINED_ENV = "XRDGEN_PRETRAINED"
DEFAULT_MODEL = "default"  # the name of the shipped model where a run directory is asked for
MAX_SHIPPED_BYTES = 25_000_000  # the wheel's budget for the shipped model
SHIPPED_KEY = "shipped"


def pretrained_dir() -> Path:
    """Where the shipped model lives: $XRDGEN_PRETRAINED, else the package's xrdgen/data/pretrained."""
    override = os.environ.get(PRETRAINED_ENV)
    return Path(override) if override else package_data_dir() / "pretrained"


def load_model(model: Optional[Path | str] = None) -> TrainedModel:
    """A run directory's model, or the shipped one for None or "default" (one line when none is shipped)."""
    if model is not None and str(model) != DEFAULT_MODEL:
        return load_model_run(model)
    folder = pretrained_dir()
    if not ((folder / META_FILE).is_file() and has_weights(folder)):
        raise UserError(
            f"no model is shipped in {folder} yet: give a trained run directory with --model RUN_DIR "
            "(`xrdgen train` writes one; `xrdgen model ship RUN_DIR` makes it the shipped model)"
        )
    return load_model_run(folder)


def _earlier_stages(meta: dict) -> list[RunDirectory]:
    """The runs whose weights this one started from (training.init_from, followed back while they exist)."""
    stages = []
    while len(stages) < 10:  # a bound against a cycle of runs
        start = ((meta.get("config") or {}).get("training") or {}).get("init_from")
        if not (start and (Path(start) / META_FILE).is_file()):
            break
        stages.append(RunDirectory(start))
        meta = stages[-1].read_meta()
    return stages


def training_facts(run: RunDirectory, model, float16: bool) -> dict:
    """What the model card quotes about a run: where from, how long, how many patterns (its earlier
    stages' included: a fine-tuned model has seen those too), what is stored."""
    history = run.read_history()
    meta = run.read_meta()
    stages = _earlier_stages(meta)
    earlier = [h for stage in stages for h in stage.read_history()]
    return {
        "from_run": run.path.name,
        "shipped": datetime.now(UTC).isoformat(timespec="seconds"),
        "trained_created": meta.get("created"),
        "model": meta.get("model"),
        "preset": meta.get("preset"),
        "parameters": int(model.count_params()),
        "weights_dtype": "float16" if float16 else "float32",
        "steps": int(history[-1]["step"]) if history else None,
        "epochs": len(history),
        "patterns_seen": int(sum(h.get("patterns", 0) for h in history + earlier)),
        "training_seconds": round(float(sum(h.get("seconds", 0.0) for h in history + earlier)), 1),
        "earlier_stages": [stage.path.name for stage in stages],
        "last_epoch": {k: history[-1][k] for k in ("test_top1", "test_top5", "test_crystal_system_accuracy") if k in history[-1]}
        if history
        else {},
        "devices": meta.get("devices"),
    }


def ship_model(run_dir: Path | str, folder: Optional[Path] = None, float16: bool = False) -> tuple[Path, dict]:
    """Make a finished, calibrated run's model.keras the shipped model (module docstring); (folder, facts).

    Written beside the destination and its three files renamed into place, so a refusal (no
    calibration, too large) leaves the model shipped before untouched.
    """
    run = RunDirectory(run_dir)
    meta = run.read_meta()
    if CALIBRATION_KEY not in meta:
        raise UserError(f"{run.path}: no calibration in {META_FILE}; fit it first with `xrdgen calibrate {run.path} STATS`")
    if not run.model_path.is_file():
        raise UserError(f"{run.path}: no {MODEL_FILE} (the run has not finished); finish or resume the training first")
    trained = load_model_run(run.path)
    folder = Path(folder) if folder is not None else pretrained_dir()
    if (folder / MODEL_FILE).exists():
        raise UserError(
            f"{folder}: holds a {MODEL_FILE} (a run directory?), which would hide the shipped weights; choose another folder"
        )
    staging = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(staging, ignore_errors=True)
    save_weights(trained.model, staging, float16=float16)
    facts = training_facts(run, trained.model, float16)
    write_json(staging / META_FILE, {**meta, SHIPPED_KEY: facts})
    size = sum(p.stat().st_size for p in staging.iterdir())
    if size > MAX_SHIPPED_BYTES:
        shutil.rmtree(staging)
        hint = "" if float16 else " (--float16 halves it)"
        raise UserError(
            f"{run.path}: the model takes {size / 1e6:.1f} MB, more than the {MAX_SHIPPED_BYTES / 1e6:.0f} MB the package ships{hint}"
        )
    folder.mkdir(parents=True, exist_ok=True)
    for path in staging.iterdir():
        os.replace(path, folder / path.name)
    staging.rmdir()
    facts["bytes"] = size
    return folder, facts
