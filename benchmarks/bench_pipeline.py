"""End-to-end patterns/s through the Ray queue vs the same PatternStream loop without Ray.

    .venv/bin/python benchmarks/bench_pipeline.py [--statistics STATS.json] [--seconds 30]

Reference: `PatternStream.next_batch` in this process, one core. Then a generator pool of 1 and 2
actors (1 CPU each) feeding the bounded queue, consumed here through `QueueFeed` exactly as the
trainer consumes it. Printed: patterns/s, patterns/s per core, the Ray overhead of 1 actor against
the reference (target < 5 %), and the 1 -> 2 actor scaling. Default grid (8501 points) and default
generation/augmentation settings, i.e. the real per-pattern work.

On a shared 2-core machine the 2-actor figure also competes with the consumer and with whatever else
runs; read the scaling as a lower bound.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

from xrdgen.config import load_config  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "mp40"


def statistics_from_mp40(config):
    from xrdgen.collection import read_collection
    from xrdgen.statistics import build_statistics

    csvs = sorted(SHARED.glob("*.csv"))
    if not csvs:
        sys.exit(f"no statistics given and {SHARED} is absent: pass --statistics")
    entries = read_collection(csvs, config).entries
    return build_statistics(entries, config)


def rate_without_ray(statistics, config, seconds: float) -> float:
    from xrdgen.stream import PatternStream

    stream = PatternStream(statistics, config, seed=config.seed)
    batch = config.cluster.generator_batch_size
    stream.next_batch(batch)  # warm-up: compiled kernels, caches
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        n += len(stream.next_batch(batch)[1])
    return n / (time.perf_counter() - t0)


def rate_with_ray(statistics_ref, config, n_actors: int, seconds: float) -> float:
    from services.batch_feed import QueueFeed
    from services.generator_pool import GeneratorPool

    config = config.model_copy(deep=True)
    config.cluster.n_generators = n_actors
    pool = GeneratorPool(statistics_ref, config)
    feed = QueueFeed(pool.queue, config.cluster.generator_batch_size, prefetch_batches=2)
    try:
        for _ in range(n_actors):  # warm-up: every actor has started and delivered
            feed.next_batch()
        n, t0 = 0, time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            n += len(feed.next_batch()[1])
        return n / (time.perf_counter() - t0)
    finally:
        feed.close()
        pool.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--statistics", type=Path, default=None)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--batch", type=int, default=16, help="patterns per queue item")
    args = parser.parse_args()

    config = load_config(None, {"cluster.generator_batch_size": args.batch, "cluster.cpus_per_generator": 1.0,
                                "statistics.min_count_per_spacegroup": 20})
    if args.statistics:
        from xrdgen.statistics import Statistics

        statistics = Statistics.load(args.statistics)
    else:
        statistics = statistics_from_mp40(config)
    print(f"statistics: {len(statistics.spacegroups)} classes; grid {config.grid.n_points} points; "
          f"{args.seconds:.0f} s per measurement; {os.cpu_count()} cores on this machine")

    plain = rate_without_ray(statistics, config, args.seconds)
    print(f"reference (PatternStream, no Ray, 1 core): {plain:8.2f} patterns/s")

    import ray

    from services.ray_runtime import ray_session

    with ray_session(num_cpus=2):
        ref = ray.put(statistics)
        one = rate_with_ray(ref, config, 1, args.seconds)
        two = rate_with_ray(ref, config, 2, args.seconds)
    print(f"Ray queue, 1 actor:                         {one:8.2f} patterns/s  ({one:.2f} /s/core)")
    print(f"Ray queue, 2 actors:                        {two:8.2f} patterns/s  ({two / 2:.2f} /s/core)")
    print(f"ratio Ray(1 actor) / reference: {one / plain:.3f}  -> Ray overhead {100 * (1 - one / plain):+.1f} % (target < 5 %)")
    print(f"scaling 1 -> 2 actors: x{two / one:.2f} (ideal x2.00)")


if __name__ == "__main__":
    main()
