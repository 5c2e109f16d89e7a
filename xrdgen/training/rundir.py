"""The run directory: what a training run leaves behind and how a trained model is read back.

    run_dir/
      meta.json        class list (space groups), model name, input spec, whole config
      model.keras      the trained model, logits over the class list (written at the end and
                       whenever training stops early)
      best.keras       the model at the best held-out top-1 so far (its step: history.json's best entry)
      checkpoints/     step_<global step>.keras (weights + optimizer state) + step_<...>.json
      tensorboard/     scalars per epoch (loss, accuracies, learning rate, patterns/s)
      history.json     one entry per epoch: train loss/accuracy, test top-1/top-5, per-class recall
      accuracy.png     the accuracy curves

The input spec in meta.json is everything needed to turn a pattern into the model's input, so that
prediction never has to guess it from defaults:

    "input": {"grid": {"two_theta_min": 5.0, "two_theta_max": 90.0, "step": 0.01},
              "wavelength": 1.54056,                # Å, Kα1 of the training simulations
              "preprocessing": {"sqrt_scale": true}} # max 1, then √ of the intensities

The calibration entry (`xrdgen calibrate`, run by the training commands at the end) holds the
temperature T of the calibrated probabilities p = softmax(z / T) (xrdgen/evaluation/calibration.py):

    "calibration": {"method": "temperature scaling (Guo et al. 2017)", "temperature": 1.8,
                    "fitted_on": "1000 held-out synthetic patterns (...)", "nll_before": ..., ...}

A run without it predicts with T = 1 (the plain softmax) and says so. The Trainer rewrites meta.json
when it (re)starts, so a model trained further never keeps a temperature fitted to its older weights.

Every JSON file here is replaced atomically (written beside, then renamed), so a killed process
never leaves half a file. Keras is imported only inside the functions that load a model: the
prediction CLI and the generator actors import this module without paying TensorFlow's start-up.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np
from pydantic import ValidationError

from xrdgen.config import Config, GridConfig, config_from_dict, parse_overrides
from xrdgen.errors import UserError
from xrdgen.jsonio import read_json, write_json
from xrdgen.measured.pattern import MeasuredPattern, check_wavelength
from xrdgen.measured.preprocess import ModelInput, preprocess
from xrdgen.simulation.imperfections import scale_input
from xrdgen.training.weights import WEIGHTS_FILE, has_weights, load_weights

META_FILE = "meta.json"
MODEL_FILE = "model.keras"
BEST_MODEL_FILE = "best.keras"
HISTORY_FILE = "history.json"
PLOT_FILE = "accuracy.png"
CHECKPOINT_DIR = "checkpoints"
TENSORBOARD_DIR = "tensorboard"
KEEP_CHECKPOINTS = 2
CALIBRATION_KEY = "calibration"
NO_TEMPERATURE = "none stored, uncalibrated: run `xrdgen calibrate`"
META_VERSION = 2  # 2: the input spec ("input") replaces the loose "grid"/"sqrt_scale" keys


# ------------------------------------------------------------------------------------ input spec
@dataclass(frozen=True)
class InputSpec:
    """What turns a pattern into this model's input: the 2θ grid, the wavelength and the scaling."""

    grid: GridConfig
    wavelength: float  # Å, the Kα1 wavelength the training patterns were simulated at
    sqrt_scale: bool  # input = √(pattern / max) instead of pattern / max

    @classmethod
    def from_config(cls, config: Config) -> InputSpec:
        """The spec of patterns simulated and scaled with `config` (grid, simulation, augmentation)."""
        return cls(config.grid, float(config.simulation.wavelength_kalpha1), bool(config.augmentation.sqrt_scale))

    @property
    def n_points(self) -> int:
        return self.grid.n_points

    def to_meta(self) -> dict:
        return {
            "grid": self.grid.model_dump(mode="json"),
            "wavelength": self.wavelength,
            "preprocessing": {"sqrt_scale": self.sqrt_scale},
        }

    @classmethod
    def from_meta(cls, meta: dict, path: Path) -> InputSpec:
        """The spec recorded in a meta.json (`path` names it in the one-line errors)."""
        spec = meta.get("input")
        if not isinstance(spec, dict):
            raise UserError(
                f"{path}: no input spec (grid, wavelength, preprocessing); the run predates it, train it again "
                f'or add an "input" entry by hand'
            )
        try:
            grid = GridConfig(**spec["grid"])
            wavelength = float(spec["wavelength"])
            sqrt_scale = spec["preprocessing"]["sqrt_scale"]
        except (KeyError, TypeError, ValueError, ValidationError) as exc:
            what = f"missing {exc}" if isinstance(exc, KeyError) else type(exc).__name__
            raise UserError(f"{path}: bad input spec ({what})") from None
        if not isinstance(sqrt_scale, bool):
            raise UserError(f"{path}: bad input spec (preprocessing.sqrt_scale is {sqrt_scale!r}, not true/false)")
        return cls(grid, check_wavelength(path, wavelength, "in the input spec"), sqrt_scale)

    def scale(self, pattern: np.ndarray) -> np.ndarray:
        """A simulated pattern on this grid in the model's input scaling (float32)."""
        return scale_input(pattern, self.sqrt_scale)

    def model_input(self, pattern: MeasuredPattern, wavelength: Optional[float] = None, fill: str = "edge") -> ModelInput:
        """A measured pattern converted to this wavelength, put on this grid and scaled."""
        return preprocess(pattern, self.grid, self.wavelength, self.sqrt_scale, wavelength=wavelength, fill=fill)


# ---------------------------------------------------------------------------------- the directory
def _replace_json(path: Path, data) -> None:
    """Write via a temporary file so a killed process never leaves half a JSON file."""
    tmp = path.with_name(path.name + ".tmp")
    write_json(tmp, data)
    os.replace(tmp, path)


def _save_keras(model, path: Path) -> Path:
    """model.save via a temporary file: a kill while saving never leaves half a model."""
    tmp = path.with_name(path.stem + ".tmp.keras")
    model.save(tmp)
    os.replace(tmp, path)
    return path


class RunDirectory:
    """The files of one training run, behind one object (layout in the module docstring).

    The trainer writes through it (meta, history, checkpoints, the final and the best model); the
    readers (`load_model_run`, calibration, reports) find the same files by the same names.
    """

    def __init__(self, path: Path | str):
        self.path = Path(path)
        self.meta_path = self.path / META_FILE
        self.model_path = self.path / MODEL_FILE
        self.best_model_path = self.path / BEST_MODEL_FILE
        self.tensorboard_dir = self.path / TENSORBOARD_DIR
        self.plot_path = self.path / PLOT_FILE

    def create(self) -> RunDirectory:
        (self.path / CHECKPOINT_DIR).mkdir(parents=True, exist_ok=True)
        return self

    # meta and history ---------------------------------------------------------------------------
    def read_meta(self) -> dict:
        if not self.meta_path.is_file():
            raise UserError(f"{self.path}: not a training run directory (no {META_FILE})")
        return read_json(self.meta_path, "run meta")

    def write_meta(self, meta: dict) -> None:
        _replace_json(self.meta_path, meta)

    def start(self, meta: dict, must_match: tuple[str, ...]) -> None:
        """Write meta.json for a (re)started run; refuse a run directory made with other `must_match` values.

        A restarted run keeps its creation time and drops an older calibration (fitted to older weights).
        """
        if self.meta_path.exists():
            old = self.read_meta()
            InputSpec.from_meta(old, self.meta_path)  # a run without an input spec: the one-line error names the file
            for key in must_match:
                if old.get(key) != meta[key]:
                    raise UserError(
                        f"{self.meta_path}: this run was trained with a different {key} ({old.get(key)!r}); "
                        f"choose another training.output_dir or remove the run"
                    )
            meta = {**meta, "created": old.get("created", meta.get("created"))}
        self.write_meta(meta)

    def read_history(self) -> list[dict]:
        path = self.path / HISTORY_FILE
        return read_json(path, "training history") if path.exists() else []

    def write_history(self, history: list[dict]) -> None:
        _replace_json(self.path / HISTORY_FILE, history)

    # checkpoints and models ---------------------------------------------------------------------
    def checkpoints(self) -> list[Path]:
        """Complete checkpoints (model file and state file both present), oldest first."""
        folder = self.path / CHECKPOINT_DIR
        if not folder.is_dir():
            return []
        found = [p for p in folder.glob("step_*.keras") if not p.name.endswith(".tmp.keras") and p.with_suffix(".json").exists()]
        return sorted(found, key=lambda p: int(p.stem.split("_")[1]))

    def latest_checkpoint(self) -> Optional[Path]:
        found = self.checkpoints()
        return found[-1] if found else None

    def save_checkpoint(self, model, step: int, epochs_logged: int) -> Path:
        """Model + optimizer state at `step`; older ones beyond the last KEEP_CHECKPOINTS are removed."""
        path = _save_keras(model, self.path / CHECKPOINT_DIR / f"step_{step:09d}.keras")
        _replace_json(path.with_suffix(".json"), {"step": step, "epochs_logged": epochs_logged, "time": time.time()})
        for old in self.checkpoints()[:-KEEP_CHECKPOINTS]:
            old.unlink(missing_ok=True)
            old.with_suffix(".json").unlink(missing_ok=True)
        return path

    def save_model(self, model) -> Path:
        """model.keras: the run directory is complete."""
        return _save_keras(model, self.model_path)

    def save_best_model(self, model) -> Path:
        """best.keras: the model of the best held-out top-1 so far (its step: the best entry of history.json)."""
        return _save_keras(model, self.best_model_path)


def read_meta(run_dir: Path | str) -> dict:
    return RunDirectory(run_dir).read_meta()


def write_calibration(run_dir: Path | str, calibration: dict) -> None:
    """Store a fitted temperature (with how it was fitted) in meta.json, the rest of it unchanged."""
    run = RunDirectory(run_dir)
    meta = run.read_meta()
    meta[CALIBRATION_KEY] = calibration
    run.write_meta(meta)


def temperature_of(meta: dict, path: Path) -> tuple[float, str]:
    """The stored temperature and a phrase saying where it comes from; (1.0, NO_TEMPERATURE) without one."""
    calibration = meta.get(CALIBRATION_KEY)
    if calibration is None:
        return 1.0, NO_TEMPERATURE
    try:
        temperature = float(calibration["temperature"])
    except (KeyError, TypeError, ValueError):
        raise UserError(f"{path}: bad calibration entry (no numeric 'temperature')") from None
    if not (np.isfinite(temperature) and temperature > 0):
        raise UserError(f"{path}: bad calibration entry (temperature {temperature} is not a positive number)")
    return temperature, f"fitted on {calibration.get('fitted_on', 'held-out patterns')}"


def config_of_run(meta: dict, path: Path, overrides: Optional[dict] = None) -> Config:
    """The config a run was trained with (meta.json's "config"), with dotted `overrides` applied."""
    data = meta.get("config")
    if not isinstance(data, dict):
        raise UserError(f"{path}: no 'config' entry; give the config with --config")
    return config_from_dict(data, overrides, f"{path} (its config)")


def overrides_of(sets: Optional[list[str]], seed: Optional[int]) -> dict:
    """--set KEY=VALUE options (and --seed) as dotted overrides."""
    overrides = parse_overrides(sets)
    if seed is not None:
        overrides["seed"] = seed
    return overrides


# --------------------------------------------------------------------------------- trained model
@dataclass
class TrainedModel:
    """A trained classifier and the facts needed to feed it: class list, input spec, temperature."""

    model: object  # keras.Model with logits (or softmax) output
    spacegroups: list[int]
    spec: InputSpec
    name: str
    meta: dict
    run_dir: Path
    temperature: float = 1.0  # calibrated probabilities p = softmax(z / T) (module docstring)
    temperature_source: str = NO_TEMPERATURE

    def model_input(self, pattern: MeasuredPattern, wavelength: Optional[float] = None, fill: str = "edge") -> ModelInput:
        return self.spec.model_input(pattern, wavelength=wavelength, fill=fill)

    def logits(self, x: np.ndarray, batch_size: int = 64) -> np.ndarray:
        """Logits z over the class list for inputs of shape (n, n_points); float64 (n, n_classes).

        A model that ends in a softmax gives log p instead: log p = z − logsumexp(z) differs from z
        by a constant per row, which neither softmax(z / T) nor the ranking sees.
        """
        x = np.asarray(x, dtype=np.float32)
        if x.ndim == 1:
            x = x[None, :]
        if x.shape[1] != self.spec.n_points:
            raise UserError(f"{self.run_dir}: inputs have {x.shape[1]} points but the model's grid has {self.spec.n_points}")
        if len(self.model.input_shape) == 3:
            x = x[:, :, None]
        out = np.asarray(self.model.predict(x, batch_size=batch_size, verbose=0), dtype=np.float64)
        return np.log(np.maximum(out, 1e-300)) if _ends_in_softmax(self.model) else out

    def probabilities(self, x: np.ndarray, batch_size: int = 64, calibrated: bool = True) -> np.ndarray:
        """softmax(z / T) over the class list, T the stored temperature (1 if `calibrated` is False).

        softmax(z / T)_i = exp((z_i − max z) / T) / Σ_j exp((z_j − max z) / T).
        """
        z = self.logits(x, batch_size) / (self.temperature if calibrated else 1.0)
        z = z - z.max(axis=1, keepdims=True)
        np.exp(z, out=z)
        return z / z.sum(axis=1, keepdims=True)


def _ends_in_softmax(model) -> bool:
    activation = getattr(model.layers[-1], "activation", None)
    return getattr(activation, "__name__", "") == "softmax"


def load_model_run(run_dir: Path | str) -> TrainedModel:
    """The model of a run directory: model.keras, else weights without optimizer state (the shipped
    model's form, xrdgen/training/weights.py), else its latest checkpoint, with its meta.json.

    The checkpoint fallback lets predictions use a run that is still training or was interrupted.
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise UserError(f"{run_dir}: no such model run directory")
    meta = read_meta(run_dir)
    meta_path = run_dir / META_FILE
    spec = InputSpec.from_meta(meta, meta_path)
    temperature, source = temperature_of(meta, meta_path)
    if not isinstance(meta.get("spacegroups"), list) or not meta["spacegroups"]:
        raise UserError(f"{meta_path}: no 'spacegroups' class list")
    spacegroups = [int(sg) for sg in meta["spacegroups"]]
    path = run_dir / MODEL_FILE
    if not path.exists():
        path = run_dir / WEIGHTS_FILE if has_weights(run_dir) else RunDirectory(run_dir).latest_checkpoint()
        if path is None:
            raise UserError(f"{run_dir}: no {MODEL_FILE} and no checkpoint yet")
    import keras  # lazy, after the cheap checks: TensorFlow's start-up only to really load a model (module docstring)

    try:
        model = load_weights(run_dir) if path.name == WEIGHTS_FILE else keras.models.load_model(path, compile=False)
    except Exception as exc:  # noqa: BLE001 - a damaged file is a user-facing problem
        raise UserError(f"{path}: cannot load the model ({type(exc).__name__}: {exc})") from None
    if model.output_shape[-1] != len(spacegroups):
        raise UserError(
            f"{path}: the model has {model.output_shape[-1]} outputs but {META_FILE} lists {len(spacegroups)} space groups"
        )
    if model.input_shape[1] not in (None, spec.n_points):
        raise UserError(f"{path}: the model takes {model.input_shape[1]} points but {META_FILE}'s grid has {spec.n_points}")
    return TrainedModel(model, spacegroups, spec, str(meta.get("model", "unknown")), meta, run_dir, temperature, source)
