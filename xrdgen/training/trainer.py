"""Training a space-group classifier from any stream of (patterns, labels) batches.

The trainer does not know where its batches come from: a plain Python generator on one machine
(`xrdgen train`), the Ray queue in a trainer actor (services/), or a fixed set of patterns in the
baseline mode (`epoch_batches`). What it owns is the optimisation; the files it leaves behind are
the run directory's (`xrdgen.training.rundir`).

Optimisation follows the method (Schopmans et al., ML4pXRDs, "Training"): Adam (beta1 0.9, beta2 0.999),
cross-entropy on logits, presets per architecture from `TrainingConfig.resolved()`; for ResNets the
learning rate is halved every `lr_halving_epochs` epochs, lr(epoch) = lr0 * 0.5 ** (epoch // N)
with `epoch` counted from 0 (the original's `floor((1 + epoch) / N)` halves one epoch early).

Resuming: the global step is the optimizer's own iteration counter, saved with the optimizer state in
every checkpoint. Epoch and position inside the epoch are derived from it (step // batches_per_epoch),
so a resumed run continues the step count and the learning-rate schedule exactly where it stopped.

Input scaling: batches are expected in the model's input scaling already (the stream's augmentation
applies `config.augmentation.sqrt_scale` through `scale_input`, the fixed sets through
`InputSpec.scale`); meta.json records the input spec so that prediction on measured patterns
scales the same way.

Keras and TensorFlow are imported inside the functions that need them, not at module top: the CLI
(`xrdgen --help`, `xrdgen predict`) and the experiment import this module, and TensorFlow's start-up
takes seconds.

(A little over 350 lines: the training loop with its per-epoch bookkeeping and logging, plus the two
small TensorFlow adapters only it uses, the distribution strategy and the TensorBoard writer.)
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Optional

import numpy as np

from xrdgen.config import Config
from xrdgen.errors import UserError
from xrdgen.evaluation.metrics import evaluate
from xrdgen.training.plots import plot_history
from xrdgen.training.rundir import (
    CHECKPOINT_DIR,
    META_FILE,
    META_VERSION,
    PLOT_FILE,
    TENSORBOARD_DIR,
    InputSpec,
    latest_checkpoint,
    load_model_run,
    read_history,
    read_meta,
    save_checkpoint,
    save_model,
    write_history,
    write_meta,
)


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
    """Step decay of the method's ResNet training: halve every `halving_epochs` epochs (0-based)."""
    if not halving_epochs:
        return float(initial)
    return float(initial) * 0.5 ** (epoch // halving_epochs)


# ------------------------------------------------------------------------------------- strategy
def _distribution_strategy():
    """MirroredStrategy over the visible GPUs (one replica on a CPU machine) on the TF backend."""
    import keras  # lazy: TensorFlow's start-up (module docstring)

    if keras.backend.backend() != "tensorflow":
        return None
    import tensorflow as tf  # lazy: TensorFlow's start-up (module docstring)

    gpus = tf.config.list_logical_devices("GPU")
    return tf.distribute.MirroredStrategy([d.name for d in gpus] if gpus else ["/cpu:0"])


class _TensorBoard:
    """Per-epoch scalars in TensorBoard's event format, written with TensorFlow's summary ops.

    `tf.summary.scalar` needs the separate `tensorboard` package; the low-level `tf.summary.write`
    with the scalar plugin's metadata writes the same records without it (any Keras backend, as
    long as TensorFlow is importable).
    """

    def __init__(self, folder: Path):
        try:  # lazy: TensorFlow's start-up (module docstring)
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
        config: the whole Config (training section resolved against the presets; grid, simulation
            wavelength and augmentation.sqrt_scale make the input spec recorded in meta.json).
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
        import keras  # lazy: TensorFlow's start-up (module docstring)

        from models import build_model  # the architectures are Keras models

        self.config = config
        self.training = config.training.resolved()
        self.spacegroups = [int(sg) for sg in spacegroups]
        self.run_dir = Path(run_dir if run_dir is not None else self.training.output_dir)
        self.spec = InputSpec.from_config(config)
        self.input_length = self.spec.n_points
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
                self.history = [h for h in read_history(self.run_dir) if not h.get("partial") and h["step"] <= self.step]
                self.log(f"resuming from {checkpoint} at step {self.step}")
            else:
                dropout = self.training.dropout or self.training.baseline
                self.model = build_model(self.training.model, len(self.spacegroups), self.input_length, dropout=dropout)
                if self.training.init_from is not None:
                    self.model.set_weights(self._start_weights(Path(self.training.init_from)))
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
        import keras  # lazy: TensorFlow's start-up (module docstring)

        return {
            "version": META_VERSION,
            "spacegroups": self.spacegroups,
            "model": self.training.model,
            "input": self.spec.to_meta(),
            "preset": self.config.preset,  # pattern preset of the training data (pure or measured)
            "n_classes": len(self.spacegroups),
            "keras_backend": keras.backend.backend(),
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "config": self.config.model_dump(mode="json"),
        }

    def _check_or_write_meta(self) -> None:
        """A run directory holds one experiment: refuse to resume it with a different set-up."""
        path = self.run_dir / META_FILE
        meta = self._meta()
        if path.exists():
            old = read_meta(self.run_dir)
            InputSpec.from_meta(old, path)  # a run without an input spec: the one-line error names the file
            for key in ("spacegroups", "input", "model", "preset"):
                if old.get(key) != meta[key]:
                    raise UserError(
                        f"{path}: this run was trained with a different {key} ({old.get(key)!r}); "
                        f"choose another training.output_dir or remove the run"
                    )
            meta["created"] = old.get("created", meta["created"])
        write_meta(self.run_dir, meta)

    def _start_weights(self, run_dir: Path) -> list:
        """The weights of the model in `run_dir` (training.init_from), which must fit this run."""
        start = load_model_run(run_dir)
        if list(start.spacegroups) != self.spacegroups or start.spec.n_points != self.input_length:
            raise UserError(
                f"training.init_from={run_dir}: its model has {len(start.spacegroups)} classes and {start.spec.n_points} "
                f"points; this run needs the same class list and {self.input_length} points"
            )
        if start.name != self.training.model:
            raise UserError(f"training.init_from={run_dir}: a {start.name} model; this run trains {self.training.model}")
        self.log(f"starting from the weights of {run_dir} (preset {start.meta.get('preset')})")
        return start.model.get_weights()

    def save_checkpoint(self) -> Path:
        """Model + optimizer state at the current step (`rundir.save_checkpoint`)."""
        return save_checkpoint(self.model, self.run_dir, self.step, len(self.history))

    # ------------------------------------------------------------------------------- evaluation
    def evaluate(self) -> dict:
        """Top-1, top-5, per-space-group recall and crystal-system accuracy on the held-out test set.

        The metrics are `xrdgen.evaluation.metrics.evaluate`'s, so training curves and later
        evaluations of the saved model count the same way. Ranking logits ranks probabilities.
        """
        if self.x_test is None or len(self.y_test) == 0:
            return {}
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
                    self._log_progress(
                        epoch,
                        epochs,
                        per_epoch,
                        seen,
                        loss_sum,
                        correct,
                        epoch_start,
                        run_start,
                        start_step,
                        total_steps,
                        deadline,
                    )
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

    def _log_progress(
        self, epoch, epochs, per_epoch, seen, loss_sum, correct, epoch_start, run_start, start_step, total_steps, deadline=None
    ):
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
        write_history(self.run_dir, self.history)
        self.save_checkpoint()
        names = (
            "train_loss",
            "train_accuracy",
            "test_top1",
            "test_top5",
            "test_crystal_system_accuracy",
            "learning_rate",
            "patterns_per_s",
        )
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
        path = save_model(self.model, self.run_dir)
        if self.history:
            title = f"{self.training.model}, {len(self.spacegroups)} space groups, step {self.step}"
            plot_history(self.history, self.run_dir / PLOT_FILE, title=title, n_classes=len(self.spacegroups))
        return path


def _hms(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"
