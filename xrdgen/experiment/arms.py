"""The two arms: the same network, batch size, optimiser and number of steps on different training data.

- "synthetic" (arm A): batches from the `PatternStream` (generate -> spglib check -> simulate ->
  the preset's imperfections), a fresh stream per training seed;
- "structures" (arm B): shuffled passes over the fixed set of statistics-part structures of the
  class list within the generator's limits (`training.baseline_patterns_per_structure` patterns
  each, crystallite sizes drawn), dropout on (`training.baseline`, as the original's baseline mode).

Both arms, and every set they are evaluated on, are in the run's one pattern preset. Each run lives
in OUT/runs/<split>/<arm>_seed<s>/ (a `Trainer` run directory plus evaluation.json).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable
from pathlib import Path

from xrdgen.config import Config
from xrdgen.evaluation.metrics import evaluate
from xrdgen.experiment.data import ExperimentData
from xrdgen.jsonio import read_json, write_json
from xrdgen.training.rundir import InputSpec, TrainedModel
from xrdgen.training.stream import PatternStream
from xrdgen.training.trainer import Trainer, epoch_batches

ARMS = {
    "synthetic": "A: synthetic stream",
    "structures": "B: statistics-part structures",
}
RESULT_FILE = "evaluation.json"


def train_arm(arm: str, seed: int, data: ExperimentData, config: Config, out: Path, log: Callable[[str], None] = print) -> dict:
    """Train one arm for `experiment.steps` steps and evaluate it on every set; reuses a finished run."""
    spec = config.experiment
    run_dir = out / "runs" / data.split / f"{arm}_seed{seed}"
    done = run_dir / RESULT_FILE
    if done.exists():
        result = read_json(done, "experiment run result")
        if result.get("steps") == spec.steps and result.get("classes") == data.classes:
            log(f"{data.split} split, {arm} seed {seed}: reusing the finished run in {run_dir}")
            return result
    if run_dir.exists():
        shutil.rmtree(run_dir)  # unfinished: a stream's position cannot be restored, so start over
    cfg = arm_config(config, arm)
    batch_size = cfg.training.resolved().batch_size
    test = data.sets[0]
    trainer = Trainer(
        cfg, data.classes, run_dir=run_dir, test_set=(test.x, test.class_indices(data.classes)), resume=False, log=log
    )

    stream = None
    if arm == "synthetic":
        stream = PatternStream(data.statistics, cfg, seed=seed)
        batches = iter(lambda: stream.next_batch(batch_size), None)
    else:
        batches = epoch_batches(data.baseline.x, data.baseline.class_indices(data.classes), batch_size, seed=seed)

    log(f"--- {data.split} split, arm {ARMS[arm]}, seed {seed}: {spec.steps} steps of {batch_size} patterns")
    start = time.monotonic()
    history = trainer.fit(
        batches, epochs=spec.steps // spec.eval_every, batches_per_epoch=spec.eval_every, max_minutes=None, log_every_s=60.0
    )
    seconds = time.monotonic() - start
    result = {
        "split": data.split,
        "arm": arm,
        "seed": seed,
        "steps": trainer.step,
        "batch_size": batch_size,
        "classes": data.classes,
        "seconds": seconds,
        "patterns_seen": int(sum(h["patterns"] for h in history)),
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
        "sets": evaluate_model(trainer.model, data, config, run_dir),
    }
    if stream is not None:
        result["stream"] = stream.counters.as_dict()
    write_json(done, result)
    return result


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
