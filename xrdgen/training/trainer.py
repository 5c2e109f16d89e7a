"""Training a space-group classifier from any stream of (patterns, labels) batches, with Keras' `fit`.

The trainer does not know where its batches come from (a Python generator, the Ray queue in a
trainer actor, a fixed set in the baseline mode). It turns the stream into the backend's input
pipeline (a prefetched `tf.data.Dataset` on TensorFlow, which Keras splits across the replicas of a
distribution strategy), picks the devices (`devices`), and hands the loop to `model.fit` with the
run's callbacks (`callbacks`: budget, progress, per-epoch record) and Keras' `TensorBoard`; the
files it leaves behind belong to the run directory (`RunDirectory`).

Optimisation follows the method (Schopmans et al., ML4pXRDs, "Training"): Adam (beta1 0.9, beta2 0.999),
cross-entropy on logits, presets per architecture from `TrainingConfig.resolved()`; for ResNets the
learning rate is halved every `lr_halving_epochs` epochs,

    lr(step) = lr0 * 0.5 ** floor(step / (batches_per_epoch * lr_halving_epochs))
             = lr0 * 0.5 ** (epoch // lr_halving_epochs),   epoch = step // batches_per_epoch (from 0)

(Keras' `ExponentialDecay` with staircase; the original's `floor((1 + epoch) / N)` halves one epoch
early), in the method's epochs of `training.batches_per_epoch`; `fit`'s own `batches_per_epoch`
sets when the run is evaluated and checkpointed, not the learning rate.

Batches: `training.batch_size` is per replica; the stream must yield global batches of
`trainer.global_batch_size` = batch_size x replicas patterns (equal to batch_size on one device).

Resuming: the global step is the optimizer's own iteration counter, saved with the optimizer state in
every checkpoint, and the learning rate is a function of it. Epoch and position inside the epoch are
derived from it (step // batches_per_epoch): an epoch cut short by the wall-time budget is finished
first, so epochs stay aligned to whole multiples of batches_per_epoch and a resumed run continues
the step count and the schedule exactly. (Keras' `BackupAndRestore` restores whole epochs only and
counts an epoch stopped by the budget as complete, so the step checkpoint stays the run's own.)

Crystal-system head (`training.crystal_system_weight` w > 0): a dense layer of 7 logits on the
space-group head's input, trained jointly, loss = CE(space group) + w * CE(crystal system), the
system label derived from the space group in the input pipeline. The training model (checkpoints,
resume) has both heads; model.keras and best.keras hold the space-group head alone, so everything
downstream (evaluation, calibration, prediction) reads one output.

Input scaling: batches come in the model's input scaling (`scale_input` in the stream,
`InputSpec.scale` for fixed sets); meta.json records the input spec, so prediction scales alike.

Keras and TensorFlow are imported inside the functions that need them: TensorFlow starts in seconds.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Optional

import numpy as np

from models import build_model, space_group_head, with_crystal_system_head  # importing them loads no Keras
from xrdgen.config import Config
from xrdgen.errors import UserError
from xrdgen.evaluation.metrics import evaluate
from xrdgen.geometry import CRYSTAL_SYSTEMS, crystal_system
from xrdgen.training.devices import DevicePlan, dtype_policy, plan_devices, whole_executions
from xrdgen.training.plots import plot_history
from xrdgen.training.rundir import META_VERSION, InputSpec, RunDirectory, load_model_run

PREFETCH_BATCHES = 2  # global batches the input pipeline holds ready beside the one in training
SYSTEM_INDEX = {name: i for i, (name, _, _) in enumerate(CRYSTAL_SYSTEMS)}


def learning_rate_schedule(initial: float, batches_per_epoch: int, halving_epochs: Optional[int]):
    """The method's learning rate as a function of the optimizer step (module docstring)."""
    if not halving_epochs:
        return float(initial)
    import keras  # lazy: TensorFlow's start-up (module docstring)

    return keras.optimizers.schedules.ExponentialDecay(
        float(initial), decay_steps=batches_per_epoch * halving_epochs, decay_rate=0.5, staircase=True
    )


class Trainer:
    """Train `config.training.model` on batches labelled by index into `spacegroups`.

    Args:
        config: the whole Config (training section resolved against the presets; grid, simulation
            wavelength and augmentation.sqrt_scale make the input spec recorded in meta.json;
            cluster.trainer_gpus > 0 demands GPUs).
        spacegroups: the class list; the model has one logit per entry.
        run_dir: the run directory (default `config.training.output_dir`).
        test_set: held-out (x_test, y_test) evaluated after every epoch, in input scaling: the
            learning curve, and the set whose top-1 picks best.keras (a validation set, where the
            caller has one).
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
        self.config = config
        self.training = config.training.resolved()
        self.spacegroups = [int(sg) for sg in spacegroups]
        self.devices: DevicePlan = plan_devices(self.training, config.cluster.trainer_gpus)  # before any file is written
        self.run = RunDirectory(run_dir if run_dir is not None else self.training.output_dir).create()
        self.spec = InputSpec.from_config(config)
        self.input_length = self.spec.n_points
        self.log = log
        self.on_epoch_end = on_epoch_end
        self.x_test = self.y_test = None
        if test_set is not None:
            self.x_test = np.asarray(test_set[0], dtype=np.float32)
            self.y_test = np.asarray(test_set[1], dtype=np.int64)
            if self.x_test.ndim != 2 or self.x_test.shape[1] != self.input_length:
                raise ValueError(f"test patterns have shape {self.x_test.shape}; expected (n, {self.input_length})")

        self.global_batch_size = self.training.batch_size * self.devices.replicas
        self.batches_per_epoch = int(self.training.batches_per_epoch)
        self.epochs = int(self.training.epochs)
        self.run.start(self._meta(), must_match=("spacegroups", "input", "model", "preset"))
        self.strategy = self.devices.strategy()
        import keras  # lazy: TensorFlow's start-up (module docstring)

        # Initial weights and dropout masks follow the seed (an experiment's arms start alike); CPU threads sum in varying order: a rerun is close, not bitwise equal.
        keras.utils.set_random_seed(config.seed)
        checkpoint = self.run.latest_checkpoint() if resume else None
        with self._scope():
            if checkpoint is not None:
                self.model = keras.models.load_model(checkpoint)
                self._compile(self.model.optimizer)
                # Entries written after this checkpoint (a kill between the two writes) are dropped.
                self.history = [h for h in self.run.read_history() if not h.get("partial") and h["step"] <= self.step]
                self.log(f"resuming from {checkpoint} at step {self.step}")
            else:
                self.model = self._build()
                self._compile(None)
                self.history = []
        self._epoch = 0  # the epoch Keras is in (set by EpochRecord), for progress lines
        self._step_offset = 0  # steps of the current epoch done before the current fit call
        self.log(self.devices.describe(self.training.batch_size))

    # ------------------------------------------------------------------------------ set-up
    def _scope(self):
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    def _build(self):
        dropout = self.training.dropout or self.training.baseline
        with dtype_policy(self.devices.precision):
            model = build_model(self.training.model, len(self.spacegroups), self.input_length, dropout=dropout)
            if self.training.init_from is not None:
                model.set_weights(self._start_weights(Path(self.training.init_from)))
            return with_crystal_system_head(model) if self.training.crystal_system_weight > 0 else model

    @property
    def two_heads(self) -> bool:
        return len(self.model.outputs) > 1

    def inference_model(self):
        """The space-group head alone: what model.keras and best.keras hold (module docstring)."""
        return space_group_head(self.model)

    def _compile(self, optimizer, steps_per_execution: Optional[int] = None) -> None:
        """Compile (again) with this run's devices; a given optimizer keeps its state and step."""
        import keras  # lazy: TensorFlow's start-up (module docstring)

        if optimizer is None:
            lr = learning_rate_schedule(self.training.learning_rate, self.batches_per_epoch, self.training.lr_halving_epochs)
            optimizer = keras.optimizers.Adam(lr, beta_1=0.9, beta_2=0.999)
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        accuracy = keras.metrics.SparseCategoricalAccuracy(name="accuracy")
        heads = {}
        if self.two_heads:
            heads = dict(loss=[loss, loss], loss_weights=[1.0, self.training.crystal_system_weight], metrics=[[accuracy], []])
        self.model.compile(
            optimizer=optimizer,
            loss=heads.get("loss", loss),
            loss_weights=heads.get("loss_weights"),
            metrics=heads.get("metrics", [accuracy]),
            jit_compile=self.devices.jit_compile,
            steps_per_execution=steps_per_execution or self.devices.steps_per_execution,
        )

    def _meta(self) -> dict:
        return {
            "version": META_VERSION,
            "spacegroups": self.spacegroups,
            "model": self.training.model,
            "input": self.spec.to_meta(),
            "preset": self.config.preset,  # pattern preset of the training data (pure or measured)
            "n_classes": len(self.spacegroups),
            "devices": self.devices.to_meta(),
            "global_batch_size": self.global_batch_size,
            "created": datetime.now(UTC).isoformat(timespec="seconds"),
            "config": self.config.model_dump(mode="json"),
        }

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

    # ------------------------------------------------------------------------------ state
    @property
    def run_dir(self) -> Path:
        return self.run.path

    @property
    def step(self) -> int:
        """Global number of optimisation steps so far (the optimizer's counter; survives resume)."""
        return int(np.asarray(self.model.optimizer.iterations))

    def step_at(self, batch: int) -> int:
        """The global step after Keras' `batch` (0-based within the current fit call's epoch) is done."""
        return self._epoch * self.batches_per_epoch + self._step_offset + batch + 1

    @property
    def learning_rate(self) -> float:
        return float(np.asarray(self.model.optimizer.learning_rate))

    def record(self, entry: dict) -> None:
        """One epoch's history entry: history.json, the step checkpoint, best.keras, the hook, a log line."""
        best_before = max((h.get("test_top1", -1.0) for h in self.history), default=-1.0)
        self.history.append(entry)
        self.run.write_history(self.history)
        self.run.save_checkpoint(self.model, entry["step"], len(self.history))
        if entry.get("test_top1", -1.0) > best_before:
            self.run.save_best_model(self.inference_model())
        if self.on_epoch_end is not None:
            self.on_epoch_end(entry)
        test = f" test top-1 {entry['test_top1']:.3f} top-5 {entry['test_top5']:.3f}" if "test_top1" in entry else ""
        self.log(
            f"epoch {entry['epoch']}{' (partial)' if entry.get('partial') else ''} done: step {entry['step']} "
            f"lr {entry['learning_rate']:.2e} loss {entry['train_loss']:.4f} train acc {entry['train_accuracy']:.3f}{test} "
            f"({entry['patterns_per_s']:.1f} patterns/s)"
        )

    # ------------------------------------------------------------------------------- evaluation
    def evaluate(self) -> dict:
        """Top-1, top-5, per-space-group recall and crystal-system accuracy on the held-out test set.

        The metrics are `xrdgen.evaluation.metrics.evaluate`'s, so training curves and later
        evaluations of the saved model count the same way. Ranking logits ranks probabilities.
        """
        if self.x_test is None or len(self.y_test) == 0:
            return {}
        logits = np.asarray(self.inference_model().predict(self.x_test, batch_size=256, verbose=0), dtype=np.float64)
        labels = np.asarray(self.spacegroups)[self.y_test]
        result = evaluate(logits, labels, self.spacegroups, k_max=5).to_dict()
        return {
            "test_top1": result["top_k_accuracy"]["1"],
            "test_top5": result["top_k_accuracy"]["5"],
            "test_crystal_system_accuracy": result["crystal_system_accuracy"],
            "test_recall": {int(sg): v["recall"] for sg, v in result["per_spacegroup"].items()},
        }

    # --------------------------------------------------------------------------------- training
    def input_pipeline(self, batches: Iterable):
        """The stream as the backend's input: a prefetched tf.data.Dataset on TensorFlow (which Keras
        distributes across replicas), the generator itself elsewhere. Every fit call continues the stream."""
        iterator = iter(batches)
        system_of = np.array([SYSTEM_INDEX[crystal_system(sg)] for sg in self.spacegroups], dtype=np.int32)

        def rows():
            for x, y in iterator:
                y = np.asarray(y, dtype=np.int32)
                yield np.asarray(x, dtype=np.float32), ((y, system_of[y]) if self.two_heads else y)

        if self.devices.backend != "tensorflow":
            return rows()
        import tensorflow as tf  # lazy: TensorFlow's start-up (module docstring)

        label = tf.TensorSpec((None,), tf.int32)
        spec = (tf.TensorSpec((None, self.input_length), tf.float32), (label, label) if self.two_heads else label)
        return tf.data.Dataset.from_generator(rows, output_signature=spec).prefetch(PREFETCH_BATCHES)

    def fit(
        self,
        batches: Iterable[tuple[np.ndarray, np.ndarray]],
        epochs: Optional[int] = None,
        batches_per_epoch: Optional[int] = None,
        max_minutes: Optional[float] = None,
        log_every_s: float = 10.0,
    ) -> list[dict]:
        """Train until `epochs` epochs are done (counting those of a resumed run) or time runs out.

        `batches` yields (x (global batch, n_points) float32, y (global batch,) int) in input scaling.
        Returns the history (one entry per epoch).
        """
        import keras  # lazy: TensorFlow's start-up (module docstring)

        from xrdgen.training.callbacks import EpochRecord, ProgressLog, WallClockBudget

        self.epochs = int(epochs if epochs is not None else self.training.epochs)
        self.batches_per_epoch = per_epoch = int(batches_per_epoch if batches_per_epoch is not None else self.batches_per_epoch)
        max_minutes = max_minutes if max_minutes is not None else self.training.max_minutes
        total_steps = self.epochs * per_epoch
        if self.step >= total_steps:
            self.log(f"nothing to do: step {self.step} already covers {self.epochs} epochs of {per_epoch} batches")
            self.finish()
            return self.history

        deadline = time.monotonic() + 60.0 * max_minutes if max_minutes else None
        budget = WallClockBudget(deadline)
        tensorboard = keras.callbacks.TensorBoard(log_dir=str(self.run.tensorboard_dir), write_graph=False)
        tensorboard.async_safe = True  # epoch-level writes only (update_freq="epoch")
        callbacks = [budget, ProgressLog(self, total_steps, log_every_s, deadline), EpochRecord(self), tensorboard]
        data = self.input_pipeline(batches)
        while not budget.reached:
            epoch, done = divmod(self.step, per_epoch)
            if epoch >= self.epochs:
                break
            # The rest of an epoch cut short by the budget first, then whole epochs (module docstring).
            steps = per_epoch - done
            executions = whole_executions(steps, self.devices.steps_per_execution)
            if executions != self.model.steps_per_execution:
                with self._scope():
                    self._compile(self.model.optimizer, executions)
            self._step_offset = done
            before = self.step
            last = epoch + 1 if done else self.epochs
            self.model.fit(
                data, initial_epoch=epoch, epochs=last, steps_per_epoch=steps, callbacks=callbacks, verbose=0, shuffle=False
            )
            if self.step == before or (self.step % per_epoch and not budget.reached):
                self.log("the batch stream ended")
                break
        if budget.reached:
            self.log(f"max_minutes={max_minutes} reached at step {self.step}")
        self.finish()
        return self.history

    def finish(self) -> Path:
        """Write model.keras and the accuracy plot: the run directory is complete."""
        path = self.run.save_model(self.inference_model())
        if self.history:
            title = f"{self.training.model}, {len(self.spacegroups)} space groups, step {self.step}"
            plot_history(self.history, self.run.plot_path, title=title, n_classes=len(self.spacegroups))
        return path
