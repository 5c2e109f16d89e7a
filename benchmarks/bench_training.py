"""Training throughput (patterns/s) of every architecture on this machine, through the Trainer.

Reference, measured in the same run on the same batches: a bare Keras `train_on_batch` loop (same
model, same optimizer, no distribution strategy, no bookkeeping). The ratio Trainer / bare loop shows what
our loop (MirroredStrategy on TensorFlow, per-step Python, progress) costs; patterns/s per core
divides by the CPU cores this process may use.

    .venv/bin/python benchmarks/bench_training.py                      # all models, 8501-point grid
    .venv/bin/python benchmarks/bench_training.py --models park_medium resnet10 --batch 32 --steps 10
    .venv/bin/python benchmarks/bench_training.py --models park_medium --batch 870 --generator-rate 565   # on a GPU

Cluster sizing: with `--generator-rate R` (patterns/s one generator core makes in the pattern preset
the cluster trains with: bench_pipeline.py's "/s/core"), the last column is the number of generator
cores that keep this trainer busy, ceil(trainer patterns/s / R): the CPUs to ask for beside one GPU.

Patterns are real: MP-40 structures simulated with area B's simulator on the configured grid.
"""

from __future__ import annotations

import argparse
import itertools
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

MP40_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "mp40" / "random_split_test.csv"


def real_patterns(config, n: int, seed: int = 0):
    import dataclasses

    from xrdgen.collection.entries import read_chunk
    from xrdgen.collection.reading import list_records
    from xrdgen.training.datasets import simulate_set
    from xrdgen.training.rundir import InputSpec

    entries, _ = read_chunk(list_records(MP40_CSV)[:n], config.collection)
    crystals = [dataclasses.replace(e.crystal, spacegroup=int(e.spacegroup)) for e in entries]
    spacegroups = sorted({c.spacegroup for c in crystals})
    patterns = simulate_set(crystals, InputSpec.from_config(config), config.simulation, seed, classes=spacegroups)
    return patterns.x, patterns.class_indices(spacegroups)


def main() -> None:
    import keras

    from models import MODEL_NAMES, build_model
    from xrdgen.config import load_config
    from xrdgen.training.trainer import Trainer

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODEL_NAMES), choices=MODEL_NAMES)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--steps", type=int, default=4, help="timed steps per model (after 2 warm-up steps)")
    parser.add_argument("--classes", type=int, default=145)
    parser.add_argument("--repeats", type=int, default=2, help="best of this many timings per method")
    parser.add_argument("--set", dest="sets", action="append", default=[], help="config override, e.g. grid.step=0.02")
    parser.add_argument(
        "--generator-rate",
        type=float,
        default=None,
        help="patterns/s per generator core (bench_pipeline.py), for the sizing column",
    )
    args = parser.parse_args()

    from xrdgen.config import parse_overrides

    config = load_config(None, parse_overrides(args.sets))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    x, y = real_patterns(config, max(args.batch, 64))
    y = (y % args.classes).astype(np.int32)
    reps = int(np.ceil(args.batch * (args.steps + 2) / len(y)))
    x_all, y_all = np.tile(x, (reps, 1))[: args.batch * (args.steps + 2)], np.tile(y, reps)[: args.batch * (args.steps + 2)]
    print(
        f"keras {keras.__version__} backend {keras.backend.backend()}, {cores} cores, grid {config.grid.n_points} points, "
        f"batch {args.batch}, {args.steps} timed steps, {args.classes} classes"
    )
    sizing = f" {'generator cores':>15}" if args.generator_rate else ""
    print(f"{'model':<12} {'params':>11} {'trainer p/s':>12} {'bare p/s':>9} {'ratio':>6} {'p/s/core':>9}{sizing}")
    batches = [(x_all[i : i + args.batch], y_all[i : i + args.batch]) for i in range(0, len(y_all), args.batch)]
    for name in args.models:
        # Reference: plain Keras train_on_batch on the same batches (no strategy, no bookkeeping).
        model = build_model(name, args.classes, config.grid.n_points)
        model.compile(optimizer=keras.optimizers.Adam(1e-4), loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        for xb, yb in batches[:2]:  # warm-up: tracing, first allocations
            model.train_on_batch(xb, yb)
        bare_rate = 0.0
        for _ in range(args.repeats):  # best of a few: the machine is shared and noisy
            t0 = time.perf_counter()
            for xb, yb in itertools.islice(itertools.cycle(batches), args.steps):
                model.train_on_batch(xb, yb)
            bare_rate = max(bare_rate, args.steps * args.batch / (time.perf_counter() - t0))
        params = model.count_params()
        del model

        # Ours: the Trainer with its strategy and bookkeeping; one epoch of `steps` batches per repeat,
        # timed by the Trainer itself (the steps, not the checkpoint written after each epoch).
        run_config = config.model_copy(
            update={"training": config.training.model_copy(update={"model": name, "batch_size": args.batch})}
        )
        trainer_rate = 0.0
        with tempfile.TemporaryDirectory() as tmp:
            trainer = Trainer(run_config, list(range(1, args.classes + 1)), run_dir=tmp, log=lambda _: None)
            # epoch 1 warms up (tracing, first allocations); the best later epoch counts.
            trainer.fit(itertools.cycle(batches), epochs=args.repeats + 1, batches_per_epoch=args.steps, log_every_s=1e9)
            trainer_rate = max(h["patterns_per_s"] for h in trainer.history[1:])
        print(
            f"{name:<12} {params:>11,} {trainer_rate:>12.1f} {bare_rate:>9.1f} {trainer_rate / bare_rate:>6.2f} {trainer_rate / cores:>9.1f}"
            + (f" {int(np.ceil(trainer_rate / args.generator_rate)):>15}" if args.generator_rate else "")
        )


if __name__ == "__main__":
    main()
