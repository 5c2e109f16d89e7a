"""The trainer's own Keras callbacks: what Keras' `fit` does not do for a run of this project.

Keras' loop steps and emits events; these three listen:

- `WallClockBudget`: stops after `training.max_minutes` (checked after every compiled call);
- `ProgressLog`: a line every `every_s` seconds with the rate in patterns/s and the ETA;
- `EpochRecord`: at the end of every epoch (and of a partial one cut short by the budget) evaluates
  the held-out set, appends the history entry, writes the step checkpoint and best.keras through the
  run directory, and puts the held-out scores into the epoch's logs, where Keras' own `TensorBoard`
  callback (listed after it) writes them.

The batch-end callbacks declare `async_safe`: Keras then hands them each step's logs from a worker
thread, so the training loop never waits for the device to report a loss it does not need (the
metrics are read on the host only when a progress line is due). The best model is saved here rather
than by Keras' `ModelCheckpoint`, which writes in place (a kill while saving leaves a broken file)
and forgets its best score when a run resumes.
"""

from __future__ import annotations

import math
import time
from typing import Optional

import keras
import numpy as np


def _hms(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = int(seconds)
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


class WallClockBudget(keras.callbacks.Callback):
    """Stop training once `deadline` (time.monotonic()) has passed."""

    async_safe = True

    def __init__(self, deadline: Optional[float]):
        super().__init__()
        self.deadline = deadline
        self.reached = False

    def on_train_batch_end(self, batch, logs=None):
        if self.deadline is not None and time.monotonic() >= self.deadline:
            self.reached = True
            self.model.stop_training = True


class ProgressLog(keras.callbacks.Callback):
    """A progress line every `every_s` seconds: epoch, step, loss, accuracy, patterns/s, ETAs."""

    async_safe = True

    def __init__(self, trainer, total_steps: int, every_s: float, deadline: Optional[float]):
        super().__init__()
        self.trainer = trainer
        self.total_steps = total_steps
        self.every_s = every_s
        self.deadline = deadline
        self.run_start = time.monotonic()
        self.start_step = trainer.step
        self.last = self.run_start

    def on_train_batch_end(self, batch, logs=None):
        now = time.monotonic()
        if now - self.last < self.every_s:
            return
        self.last = now
        per_epoch = self.trainer.batches_per_epoch
        step = self.trainer.step_at(batch)
        epoch, in_epoch = divmod(step - 1, per_epoch)  # the step just done: the last of an epoch reads n/n
        in_epoch += 1
        rate_steps = (step - self.start_step) / max(now - self.run_start, 1e-9)
        eta_epoch = (per_epoch - in_epoch) / max(rate_steps, 1e-9)
        eta_run = (self.total_steps - step) / max(rate_steps, 1e-9)
        if self.deadline is not None:  # a wall-time budget ends the run first when it is shorter
            eta_run = min(eta_run, max(self.deadline - now, 0.0))
        logs = logs or {}
        self.trainer.log(
            f"epoch {epoch + 1}/{self.trainer.epochs} batch {in_epoch}/{per_epoch} step {step} "
            f"loss {float(logs.get('loss', np.nan)):.4f} acc {float(logs.get('accuracy', logs.get('logits_accuracy', np.nan))):.3f} | "
            f"{rate_steps * self.trainer.global_batch_size:.1f} patterns/s | ETA epoch {_hms(eta_epoch)}, run {_hms(eta_run)}"
        )


class EpochRecord(keras.callbacks.Callback):
    """History entry, held-out evaluation, checkpoint and best model at the end of every epoch."""

    def __init__(self, trainer):
        super().__init__()
        self.trainer = trainer
        self.epoch_start = time.monotonic()
        self.epoch_start_step = trainer.step

    def on_epoch_begin(self, epoch, logs=None):
        self.trainer._epoch = epoch
        self.epoch_start = time.monotonic()
        self.epoch_start_step = self.trainer.step
        self.learning_rate = self.trainer.learning_rate  # the rate this epoch trains with

    def on_epoch_end(self, epoch, logs=None):
        trainer = self.trainer
        step = trainer.step
        if step == self.epoch_start_step:  # the stream ended before a single step
            return
        seconds = time.monotonic() - self.epoch_start
        patterns = (step - self.epoch_start_step) * trainer.global_batch_size
        entry = {
            "epoch": epoch + 1,
            "step": step,
            "learning_rate": self.learning_rate,
            "train_loss": float(logs["loss"]),
            "train_accuracy": float(logs.get("accuracy", logs.get("logits_accuracy", np.nan))),
            "patterns": patterns,
            "seconds": seconds,
            "patterns_per_s": patterns / max(seconds, 1e-9),
        }
        entry.update(trainer.evaluate())
        if step < (epoch + 1) * trainer.batches_per_epoch:
            entry["partial"] = True
        trainer.record(entry)
        # For the callbacks after this one (TensorBoard): the held-out scores and per-class recall.
        logs.update({k: entry[k] for k in ("test_top1", "test_top5", "test_crystal_system_accuracy") if k in entry})
        logs.update({f"recall/sg{sg:03d}": r for sg, r in entry.get("test_recall", {}).items()})
        logs["patterns_per_s"] = entry["patterns_per_s"]
