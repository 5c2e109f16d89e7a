"""Training throughput against the machine's float32 FLOP limit, for each model, batch, backend,
XLA setting and thread setting, through the Trainer (Keras' fit on its input pipeline).

Ours: patterns/s trained by `xrdgen.training.trainer.Trainer` (the best of the timed epochs after
a warm-up epoch), times the model's FLOPs per trained pattern counted from its layers
(models/flops.py), gives the achieved GFLOP/s. Reference, measured in the same run: the machine's
float32 matmul peak, the best of 2048 x 2048 products on every backend and thread setting of the
run. Ratio: achieved / peak, each line ending in "P % of the measured matmul peak". Every
configuration runs in its own Python process (backend and threads are fixed when a process starts).

    .venv/bin/python benchmarks/bench_training.py                                  # park_medium, the default matrix
    .venv/bin/python benchmarks/bench_training.py --models park_medium resnet10 --batches 64 --steps 4
    .venv/bin/python benchmarks/bench_training.py --backends tensorflow --xla off --threads default --set grid.step=0.02
    .venv/bin/python benchmarks/bench_training.py --models park_medium --batches 870 --generator-rate 565   # on a GPU

Cluster sizing: with `--generator-rate R` (patterns/s one generator core makes in the pattern preset
the cluster trains with: bench_pipeline.py's "/s/core"), each line also gives the number of
generator cores that keep this trainer busy, ceil(trainer patterns/s / R).

Patterns are real: MP-40 structures simulated on the configured grid.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

MP40_CSV = Path(__file__).resolve().parents[2] / "shared" / "data" / "mp40" / "random_split_test.csv"
THREADS = {"default": {}, "intra2-inter1": {"TF_NUM_INTRAOP_THREADS": "2", "TF_NUM_INTEROP_THREADS": "1"}}


def matmul_peak(backend: str, n: int = 2048, repeats: int = 5) -> float:
    """GFLOP/s of float32 n x n matrix products on this backend (best of `repeats` batches of 4)."""
    import numpy as np

    a = np.random.default_rng(0).random((n, n), dtype=np.float32)
    if backend == "jax":
        import jax

        f = jax.jit(lambda x: x @ x @ x @ x @ x)
        x = jax.device_put(a)
        run = lambda: f(x).block_until_ready()  # noqa: E731
    else:
        import tensorflow as tf

        f = tf.function(lambda x: x @ x @ x @ x @ x)
        x = tf.constant(a)
        run = lambda: f(x).numpy()  # noqa: E731
    run()
    best = 0.0
    for _ in range(repeats):
        t0 = time.perf_counter()
        run()
        best = max(best, 4 * 2 * n**3 / (time.perf_counter() - t0) / 1e9)
    return best


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


def worker(job: dict) -> dict:
    """One configuration in this process: the Trainer's patterns/s, the model's FLOPs, the peak."""
    import itertools
    import tempfile

    import numpy as np

    from models.flops import training_flops
    from xrdgen.config import load_config, parse_overrides
    from xrdgen.training.trainer import Trainer

    overrides = parse_overrides(job["sets"])
    overrides.update(
        {
            "training.model": job["model"],
            "training.batch_size": job["batch"],
            "training.jit_compile": job["xla"],
            "training.batches_per_epoch": job["steps"],
        }
    )
    config = load_config(None, overrides)
    x, y = real_patterns(config, 64)
    y = (y % job["classes"]).astype(np.int32)
    reps = int(np.ceil(job["batch"] / len(y)))
    x, y = np.tile(x, (reps, 1))[: job["batch"]], np.tile(y, reps)[: job["batch"]]
    with tempfile.TemporaryDirectory() as tmp:
        trainer = Trainer(config, list(range(1, job["classes"] + 1)), run_dir=tmp, log=lambda line: None)
        # epoch 1 warms up (tracing, compilation, first allocations); the best later epoch counts.
        trainer.fit(itertools.repeat((x, y)), epochs=job["repeats"] + 1, log_every_s=1e9)
        rate = max(h["patterns_per_s"] for h in trainer.history[1:])
        flops = training_flops(trainer.model)
        params = trainer.model.count_params()
    return {**job, "patterns_per_s": rate, "train_flops": flops, "params": params}


def run_worker(job: dict, what: str = "--worker") -> dict:
    env = {**os.environ, "KERAS_BACKEND": job["backend"], "TF_CPP_MIN_LOG_LEVEL": "3", **THREADS[job["threads"]]}
    if job["backend"] == "jax":
        env["JAX_PLATFORMS"] = env.get("JAX_PLATFORMS", "cpu")
    done = subprocess.run(
        [sys.executable, __file__, what, json.dumps(job)], env=env, capture_output=True, text=True, timeout=3600
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        return {**job, "error": (done.stderr.strip().splitlines() or ["no output"])[-1][:160]}
    return json.loads(lines[-1][len("RESULT ") :])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", nargs="+", default=["park_medium"])
    parser.add_argument("--batches", nargs="+", type=int, default=[128, 870])
    parser.add_argument("--backends", nargs="+", default=["tensorflow", "jax"], choices=["tensorflow", "jax"])
    parser.add_argument("--xla", nargs="+", default=["off", "on"], choices=["off", "on"])
    parser.add_argument("--threads", nargs="+", default=list(THREADS), choices=list(THREADS), help="TensorFlow thread settings")
    parser.add_argument("--steps", type=int, default=6, help="steps per timed epoch")
    parser.add_argument("--repeats", type=int, default=2, help="timed epochs (best counts)")
    parser.add_argument("--classes", type=int, default=109)
    parser.add_argument("--set", dest="sets", action="append", default=[], help="config override, e.g. grid.step=0.02")
    parser.add_argument("--generator-rate", type=float, default=None, help="patterns/s per generator core, for sizing")
    parser.add_argument("--json", type=Path, default=None, help="also write the results here")
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--peak-worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        print("RESULT " + json.dumps(worker(json.loads(args.worker))), flush=True)
        return
    if args.peak_worker is not None:
        job = json.loads(args.peak_worker)
        print("RESULT " + json.dumps({**job, "peak": matmul_peak(job["backend"], repeats=10)}), flush=True)
        return

    import math

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    # The reference: the machine's float32 matmul peak, the best of every backend and thread setting of the run.
    peaks = [run_worker(dict(backend=b, threads=t), "--peak-worker") for b in args.backends for t in THREADS]
    peak = max(p.get("peak", 0.0) for p in peaks)
    print(f"{cores} cores; grid overrides {args.sets or 'none'}; {args.steps} steps per epoch, best of {args.repeats}")
    print("float32 matmul peak: " + ", ".join(f"{p['backend']} {p['threads']} {p.get('peak', float('nan')):.1f}" for p in peaks))
    print(f"machine peak (the best of them): {peak:.1f} GFLOP/s")
    header = f"{'model':<12} {'batch':>5} {'backend':<10} {'XLA':<3} {'threads':<13} {'patterns/s':>10} {'MFLOP/pattern':>13} {'GFLOP/s':>8}"
    print(header + (f" {'gen. cores':>10}" if args.generator_rate else ""))
    results = []
    for model in args.models:
        for batch in args.batches:
            for backend in args.backends:
                for xla in args.xla:
                    for threads in args.threads if backend == "tensorflow" else ["default"]:
                        job = dict(model=model, batch=batch, backend=backend, xla=xla == "on", threads=threads)
                        job.update(steps=args.steps, repeats=args.repeats, classes=args.classes, sets=args.sets)
                        r = run_worker(job)
                        results.append(r)
                        where = f"{model:<12} {batch:>5} {backend:<10} {xla:<3} {threads:<13}"
                        if "error" in r:
                            print(f"{where} failed: {r['error']}", flush=True)
                            continue
                        gflops = r["patterns_per_s"] * r["train_flops"] / 1e9
                        sizing = f" {math.ceil(r['patterns_per_s'] / args.generator_rate):>10}" if args.generator_rate else ""
                        print(
                            f"{where} {r['patterns_per_s']:>10.1f} {r['train_flops'] / 1e6:>13.1f} {gflops:>8.1f}"
                            f"{sizing}  {100 * gflops / peak:.0f} % of the measured matmul peak",
                            flush=True,
                        )
    done = [r for r in results if "error" not in r]
    if done:
        best = max(done, key=lambda r: r["patterns_per_s"] * r["train_flops"])
        achieved = best["patterns_per_s"] * best["train_flops"] / 1e9
        print(
            f"fastest: {best['model']} batch {best['batch']} {best['backend']} XLA {'on' if best['xla'] else 'off'} "
            f"threads {best['threads']} ({best['patterns_per_s']:.1f} patterns/s, {achieved:.1f} GFLOP/s, "
            f"{100 * achieved / peak:.0f} % of the machine peak)"
        )
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=1) + "\n")


if __name__ == "__main__":
    main()
