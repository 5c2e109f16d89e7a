"""The arms: the same network, batch size, optimiser and number of steps on different training data.

- "synthetic" (arm A): batches from the `PatternStream` (generate -> check -> simulate -> the
  preset's imperfections) drawing from the statistics part alone, a fresh stream per training seed:
  in this process (`local_stream`), or from every core of a Ray cluster when the caller passes
  another `StreamOpener` (`services.experiment_stream.pool_stream`, `xrdgen experiment --pool`);
- "structures" (arm B): shuffled passes over the fixed set of statistics-part structures of the
  class list within the generator's limits (`training.baseline_patterns_per_structure` patterns
  each, crystallite sizes drawn), dropout on (`training.baseline`, as the original's baseline mode);
- "synthetic_icsd" (arm A', optional): arm A's stream with the ICSD metadata's space-group prior and
  element statistics on the same class list, to compare the two sources of the first three draws.

Both arms, and every set they are evaluated on, are in the run's one pattern preset. Each run lives
in OUT/runs/<split>/<arm>_seed<s>/ (a `Trainer` run directory plus evaluation.json).

Scored models: with a validation set, the checkpoint of the best validation top-1 (best.keras) is
the run's model ("sets"); the last model is scored beside it ("last"). Without one, the curve set is
the test set, which must decide nothing, so the last model is the run's model. Every set's entry
keeps each row's top-1 prediction, for the bootstrap of the report.

With `experiment.max_steps`, a run on the structure-type split goes on after the equal budget until
its smoothed validation top-1 (running mean of `experiment.smoothing` evaluations) has not improved
for `experiment.patience` evaluations or `max_steps` is reached ("plateau").

A finished run is reused only when its key matches: a hash of the arm's whole effective config
(training, pattern preset, budget, plateau rule), the prepared data's key, the arm and the seed;
any change retrains.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from xrdgen.config import Config
from xrdgen.evaluation.metrics import evaluate
from xrdgen.experiment.prepared import STRUCTURE_TYPE, VALIDATION_SET, ExperimentData
from xrdgen.jsonio import read_json, write_json
from xrdgen.statistics.model import Statistics
from xrdgen.training.datasets import epoch_batches
from xrdgen.training.rundir import InputSpec, TrainedModel
from xrdgen.training.stream import PatternStream
from xrdgen.training.trainer import Trainer

ARMS = {
    "synthetic": "A: synthetic stream",
    "structures": "B: statistics-part structures",
    "synthetic_icsd": "A': synthetic stream, ICSD prior and elements",
}
SYNTHETIC_ARMS = ("synthetic", "synthetic_icsd")
RESULT_FILE = "evaluation.json"

# (statistics, their file, config, training seed, batch size) -> context of (batches, counters()):
# where arm A's patterns come from. The counters are the stream's (summed over producers).
StreamOpener = Callable[[Statistics, Path, Config, int, int], contextlib.AbstractContextManager]


@contextlib.contextmanager
def local_stream(statistics: Statistics, statistics_path: Path, config: Config, seed: int, batch_size: int):
    """Arm A's stream in this process: one `PatternStream` seeded by the training seed."""
    stream = PatternStream(statistics, config, seed=seed)
    yield iter(lambda: stream.next_batch(batch_size), None), stream.counters.as_dict


def run_key(arm: str, seed: int, data: ExperimentData, config: Config) -> str:
    """What a finished run depends on (module docstring): a changed learning rate, batch, model, preset,
    budget or data gives another key."""
    dump = arm_config(config, arm).model_dump(mode="json")
    for name in ("seeds", "splits", "arms", "bootstrap", "min_gain_per_doubling"):  # other runs' or the report's
        dump["experiment"].pop(name, None)
    for name in ("cluster", "ablation"):
        dump.pop(name, None)
    for name in ("output_dir", "jit_compile", "steps_per_execution"):  # where and how fast, not what is trained
        dump["training"].pop(name, None)
    parts = {"config": dump, "data": data.key, "arm": arm, "seed": seed, "classes": data.classes}
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:16]


def train_arm(
    arm: str,
    seed: int,
    data: ExperimentData,
    config: Config,
    out: Path,
    log: Callable[[str], None] = print,
    open_stream: StreamOpener = local_stream,
) -> dict:
    """Train one arm for `experiment.steps` steps and evaluate it on every set; reuses a finished run of the same key."""
    run_dir = out / "runs" / data.split / f"{arm}_seed{seed}"
    done = run_dir / RESULT_FILE
    key = run_key(arm, seed, data, config)
    if done.exists():
        result = read_json(done, "experiment run result")
        if result.get("key") == key:
            log(f"{data.split} split, {arm} seed {seed}: reusing the finished run in {run_dir}")
            return result
        log(f"{data.split} split, {arm} seed {seed}: the run in {run_dir} was made with other settings; training again")
    if run_dir.exists():
        shutil.rmtree(run_dir)  # unfinished or other settings: a stream's position cannot be restored, so start over
    cfg = arm_config(config, arm)
    curve = data.curve_set
    trainer = Trainer(
        cfg, data.classes, run_dir=run_dir, test_set=(curve.x, curve.class_indices(data.classes)), resume=False, log=log
    )
    batch_size = trainer.global_batch_size

    with contextlib.ExitStack() as stack:
        counters = None
        if arm in SYNTHETIC_ARMS:
            statistics, statistics_path = data.statistics_of(arm)
            batches, counters = stack.enter_context(open_stream(statistics, statistics_path, cfg, seed, batch_size))
        else:
            batches = epoch_batches(data.baseline.x, data.baseline.class_indices(data.classes), batch_size, seed=seed)
        result = _train(trainer, batches, arm, seed, data, config, run_dir, log)
        if counters is not None:
            result["stream"] = counters()
    result["key"] = key
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
    equal_budget = scored_models(trainer, data, config, run_dir)
    plateau = None
    if spec.max_steps is not None and data.split == STRUCTURE_TYPE:  # the control stays at the equal budget
        history, plateau = train_to_plateau(trainer, batches, spec, log)
        plateau["seconds"] = time.monotonic() - start
        plateau.update(scored_models(trainer, data, config, run_dir))
    patterns = np.cumsum([h["patterns"] for h in history])
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
                "patterns": int(n),
                "test_top1": h.get("test_top1"),
                "test_top5": h.get("test_top5"),
                "train_accuracy": h["train_accuracy"],
            }
            for h, n in zip(history, patterns)
        ],
        **equal_budget,
        "plateau": plateau,
    }


def smoothed(values: list[float], window: int) -> np.ndarray:
    """Running mean of the last `window` values (fewer at the start): the curve the stopping rules read."""
    v = np.asarray(values, dtype=np.float64)
    c = np.cumsum(np.insert(v, 0, 0.0))
    lo = np.maximum(np.arange(1, len(v) + 1) - window, 0)
    return (c[1:] - c[lo]) / (np.arange(1, len(v) + 1) - lo)


def train_to_plateau(trainer: Trainer, batches, spec, log: Callable[[str], None]) -> tuple[list[dict], dict]:
    """Go on past the equal budget, one evaluation at a time, until the smoothed curve-set top-1 has not
    beaten its best for `spec.patience` evaluations or `spec.max_steps` is reached; (history, facts)."""
    history = trainer.history
    per_epoch = spec.eval_every

    def since_best() -> tuple[int, int]:
        curve = smoothed([h.get("test_top1") or 0.0 for h in history], spec.smoothing)
        best = int(np.argmax(curve))
        return best, len(curve) - 1 - best

    while trainer.step < spec.max_steps and since_best()[1] < spec.patience:
        history = trainer.fit(batches, epochs=trainer.step // per_epoch + 1, batches_per_epoch=per_epoch, log_every_s=60.0)
    best, waited = since_best()
    stopped = "plateau" if waited >= spec.patience else "max_steps"
    log(f"stopped at step {trainer.step} ({stopped}); best smoothed validation top-1 at step {history[best]['step']}")
    return history, {
        "steps": trainer.step,
        "stopped": stopped,
        "best_smoothed_step": history[best]["step"],
        "patterns_seen": int(sum(h["patterns"] for h in history)),
    }


def arm_config(config: Config, arm: str) -> Config:
    """The config a run of `arm` trains with: the baseline flag (and thereby dropout) only for arm B."""
    arm_cfg = config.model_copy(deep=True)
    arm_cfg.training.baseline = arm == "structures"
    return arm_cfg


def scored_models(trainer: Trainer, data: ExperimentData, config: Config, run_dir: Path) -> dict:
    """{"sets": the run's model on every set, "last": the last model, "best_step"} (module docstring)."""
    last = evaluate_model(trainer.model, data, config, run_dir)
    has_validation = data.curve_set.name == VALIDATION_SET
    if not has_validation or not trainer.run.best_model_path.exists():
        return {"sets": last, "last": last, "scored": "last", "best_step": None}
    import keras  # lazy: TensorFlow's start-up

    best = keras.models.load_model(trainer.run.best_model_path, compile=False)
    best_entry = max(trainer.history, key=lambda h: h.get("test_top1", -1.0))
    return {"sets": evaluate_model(best, data, config, run_dir), "last": last, "scored": "best", "best_step": best_entry["step"]}


def evaluate_model(model, data: ExperimentData, config: Config, run_dir: Path) -> dict:
    """Top-1/top-5, balanced accuracy, per-space-group recall and each row's top-1 answer on every evaluation set."""
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
        probabilities = trained.probabilities(s.x)
        ev = evaluate(probabilities, s.spacegroups, data.classes, name=s.name)
        recalls = [v["recall"] for v in ev.per_spacegroup.values() if v["count"]]
        results[s.name] = {
            "n": ev.n,
            "top1": ev.top_k_accuracy[0],
            "top5": ev.top_k_accuracy[min(5, len(ev.top_k_accuracy)) - 1],
            "balanced": float(np.mean(recalls)) if recalls else float("nan"),
            "per_spacegroup": {str(sg): v for sg, v in sorted(ev.per_spacegroup.items())},
            "predicted": [int(data.classes[i]) for i in np.argmax(probabilities, axis=1)],
        }
    return results
