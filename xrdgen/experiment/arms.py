"""The two arms: the same network, batch size, optimiser and number of steps on different training data.

- "synthetic" (arm A): batches from the `PatternStream` (generate -> check -> simulate -> the
  preset's imperfections), a fresh stream per training seed: in this process (`local_stream`), or
  from every core of a Ray cluster when the caller passes another `StreamOpener`
  (`services.experiment_stream.pool_stream`, `xrdgen experiment --pool`);
- "structures" (arm B): shuffled passes over the fixed set of statistics-part structures of the
  class list within the generator's limits (`training.baseline_patterns_per_structure` patterns
  each, crystallite sizes drawn), dropout on (`training.baseline`, as the original's baseline mode).

Both arms, and every set they are evaluated on, are in the run's one pattern preset. Each run lives
in OUT/runs/<split>/<arm>_seed<s>/ (a `Trainer` run directory plus evaluation.json).

With `experiment.max_steps`, a run on the structure-type split goes on after the equal budget (evaluated there, "sets") until
its validation top-1 has not improved for `experiment.patience` evaluations or `max_steps` is
reached, and is evaluated again at its end ("plateau"): the last model, not the best one, so the
validation set only decides when to stop.
"""

from __future__ import annotations

import contextlib
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from xrdgen.config import Config
from xrdgen.evaluation.metrics import evaluate
from xrdgen.experiment.data import STRUCTURE_TYPE, ExperimentData
from xrdgen.jsonio import read_json, write_json
from xrdgen.statistics.model import Statistics
from xrdgen.training.rundir import InputSpec, TrainedModel
from xrdgen.training.stream import PatternStream
from xrdgen.training.trainer import Trainer, epoch_batches

ARMS = {
    "synthetic": "A: synthetic stream",
    "structures": "B: statistics-part structures",
}
RESULT_FILE = "evaluation.json"

# (statistics, their file, config, training seed, batch size) -> context of (batches, counters()):
# where arm A's patterns come from. The counters are the stream's (summed over producers).
StreamOpener = Callable[[Statistics, Path, Config, int, int], contextlib.AbstractContextManager]


@contextlib.contextmanager
def local_stream(statistics: Statistics, statistics_path: Path, config: Config, seed: int, batch_size: int):
    """Arm A's stream in this process: one `PatternStream` seeded by the training seed."""
    stream = PatternStream(statistics, config, seed=seed)
    yield iter(lambda: stream.next_batch(batch_size), None), stream.counters.as_dict


def train_arm(
    arm: str,
    seed: int,
    data: ExperimentData,
    config: Config,
    out: Path,
    log: Callable[[str], None] = print,
    open_stream: StreamOpener = local_stream,
) -> dict:
    """Train one arm for `experiment.steps` steps and evaluate it on every set; reuses a finished run."""
    spec = config.experiment
    run_dir = out / "runs" / data.split / f"{arm}_seed{seed}"
    done = run_dir / RESULT_FILE
    if done.exists():
        result = read_json(done, "experiment run result")
        same = (result.get("steps"), result.get("max_steps"), result.get("classes")) == (spec.steps, spec.max_steps, data.classes)
        if same:
            log(f"{data.split} split, {arm} seed {seed}: reusing the finished run in {run_dir}")
            return result
    if run_dir.exists():
        shutil.rmtree(run_dir)  # unfinished: a stream's position cannot be restored, so start over
    cfg = arm_config(config, arm)
    curve = data.curve_set
    trainer = Trainer(
        cfg, data.classes, run_dir=run_dir, test_set=(curve.x, curve.class_indices(data.classes)), resume=False, log=log
    )
    batch_size = trainer.global_batch_size

    with contextlib.ExitStack() as stack:
        counters = None
        if arm == "synthetic":
            batches, counters = stack.enter_context(open_stream(data.statistics, data.statistics_path, cfg, seed, batch_size))
        else:
            batches = epoch_batches(data.baseline.x, data.baseline.class_indices(data.classes), batch_size, seed=seed)
        result = _train(trainer, batches, arm, seed, data, config, run_dir, log)
        if counters is not None:
            result["stream"] = counters()
    write_json(done, result)
    return result


def _train(trainer: Trainer, batches, arm: str, seed: int, data: ExperimentData, config: Config, run_dir: Path, log) -> dict:
    """The equal budget, the plateau run where asked, and the evaluations: the run's result."""
    spec = config.experiment
    batch_size = trainer.global_batch_size
    log(f"--- {data.split} split, arm {ARMS[arm]}, seed {seed}: {spec.steps} steps of {batch_size} patterns")
    start = time.monotonic()
    history = trainer.fit(
        batches, epochs=spec.steps // spec.eval_every, batches_per_epoch=spec.eval_every, max_minutes=None, log_every_s=60.0
    )
    seconds = time.monotonic() - start
    equal_budget_sets = evaluate_model(trainer.model, data, config, run_dir)
    plateau = None
    if spec.max_steps is not None and data.split == STRUCTURE_TYPE:  # the control stays at the equal budget
        history, plateau = train_to_plateau(trainer, batches, spec, log)
        plateau["seconds"] = time.monotonic() - start
        plateau["sets"] = evaluate_model(trainer.model, data, config, run_dir)
    return {
        "split": data.split,
        "arm": arm,
        "seed": seed,
        "steps": spec.steps,
        "max_steps": spec.max_steps,
        "batch_size": batch_size,
        "classes": data.classes,
        "seconds": seconds,
        "patterns_seen": int(sum(h["patterns"] for h in history if h["step"] <= spec.steps)),
        "curve_set": data.curve_set.name,
        "curve": [
            {
                "step": h["step"],
                "patterns": int(sum(g["patterns"] for g in history[: i + 1])),
                "test_top1": h.get("test_top1"),
                "test_top5": h.get("test_top5"),
                "train_accuracy": h["train_accuracy"],
            }
            for i, h in enumerate(history)
        ],
        "sets": equal_budget_sets,
        "plateau": plateau,
    }


def train_to_plateau(trainer: Trainer, batches, spec, log: Callable[[str], None]) -> tuple[list[dict], dict]:
    """Go on past the equal budget, one evaluation at a time, until the curve-set top-1 has not beaten
    its best for `spec.patience` evaluations or `spec.max_steps` is reached; (history, facts)."""
    history = trainer.history
    per_epoch = spec.eval_every
    while trainer.step < spec.max_steps:
        scores = [h.get("test_top1") or 0.0 for h in history]
        best = int(np.argmax(scores))
        if len(scores) - 1 - best >= spec.patience:
            break
        history = trainer.fit(batches, epochs=trainer.step // per_epoch + 1, batches_per_epoch=per_epoch, log_every_s=60.0)
    scores = [h.get("test_top1") or 0.0 for h in history]
    best = int(np.argmax(scores))
    stopped = "plateau" if trainer.step < spec.max_steps or len(scores) - 1 - best >= spec.patience else "max_steps"
    log(
        f"stopped at step {trainer.step} ({stopped}); best validation top-1 {100 * scores[best]:.1f} % at step {history[best]['step']}"
    )
    return history, {
        "steps": trainer.step,
        "stopped": stopped,
        "best_step": history[best]["step"],
        "best_curve_top1": scores[best],
        "patterns_seen": int(sum(h["patterns"] for h in history)),
    }


def arm_config(config: Config, arm: str) -> Config:
    """The config a run of `arm` trains with: the baseline flag (and thereby dropout) only for arm B."""
    arm_cfg = config.model_copy(deep=True)
    arm_cfg.training.baseline = arm == "structures"
    return arm_cfg


def evaluate_model(model, data: ExperimentData, config: Config, run_dir: Path) -> dict:
    """Top-1/top-5 and per-space-group recall on every evaluation set."""
    trained = TrainedModel(
        model=model,
        spacegroups=list(data.classes),
        spec=InputSpec.from_config(config),
        name=config.training.model,
        meta={},
        run_dir=run_dir,
    )
    results = {}
    for s in data.sets:
        if len(s) == 0:
            continue
        ev = evaluate(trained.probabilities(s.x), s.spacegroups, data.classes, name=s.name)
        results[s.name] = {
            "n": ev.n,
            "top1": ev.top_k_accuracy[0],
            "top5": ev.top_k_accuracy[min(5, len(ev.top_k_accuracy)) - 1],
            "per_spacegroup": {str(sg): v for sg, v in sorted(ev.per_spacegroup.items())},
        }
    return results
