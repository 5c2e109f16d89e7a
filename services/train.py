"""Job entrypoint: the whole distributed training on a Ray cluster.

    ray job submit --working-dir . -- python -m services.train --config configs/cluster.yaml \
        --statistics STATS.json|default [--test TEST.json] [--set training.max_minutes=60]

Starts, on the cluster it runs in (RAY_ADDRESS, set by `ray job submit`; a private local Ray when
run by hand): the statistics server, the bounded queue, the supervised generator pool and the trainer
actor; waits for the training to end; prints where results, checkpoints and TensorBoard logs are.
Resubmitting the same command resumes from the last checkpoint in `training.output_dir`.

Paths: a relative `training.output_dir` is taken relative to the directory the job was started
from; under `ray job submit --working-dir` that is a temporary copy, so give an absolute (or ~)
output directory there to keep the results.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import time
from pathlib import Path
from typing import Optional

import ray

from services.generator_pool import GeneratorPool
from services.options import driver_env
from services.quiet_tensorflow import import_tensorflow
from services.ray_runtime import ray_session
from services.statistics_server import StatisticsServer
from services.trainer_actor import TrainerActor, reserve_trainer
from xrdgen.config import load_config, parse_overrides
from xrdgen.errors import UserError
from xrdgen.pipeline import resolve_statistics
from xrdgen.training.calibrate import calibrate_run
from xrdgen.training.datasets import read_structures, simulate_set
from xrdgen.training.rundir import InputSpec

STATUS_EVERY_S = 30.0
MIN_MINUTES = 0.01  # a trainer recreated after the budget is spent still writes model.keras


def _parse(argv: Optional[list[str]]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m services.train", description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", "-c", type=Path, default=None, help="YAML config (defaults for what it leaves out)")
    parser.add_argument(
        "--statistics",
        "-s",
        type=Path,
        required=True,
        help="statistics file (xrdgen stats build), or 'default': the statistics shipped in the "
        "package (mp26k + ICSD metadata; their held-out test part becomes --test)",
    )
    parser.add_argument(
        "--test", type=Path, default=None, help="held-out test structures (the test-part list of xrdgen stats build)"
    )
    parser.add_argument("--set", dest="sets", action="append", default=[], help="override, e.g. training.epochs=3")
    parser.add_argument("--seed", type=int, default=None)
    return parser.parse_args(argv)


def node_gpus() -> float:
    """GPUs that Ray sees on this process's node."""
    here = ray.get_runtime_context().get_node_id()
    return next((node["Resources"].get("GPU", 0.0) for node in ray.nodes() if node["NodeID"] == here), 0.0)


def resolve_output_dir(output_dir: Path) -> Path:
    return Path(output_dir).expanduser().resolve()


def where_things_go(run_dir: Path) -> str:
    """The lines a user needs to find the results of a run."""
    return "\n".join(
        [
            f"results:      {run_dir}  (model.keras, meta.json, history.json, accuracy.png, summary.json)",
            f"checkpoints:  {run_dir / 'checkpoints'}  (resubmit the same job to resume from the last one)",
            f"tensorboard:  tensorboard --logdir {run_dir / 'tensorboard'}",
            "dashboard:    ray dashboard (metrics xrdgen_*: patterns/s per actor, queue depth, steps/s, test top-1/top-5;"
            " Grafana: deploy/grafana_xrdgen_dashboard.json)",
        ]
    )


def build_test_set(test_path: Optional[Path], spacegroups: list, config):
    """(x, class index) of the held-out structures, simulated as `xrdgen train` does; or None."""
    if test_path is None:
        return None
    # Label = spglib's space group of the held-out structure (the one statistics were built with).
    entries, _ = read_structures(test_path, config)
    patterns = simulate_set(
        [e.crystal for e in entries],
        InputSpec.from_config(config),
        config.simulation,
        config.seed + 1,
        name=test_path.name,
        names=[str(e.source_id) for e in entries],
        classes=spacegroups,
        patterns_per_crystal=config.training.test_patterns_per_structure,
        augmentation=config.augmentation,
        progress=True,
    )
    print(
        f"test set: {len(patterns)} patterns of {len(entries)} held-out structures; skipped {len(patterns.skipped)}", flush=True
    )
    return patterns.x, patterns.class_indices(spacegroups)


def train_to_the_end(trainer: TrainerActor, pool: GeneratorPool, config) -> dict:
    """The trainer's final status; the pool's state every STATUS_EVERY_S meanwhile.

    A trainer actor that dies (its process or node, not an error of its own code) is started again
    up to `cluster.trainer_restarts` times; the new one resumes from the last checkpoint, within what
    is left of the job's `training.max_minutes`.
    """
    budget = config.training.max_minutes
    done = trainer.fit()
    started = last_status = time.monotonic()
    while True:
        if ray.wait([done], timeout=1.0)[0]:
            try:
                return ray.get(done)
            except ray.exceptions.RayActorError as exc:
                if exc.actor_init_failed or trainer.restarts >= config.cluster.trainer_restarts:
                    raise
                print(
                    f"[cluster] the trainer actor died ({type(exc).__name__}: {str(exc).splitlines()[0]}); starting it "
                    f"again ({trainer.restarts + 1} of at most {config.cluster.trainer_restarts}), from the last checkpoint",
                    flush=True,
                )
                trainer.recreate()
                left = budget - (time.monotonic() - started) / 60 if budget else None
                done = trainer.fit(max_minutes=max(left, MIN_MINUTES)) if budget else trainer.fit()
                continue
        if pool.gave_up:  # the trainer would wait for batches forever
            raise RuntimeError(f"the generator pool gave up after {len(pool.errors)} failures; last: {pool.errors[-1]}")
        if time.monotonic() - last_status >= STATUS_EVERY_S:
            last_status = time.monotonic()
            counters = pool.counters(timeout=5)
            produced = sum(c["patterns"] for c in counters)
            print(
                f"[cluster] generators {pool.size} (replaced {pool.replacements}), queue {pool.queue.qsize()}/"
                f"{config.cluster.queue_max_items}, {produced} patterns made by the {len(counters)} "
                f"generators that answered",
                flush=True,
            )


def run(config, statistics_path: Path, test_path: Optional[Path] = None) -> dict:
    """Everything between "the cluster is up" and "the run directory is complete"; returns the summary."""
    run_dir = resolve_output_dir(config.training.output_dir)
    config = config.model_copy(update={"training": config.training.model_copy(update={"output_dir": run_dir})})
    if "runtime_resources" in run_dir.parts:
        print(
            f"warning: {run_dir} is inside Ray's temporary working-dir copy; set an absolute training.output_dir to keep results",
            flush=True,
        )
    print(where_things_go(run_dir), flush=True)

    started = time.monotonic()
    with contextlib.ExitStack() as cleanup:  # whatever happens, the actors of this job go away
        server = StatisticsServer(statistics_path, config.cluster)
        cleanup.callback(server.shutdown)
        statistics_ref = server.reference()
        statistics = ray.get(statistics_ref)
        print(f"statistics: {statistics_path} ({len(statistics.spacegroups)} classes)", flush=True)
        if not statistics.spacegroups:
            raise UserError(
                f"{statistics_path}: no space-group class reaches statistics.min_count_per_spacegroup="
                f"{config.statistics.min_count_per_spacegroup}; lower it or use a larger collection"
            )
        reservation = reserve_trainer(config.cluster)  # before the generators take the trainer's node
        if reservation is not None:
            cleanup.callback(ray.util.remove_placement_group, reservation)
        pool = GeneratorPool(server, config)  # starts producing while the test set is simulated
        cleanup.callback(pool.shutdown)
        test_set = build_test_set(test_path, statistics.spacegroups, config)
        trainer = TrainerActor(
            config, statistics.spacegroups, pool.queue, run_dir=run_dir, test_set=test_set, reservation=reservation
        )
        cleanup.callback(trainer.kill)  # the current actor, also after a recreate
        result = train_to_the_end(trainer, pool, config)
    # Calibrated probabilities, as `xrdgen train` ends: fresh stream patterns, here on the driver.
    import_tensorflow()  # before the calibration does: no CUDA notices in the job's log
    calibration = calibrate_run(run_dir, statistics, config, statistics_path, log=lambda line: print(line, flush=True))
    history = result.pop("history")
    last = history[-1] if history else {}
    summary = dict(
        run_dir=str(run_dir),
        model=config.training.model,
        classes=len(statistics.spacegroups),
        start_step=trainer.first_start_step() if trainer.restarts else result["start_step"],
        trainer_restarts=trainer.restarts,
        resumed_at_step=result["start_step"] if trainer.restarts else None,
        step=result["step"],
        epochs=len(history),
        minutes=(time.monotonic() - started) / 60,
        test_top1=last.get("test_top1"),
        test_top5=last.get("test_top5"),
        train_accuracy=last.get("train_accuracy"),
        patterns_per_s=last.get("patterns_per_s"),
        generator_replacements=pool.replacements,
        temperature=calibration["temperature"],
        trainer_stalls_s=[round(s, 2) for _, s in result["stalls"]],
        trainer_stalls_ended_at=[round(t, 2) for t, _ in result["stalls"]],  # Unix time at the end of each wait
    )
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def main(argv: Optional[list[str]] = None) -> int:
    args = _parse(argv)
    try:
        overrides = parse_overrides(args.sets)
        if args.seed is not None:
            overrides["seed"] = args.seed
        config = load_config(args.config, overrides)
        if str(args.statistics) != "default" and not args.statistics.exists():
            raise UserError(f"{args.statistics}: no such statistics file (build one with `xrdgen stats build`)")
        if args.test is not None and not args.test.exists():
            raise UserError(f"{args.test}: no such test-structure file")
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    run_dir = resolve_output_dir(config.training.output_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    config = config.model_copy(update={"training": config.training.model_copy(update={"output_dir": run_dir})})
    (run_dir / "config.yaml").write_text(config.to_yaml())  # the full config this job runs
    print(config.describe_changes(run_dir / "config.yaml"), flush=True)
    args.statistics, args.test = resolve_statistics(args.statistics, args.test)
    with ray_session(config.cluster.address):
        for key, value in driver_env(node_gpus()).items():  # before the calibration imports TensorFlow
            os.environ.setdefault(key, value)
        try:
            summary = run(config, args.statistics, args.test)
        except ray.exceptions.RayTaskError as exc:  # bad input found inside an actor: one line, no traceback
            if isinstance(exc.cause, UserError):
                print(f"error: {exc.cause}", file=sys.stderr)
                return 2
            raise
        except UserError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    print("summary: " + json.dumps(summary), flush=True)
    print(where_things_go(Path(summary["run_dir"])), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
