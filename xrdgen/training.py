"""Training a space-group classifier from any stream of (patterns, labels) batches.

The trainer does not know where its batches come from: a plain Python generator on one machine
(`xrdgen train`), the Ray queue in a trainer actor (services/), or a fixed array of patterns in the
seed's baseline mode. What it owns is the optimisation and the bookkeeping of a *run directory*:

    run_dir/
      meta.json        class list (space groups), grid, sqrt_scale, model name, whole config
      model.keras      the trained model (written at the end and whenever training stops early)
      checkpoints/     step_<global step>.keras (weights + optimizer state) + step_<...>.json
      tensorboard/     scalars per epoch (loss, accuracies, learning rate, patterns/s)
      history.json     one entry per epoch: train loss/accuracy, test top-1/top-5, per-class recall
      accuracy.png     the accuracy curves

Optimisation follows the seed (Schopf et al., ML4pXRDs, "Training"): Adam (beta1 0.9, beta2 0.999),
cross-entropy on logits, presets per architecture from `TrainingConfig.resolved()`; for ResNets the
learning rate is halved every `lr_halving_epochs` epochs, lr(epoch) = lr0 * 0.5 ** (epoch // N)
with `epoch` counted from 0 (the original's `floor((1 + epoch) / N)` halves one epoch early).

Resuming: the global step is the optimizer's own iteration counter, saved with the optimizer state in
every checkpoint. Epoch and position inside the epoch are derived from it (step // batches_per_epoch),
so a resumed run continues the step count and the learning-rate schedule exactly where it stopped.

Input scaling: batches are expected in the model's input scaling already (the stream's augmentation
applies `config.augmentation.sqrt_scale` through `xrdgen.augmentation.scale_input`); the pattern sets
built here apply the same function, and meta.json records the flag so that prediction on measured
patterns does too.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional, Sequence

import numpy as np

from xrdgen.config import Config
from xrdgen.errors import UserError

META_FILE = "meta.json"
MODEL_FILE = "model.keras"
HISTORY_FILE = "history.json"
PLOT_FILE = "accuracy.png"
CHECKPOINT_DIR = "checkpoints"
TENSORBOARD_DIR = "tensorboard"
KEEP_CHECKPOINTS = 2
META_VERSION = 1


# ------------------------------------------------------------------------------ fixed pattern sets
@dataclass
class PatternSet:
    """Simulated patterns of known crystals: x (n, n_points) float32 in input scaling, y (n,) int32."""

    x: np.ndarray
    y: np.ndarray
    skipped: dict  # reason -> count (crystals outside the class list, simulator failures)

    def __len__(self) -> int:
        return len(self.y)


def build_pattern_set(
    crystals: Sequence,
    spacegroups: Sequence[int],
    config: Config,
    seed: int,
    crystallite_sizes_nm: Optional[Sequence[float]] = None,
    patterns_per_crystal: int = 1,
    progress: bool = False,
) -> PatternSet:
    """Simulate pure patterns of `crystals` (area B's simulator) labelled by their class index.

    Baseline mode of the seed: the statistics-part structures at the two crystallite sizes
    `config.training.baseline_sizes_nm`, one pattern each. Test sets: `patterns_per_crystal` patterns
    per held-out structure with sizes drawn from `config.simulation.crystallite_size_nm`.
    A crystal whose space group is not a class, or that the simulator rejects, is skipped and counted.
    """
    from tqdm import tqdm

    from xrdgen.augmentation import scale_input
    from xrdgen.simulation import PatternSimulator

    simulator = PatternSimulator(config.simulation, config.grid)
    rng = np.random.default_rng(seed)
    label_of = {int(sg): i for i, sg in enumerate(spacegroups)}
    sizes = list(crystallite_sizes_nm) if crystallite_sizes_nm is not None else [None] * patterns_per_crystal
    xs, ys, skipped = [], [], {}
    for crystal in tqdm(crystals, desc="simulating", unit="crystal", disable=not progress):
        label = label_of.get(int(crystal.spacegroup))
        if label is None:
            skipped["not in class list"] = skipped.get("not in class list", 0) + 1
            continue
        try:
            patterns = [
                scale_input(simulator.simulate(crystal, rng, crystallite_size_nm=size), config.augmentation.sqrt_scale)
                for size in sizes
            ]
        except Exception as exc:  # noqa: BLE001 - one odd crystal must not sink the set
            key = f"simulator: {type(exc).__name__}"
            skipped[key] = skipped.get(key, 0) + 1
            continue
        xs.extend(patterns)
        ys.extend([label] * len(patterns))
    n_points = config.grid.n_points
    x = np.asarray(xs, dtype=np.float32).reshape(-1, n_points)
    return PatternSet(x, np.asarray(ys, dtype=np.int32), skipped)


def epoch_batches(x: np.ndarray, y: np.ndarray, batch_size: int, seed: int) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Endless shuffled passes over a fixed set (baseline mode); the last short batch is kept."""
    rng = np.random.default_rng(seed)
    while True:
        order = rng.permutation(len(y))
        for start in range(0, len(order), batch_size):
            index = order[start : start + batch_size]
            yield x[index], y[index]


# -------------------------------------------------------------------------------------- schedule
def learning_rate_at(epoch: int, initial: float, halving_epochs: Optional[int]) -> float:
    """Step decay of the seed's ResNet training: halve every `halving_epochs` epochs (0-based)."""
    if not halving_epochs:
        return float(initial)
    return float(initial) * 0.5 ** (epoch // halving_epochs)


# ------------------------------------------------------------------------------------ run dir I/O
def _write_json(path: Path, data) -> None:
    """Write via a temporary file so a killed process never leaves half a JSON file."""
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(data, indent=1))
    os.replace(tmp, path)


def _checkpoints(run_dir: Path) -> list[Path]:
    """Complete checkpoints (model file and state file both present), oldest first."""
    folder = Path(run_dir) / CHECKPOINT_DIR
    if not folder.is_dir():
        return []
    found = [p for p in folder.glob("step_*.keras") if not p.name.endswith(".tmp.keras") and p.with_suffix(".json").exists()]
    return sorted(found, key=lambda p: int(p.stem.split("_")[1]))


def latest_checkpoint(run_dir: Path | str) -> Optional[Path]:
    found = _checkpoints(Path(run_dir))
    return found[-1] if found else None


def read_meta(run_dir: Path | str) -> dict:
    path = Path(run_dir) / META_FILE
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{run_dir}: not a training run directory (no {META_FILE})") from None
    except json.JSONDecodeError as exc:
        raise UserError(f"{path}: not valid JSON (line {exc.lineno})") from None


def load_trained(run_dir: Path | str):
    """(keras.Model, meta dict) of a run directory: model.keras, else its latest checkpoint.

    The fallback lets predictions use a run that is still training or was interrupted.
    """
    import keras

    run_dir = Path(run_dir)
    meta = read_meta(run_dir)
    path = run_dir / MODEL_FILE
    if not path.exists():
        path = latest_checkpoint(run_dir)
        if path is None:
            raise UserError(f"{run_dir}: no {MODEL_FILE} and no checkpoint yet")
    try:
        model = keras.models.load_model(path, compile=False)
    except Exception as exc:  # noqa: BLE001 - a damaged file is a user-facing problem
        raise UserError(f"{path}: cannot load the model ({type(exc).__name__}: {exc})") from None
    if model.output_shape[-1] != len(meta["spacegroups"]):
        raise UserError(f"{path}: model has {model.output_shape[-1]} outputs but meta.json lists {len(meta['spacegroups'])} classes")
    return model, meta


# ------------------------------------------------------------------------------------- strategy
def _distribution_strategy():
    """MirroredStrategy over the visible GPUs (one replica on a CPU machine) on the TF backend."""
    import keras

    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU")
    return tf.distribute.MirroredStrategy([d.name for d in gpus] if gpus else ["/cpu:0"])


class _TensorBoard:
    """Per-epoch scalars in TensorBoard's event format, written with TensorFlow's summary ops.

    `tf.summary.scalar` needs the separate `tensorboard` package; the low-level `tf.summary.write`
    with the scalar plugin's metadata writes the same records without it (any Keras backend, as
    long as TensorFlow is importable).
    """

    def __init__(self, folder: Path):
        try:
            import tensorflow as tf
            from tensorflow.core.framework import summary_pb2
        except ImportError:  # pragma: no cover - TF is a project dependency
            self._writer = None
            return
        self._tf = tf
        metadata = summary_pb2.SummaryMetadata()
        metadata.plugin_data.plugin_name = "scalars"
        self._metadata = metadata.SerializeToString()
        self._writer = tf.summary.create_file_writer(str(folder))

    def write(self, step: int, scalars: dict) -> None:
        if self._writer is None:
            return
        tf = self._tf
        with self._writer.as_default():
            for name, value in scalars.items():
                if value is not None and np.isfinite(value):
                    tf.summary.write(name, tf.constant(float(value), tf.float32), step=step, metadata=self._metadata)
        self._writer.flush()


# -------------------------------------------------------------------------------------- trainer
class Trainer:
    """Train `config.training.model` on batches labelled by index into `spacegroups`.

    Args:
        config: the whole Config (training section resolved against the presets; grid gives the
            input length; augmentation.sqrt_scale is recorded).
        spacegroups: the class list; the model has one logit per entry.
        run_dir: the run directory (default `config.training.output_dir`).
        test_set: held-out (x_test, y_test) evaluated after every epoch, in input scaling.
        resume: continue from the latest checkpoint in `run_dir` when there is one.
        log: where progress lines go (print by default; a Ray actor may pass its logger).
        on_epoch_end: called with each history entry (services export metrics from it).
    """

    def __init__(
        self,
        config: Config,
        spacegroups: Sequence[int],
        run_dir: Optional[Path | str] = None,
        test_set: Optional[tuple[np.ndarray, np.ndarray]] = None,
        resume: bool = True,
        log: Callable[[str], None] = print,
        on_epoch_end: Optional[Callable[[dict], None]] = None,
    ):
        import keras

        self.config = config
        self.training = config.training.resolved()
        self.spacegroups = [int(sg) for sg in spacegroups]
        self.run_dir = Path(run_dir if run_dir is not None else self.training.output_dir)
        self.input_length = config.grid.n_points
        self.sqrt_scale = bool(config.augmentation.sqrt_scale)
        self.log = log
        self.on_epoch_end = on_epoch_end
        if test_set is not None:
            x_test, y_test = test_set
            self.x_test = np.asarray(x_test, dtype=np.float32)
            self.y_test = np.asarray(y_test, dtype=np.int64)
            if self.x_test.ndim != 2 or self.x_test.shape[1] != self.input_length:
                raise ValueError(f"test patterns have shape {self.x_test.shape}; expected (n, {self.input_length})")
        else:
            self.x_test = self.y_test = None

        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / CHECKPOINT_DIR).mkdir(exist_ok=True)
        self._check_or_write_meta()
        self.strategy = _distribution_strategy()
        checkpoint = latest_checkpoint(self.run_dir) if resume else None
        with self._scope():
            if checkpoint is not None:
                self.model = keras.models.load_model(checkpoint)
                # Entries written after this checkpoint (a kill between the two writes) are dropped.
                self.history = [h for h in self._read_history() if not h.get("partial") and h["step"] <= self.step]
                self.log(f"resuming from {checkpoint} at step {self.step}")
            else:
                from models import build_model

                dropout = self.training.dropout or self.training.baseline
                self.model = build_model(self.training.model, len(self.spacegroups), self.input_length, dropout=dropout)
                self.model.compile(
                    optimizer=keras.optimizers.Adam(self.training.learning_rate, beta_1=0.9, beta_2=0.999),
                    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                    metrics=[keras.metrics.SparseCategoricalAccuracy(name="accuracy")],
                )
                self.history = []
        self._tensorboard = _TensorBoard(self.run_dir / TENSORBOARD_DIR)

    # ------------------------------------------------------------------------------ bookkeeping
    def _scope(self):
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    @property
    def step(self) -> int:
        """Global number of optimisation steps so far (the optimizer's counter; survives resume)."""
        return int(np.asarray(self.model.optimizer.iterations))

    @property
    def learning_rate(self) -> float:
        return float(np.asarray(self.model.optimizer.learning_rate))

    def _meta(self) -> dict:
        import keras

        return {
            "version": META_VERSION,
            "spacegroups": self.spacegroups,
            "grid": self.config.grid.model_dump(mode="json"),
            "input_length": self.input_length,
            "sqrt_scale": self.sqrt_scale,
            "model": self.training.model,
            "n_classes": len(self.spacegroups),
            "keras_backend": keras.backend.backend(),
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "config": self.config.model_dump(mode="json"),
        }

    def _check_or_write_meta(self) -> None:
        """A run directory holds one experiment: refuse to resume it with a different set-up."""
        path = self.run_dir / META_FILE
        meta = self._meta()
        if path.exists():
            old = read_meta(self.run_dir)
            for key in ("spacegroups", "grid", "sqrt_scale", "model"):
                if old.get(key) != meta[key]:
                    raise UserError(
                        f"{path}: this run was trained with a different {key} ({old.get(key)!r}); "
                        f"choose another training.output_dir or remove the run"
                    )
            meta["created"] = old.get("created", meta["created"])
        _write_json(path, meta)

    def _read_history(self) -> list[dict]:
        path = self.run_dir / HISTORY_FILE
        return json.loads(path.read_text()) if path.exists() else []

    def save_checkpoint(self) -> Path:
        """Model + optimizer state at the current step; older ones beyond the last few are removed."""
        folder = self.run_dir / CHECKPOINT_DIR
        step = self.step
        path = folder / f"step_{step:09d}.keras"
        tmp = folder / f"step_{step:09d}.tmp.keras"
        self.model.save(tmp)
        os.replace(tmp, path)
        _write_json(path.with_suffix(".json"), {"step": step, "epochs_logged": len(self.history), "time": time.time()})
        for old in _checkpoints(self.run_dir)[:-KEEP_CHECKPOINTS]:
            old.unlink(missing_ok=True)
            old.with_suffix(".json").unlink(missing_ok=True)
        return path

    # ------------------------------------------------------------------------------- evaluation
    def evaluate(self) -> dict:
        """Top-1, top-5, per-space-group recall and crystal-system accuracy on the held-out test set.

        The metrics are area E's (`xrdgen.evaluation.evaluate`), so training curves and later
        evaluations of the saved model count the same way. Ranking logits ranks probabilities.
        """
        if self.x_test is None or len(self.y_test) == 0:
            return {}
        from xrdgen.evaluation import evaluate

        logits = np.asarray(self.model.predict(self.x_test, batch_size=256, verbose=0), dtype=np.float64)
        labels = np.asarray(self.spacegroups)[self.y_test]
        result = evaluate(logits, labels, self.spacegroups, k_max=5).to_dict()
        return {
            "test_top1": result["top_k_accuracy"]["1"],
            "test_top5": result["top_k_accuracy"]["5"],
            "test_crystal_system_accuracy": result["crystal_system_accuracy"],
            "test_recall": {int(sg): v["recall"] for sg, v in result["per_spacegroup"].items()},
        }

    # --------------------------------------------------------------------------------- training
    def fit(
        self,
        batches: Iterable[tuple[np.ndarray, np.ndarray]],
        epochs: Optional[int] = None,
        batches_per_epoch: Optional[int] = None,
        max_minutes: Optional[float] = None,
        log_every_s: float = 10.0,
    ) -> list[dict]:
        """Train until `epochs` epochs are done (counting those of a resumed run) or time runs out.

        `batches` yields (x (b, n_points) float32, y (b,) int) in input scaling; x may also be
        framework tensors (tf.data). Returns the history (one entry per epoch).
        """
        epochs = int(epochs if epochs is not None else self.training.epochs)
        per_epoch = int(batches_per_epoch if batches_per_epoch is not None else self.training.batches_per_epoch)
        max_minutes = max_minutes if max_minutes is not None else self.training.max_minutes
        deadline = time.monotonic() + 60.0 * max_minutes if max_minutes else None
        iterator = iter(batches)
        start_step = self.step
        total_steps = epochs * per_epoch
        if start_step >= total_steps:
            self.log(f"nothing to do: step {start_step} already covers {epochs} epochs of {per_epoch} batches")
            self.finish()
            return self.history

        run_start = time.monotonic()
        stopped_early = False
        while self.step < total_steps:
            epoch = self.step // per_epoch
            lr = learning_rate_at(epoch, self.training.learning_rate, self.training.lr_halving_epochs)
            self.model.optimizer.learning_rate = lr
            epoch_start = time.monotonic()
            last_log = epoch_start
            seen = correct = 0
            loss_sum = 0.0
            while self.step < (epoch + 1) * per_epoch:
                try:
                    x, y = next(iterator)
                except StopIteration:
                    stopped_early = True
                    self.log("the batch stream ended")
                    break
                out = self.model.train_on_batch(x, y, return_dict=True)
                n = int(np.shape(y)[0])
                seen += n
                correct += float(out["accuracy"]) * n
                loss_sum += float(out["loss"]) * n
                now = time.monotonic()
                if now - last_log >= log_every_s:
                    last_log = now
                    self._log_progress(epoch, epochs, per_epoch, seen, loss_sum, correct, epoch_start, run_start, start_step, total_steps, deadline)
                if deadline is not None and now >= deadline:
                    stopped_early = True
                    self.log(f"max_minutes={max_minutes} reached at step {self.step}")
                    break
            partial = self.step < (epoch + 1) * per_epoch
            if seen:
                self._end_epoch(epoch, lr, seen, loss_sum, correct, time.monotonic() - epoch_start, partial)
            if stopped_early:
                break
        self.finish()
        return self.history

    def _log_progress(self, epoch, epochs, per_epoch, seen, loss_sum, correct, epoch_start, run_start, start_step, total_steps, deadline=None):
        now = time.monotonic()
        in_epoch = self.step - epoch * per_epoch
        rate_steps = (self.step - start_step) / max(now - run_start, 1e-9)
        rate = seen / max(now - epoch_start, 1e-9)
        eta_epoch = (per_epoch - in_epoch) / max(rate_steps, 1e-9)
        eta_run = (total_steps - self.step) / max(rate_steps, 1e-9)
        if deadline is not None:  # a wall-time budget ends the run first when it is shorter
            eta_run = min(eta_run, max(deadline - now, 0.0))
        self.log(
            f"epoch {epoch + 1}/{epochs} batch {in_epoch}/{per_epoch} step {self.step} "
            f"loss {loss_sum / seen:.4f} acc {correct / seen:.3f} | {rate:.1f} patterns/s | "
            f"ETA epoch {_hms(eta_epoch)}, run {_hms(eta_run)}"
        )

    def _end_epoch(self, epoch, lr, seen, loss_sum, correct, seconds, partial) -> None:
        entry = {
            "epoch": epoch + 1,
            "step": self.step,
            "learning_rate": lr,
            "train_loss": loss_sum / seen,
            "train_accuracy": correct / seen,
            "patterns": seen,
            "seconds": seconds,
            "patterns_per_s": seen / max(seconds, 1e-9),
        }
        entry.update(self.evaluate())
        if partial:
            entry["partial"] = True
        self.history.append(entry)
        _write_json(self.run_dir / HISTORY_FILE, self.history)
        self.save_checkpoint()
        names = ("train_loss", "train_accuracy", "test_top1", "test_top5", "test_crystal_system_accuracy", "learning_rate", "patterns_per_s")
        scalars = {k: entry.get(k) for k in names}
        scalars.update({f"recall/sg{sg:03d}": r for sg, r in entry.get("test_recall", {}).items()})
        self._tensorboard.write(entry["epoch"], scalars)
        test = f" test top-1 {entry['test_top1']:.3f} top-5 {entry['test_top5']:.3f}" if "test_top1" in entry else ""
        self.log(
            f"epoch {entry['epoch']}{' (partial)' if partial else ''} done: step {self.step} lr {lr:.2e} "
            f"loss {entry['train_loss']:.4f} train acc {entry['train_accuracy']:.3f}{test} "
            f"({entry['patterns_per_s']:.1f} patterns/s)"
        )
        if self.on_epoch_end is not None:
            self.on_epoch_end(entry)

    def finish(self) -> Path:
        """Write model.keras and the accuracy plot: the run directory is complete."""
        tmp = self.run_dir / "model.tmp.keras"
        self.model.save(tmp)
        os.replace(tmp, self.run_dir / MODEL_FILE)
        if self.history:
            title = f"{self.training.model}, {len(self.spacegroups)} space groups, step {self.step}"
            plot_history(self.history, self.run_dir / PLOT_FILE, title=title, n_classes=len(self.spacegroups))
        return self.run_dir / MODEL_FILE


def _hms(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def plot_history(history: list[dict], path: Path | str, title: str = "", n_classes: Optional[int] = None) -> Path:
    """Training accuracy and held-out top-1/top-5 per epoch, with the top-5 chance level, as a PNG."""
    from xrdgen.plotting import pyplot

    plt = pyplot()

    epochs = [h["epoch"] for h in history]
    fig, ax = plt.subplots(figsize=(6, 4), dpi=120)
    ax.plot(epochs, [h["train_accuracy"] for h in history], label="training batches (top-1)")
    for key, label in (("test_top1", "held-out top-1"), ("test_top5", "held-out top-5")):
        if all(key in h for h in history):
            ax.plot(epochs, [h[key] for h in history], label=label)
    if n_classes:
        ax.axhline(min(5, n_classes) / n_classes, color="grey", linestyle="--", label="top-5 chance")
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)
    return Path(path)
