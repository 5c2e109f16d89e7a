"""End-to-end patterns/s through the Ray queue vs the same PatternStream loop without Ray; the queue's
own cost under backpressure and its capacity.

    .venv/bin/python benchmarks/bench_pipeline.py [--statistics STATS.json] [--patterns 2560] [--batch 256]
                                                  [--part all|overhead|queue]

Same work on both sides: generation time is heavy-tailed (a few large crystals cost seconds of
spglib), so the reference is not "some seconds of a stream" but exactly the patterns the Ray actors
make: pool member i streams with seed member_seed(seed, i), and the reference runs the streams of
members 0 and 1 in this process (one core), after one start-up batch each. Then a generator pool of
1 and 2 actors (1 CPU each) feeds the bounded queue, consumed here through `QueueFeed` exactly as
the trainer consumes it. Printed: patterns/s, patterns/s per core, the Ray overhead of 1 actor against
the reference (target < 5 %) split into its two parts — the queue transport (against the same loop
timed inside a 1-CPU Ray actor) and running as a Ray worker at all (the actor against this process:
Ray starts workers at nice 15, and the driver, raylet and GCS share the two cores) — the share of the
wall time the producer spent making patterns, and the 1 -> 2 actor scaling. Default grid (8501 points), the `measured` preset (`--preset pure` for
the other), i.e. the real per-pattern work.

On a shared 2-core machine the 2-actor figure also competes with the consumer and with whatever else
runs; read the scaling as a lower bound.

The queue part (`--part queue`) takes the simulation out: producers that only replay one ready batch
of the stream (256 patterns of 8501 points, 8.7 MB).
  * Backpressure: 2 producers, a queue of 4 items and a consumer that takes one item per second, so
    the producers are blocked nearly all the time. The queue actor counts the payload bytes that
    arrive with every put call (also the calls that time out), per delivered pattern: the previous
    hand-over (a put with a 1 s timeout, retried with the whole batch) against `hand_over` (sent once,
    the wait on the actor's side). Reference: a pattern's own payload.
  * Capacity: patterns/s that 1-4 replaying producers deliver through the real queue to one
    `QueueFeed` consumer (the trainer's input path), i.e. the most a trainer can receive whatever the
    number of generator cores. Everything here shares this machine's cores (producers, queue actor,
    consumer, raylet): on a cluster each producer serialises on its own node.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# One thread per loop, as Ray gives a 1-CPU actor (it sets OMP_NUM_THREADS=1): otherwise the
# reference's BLAS threads fight over the cores and the comparison measures oversubscription.
for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import numpy as np  # noqa: E402

from xrdgen.config import load_config  # noqa: E402

SHARED = Path(__file__).resolve().parents[2] / "shared" / "data" / "mp40"


def statistics_from_mp40(config):
    from xrdgen.collection.reading import read_collection
    from xrdgen.statistics.build import build_statistics

    csvs = sorted(SHARED.glob("*.csv"))
    if not csvs:
        sys.exit(f"no statistics given and {SHARED} is absent: pass --statistics")
    entries = read_collection(csvs, config).entries
    return build_statistics(entries, config)


def seconds_without_ray(statistics, config, index: int, n_patterns: int) -> float:
    """Time for the patterns after the first batch of pool member `index`'s stream, in this process."""
    from services.generator_pool import member_seed
    from xrdgen.training.stream import PatternStream

    stream = PatternStream(statistics, config, seed=member_seed(config.seed, index))
    batch = config.cluster.generator_batch_size
    stream.next_batch(batch)  # start-up (compilation, caches), excluded as in the Ray measurement
    t0 = time.perf_counter()
    for _ in range(n_patterns // batch):
        stream.next_batch(batch)
    return time.perf_counter() - t0


MAKING: list[float] = []  # per Ray measurement: the share of the wall time a producer spent making patterns


def _making_seconds(pool) -> float:
    """Seconds the pool's producers spent in the stream itself (generate, simulate, augment), summed."""
    return sum(c["seconds_generate"] + c["seconds_simulate"] + c["seconds_augment"] for c in pool.counters())


def seconds_in_actor(statistics_path, config, index: int, n_patterns: int) -> float:
    """The reference's loop inside a 1-CPU Ray actor (a Ray worker: nice 15, OMP_NUM_THREADS=1), no queue."""
    import ray

    @ray.remote(num_cpus=1)
    def timed(path, config, index, n):
        from xrdgen.statistics.model import Statistics

        return seconds_without_ray(Statistics.load(path), config, index, n)

    return ray.get(timed.remote(str(statistics_path), config, index, n_patterns))


def seconds_with_ray(server, config, n_actors: int, n_patterns: int) -> float:
    """Time to receive n_actors * n_patterns patterns through the queue after each actor's first batch.

    With one actor the queue is FIFO, so these are exactly the patterns the reference made.
    """
    from services.batch_feed import QueueFeed
    from services.generator_pool import GeneratorPool

    config = config.model_copy(deep=True)
    config.cluster.n_generators = n_actors
    config.cluster.queue_max_items = 4 * n_actors
    batch = config.cluster.generator_batch_size
    pool = GeneratorPool(server, config)
    feed = QueueFeed(pool.queue, batch, prefetch_batches=2)
    try:
        for _ in range(n_actors):  # start-up: every actor has delivered its first batch
            feed.next_batch()
        before = _making_seconds(pool)
        t0 = time.perf_counter()
        for _ in range(n_actors * n_patterns // batch):
            feed.next_batch()
        seconds = time.perf_counter() - t0
        MAKING.append((_making_seconds(pool) - before) / n_actors / seconds)
        return seconds
    finally:
        feed.close()
        pool.shutdown()


# ------------------------------------------------------------------------------ the queue alone
def ready_batch(config) -> tuple:
    """One real batch of the stream (the shipped default statistics), replayed by the queue measurements."""
    from services.generator_pool import member_seed
    from xrdgen.pipeline import resolve_statistics
    from xrdgen.statistics.model import Statistics
    from xrdgen.training.stream import PatternStream

    statistics = Statistics.load(resolve_statistics("default")[0])
    return PatternStream(statistics, config, seed=member_seed(config.seed, 0)).next_batch(config.cluster.generator_batch_size)


def payload_bytes(item) -> int:
    return sum(np.asarray(part).nbytes for part in item)


def put_resending(queue, batch, stop) -> None:
    """The previous hand-over: a put with a PUT_TIMEOUT_S timeout, retried (with the batch) until it fits."""
    from ray.util.queue import Full

    from services.generator_pool import PUT_TIMEOUT_S

    while not stop.is_set():
        try:
            queue.put(batch, block=True, timeout=PUT_TIMEOUT_S)
            return
        except Full:
            continue


class _Replayer:
    """A producer without simulation: hands the same ready batch to the queue until stopped."""

    def __init__(self, batch: tuple, resend: bool):
        import threading

        self._batch, self._resend, self._stop = batch, resend, threading.Event()

    def run(self, queue) -> int:
        from services.generator_pool import hand_over

        items = 0
        while not self._stop.is_set():
            if self._resend:
                put_resending(queue, self._batch, self._stop)
            else:
                hand_over(queue, self._batch, self._stop)
            items += 1
        return items

    def stop(self) -> None:
        self._stop.set()


def _counting_queue_actor_class():
    from ray.util.queue import _QueueActor

    class _CountingQueueActor(_QueueActor):
        """ray.util.queue's own actor, counting the payload bytes that arrive with each put call."""

        def __init__(self, maxsize):
            super().__init__(maxsize)
            self.bytes_received = 0

        async def put(self, item, timeout=None):
            self.bytes_received += payload_bytes(item)
            return await super().put(item, timeout)

        def received(self) -> int:
            return self.bytes_received

    return _CountingQueueActor


def make_queue(config, maxsize: int, counting: bool = False):
    """The job's queue (same actor options); `counting`: with the byte-counting actor in place of Ray's."""
    import ray
    from ray.util.queue import Queue

    from services.options import queue_options

    options = queue_options(config.cluster, ray.get_runtime_context().get_node_id())
    if not counting:
        return Queue(maxsize, actor_options=options)
    queue = Queue.__new__(Queue)  # Queue's constructor would start Ray's plain actor
    queue.maxsize = maxsize
    queue.actor = ray.remote(_counting_queue_actor_class()).options(**options).remote(maxsize)
    return queue


def start_replayers(batch, count: int, resend: bool, queue) -> list:
    import ray

    actors = [ray.remote(_Replayer).options(num_cpus=0, max_concurrency=2).remote(batch, resend) for _ in range(count)]
    for actor in actors:
        actor.run.remote(queue)
    return actors


def stop_replayers(actors: list, queue) -> None:
    import ray

    for actor in actors:
        actor.stop.remote()
    time.sleep(1.5)
    for actor in actors:
        ray.kill(actor)
    queue.shutdown(force=True)


def bytes_under_backpressure(config, batch, resend: bool, producers: int, every_s: float, seconds: float) -> tuple:
    """(bytes the queue actor received per delivered pattern, MB/s it received) while the consumer
    takes one item every `every_s` from a full queue of 4."""
    import ray

    queue = make_queue(config, maxsize=4, counting=True)
    actors = start_replayers(batch, producers, resend, queue)
    try:
        while queue.qsize() < queue.maxsize:
            time.sleep(0.2)
        time.sleep(3.0)  # every producer is blocked now
        received0, delivered = ray.get(queue.actor.received.remote()), 0
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < seconds:
            queue.get(timeout=30)
            delivered += 1
            time.sleep(max(0.0, t0 + delivered * every_s - time.perf_counter()))
        elapsed = time.perf_counter() - t0
        received = ray.get(queue.actor.received.remote()) - received0
    finally:
        stop_replayers(actors, queue)
    return received / (delivered * len(batch[1])), received / elapsed / 1e6


def capacity(config, batch, producers: int, seconds: float) -> float:
    """Patterns/s that `producers` replaying producers deliver through the queue to one `QueueFeed`."""
    from services.batch_feed import QueueFeed

    queue = make_queue(config, maxsize=config.cluster.queue_max_items)
    actors = start_replayers(batch, producers, resend=False, queue=queue)
    feed = QueueFeed(queue, len(batch[1]), prefetch_batches=2)
    try:
        for _ in range(2 * producers):  # start-up
            feed.next_batch()
        t0, delivered = time.perf_counter(), 0
        while time.perf_counter() - t0 < seconds:
            feed.next_batch()
            delivered += 1
        return delivered * len(batch[1]) / (time.perf_counter() - t0)
    finally:
        feed.close()
        stop_replayers(actors, queue)


def measure_queue(config, seconds: float) -> None:
    from services.ray_runtime import ray_session

    batch = ready_batch(config)
    per_pattern = payload_bytes(batch) / len(batch[1])
    print(
        f"queue alone: producers replay one ready batch of {len(batch[1])} patterns ({payload_bytes(batch) / 1e6:.1f} MB); "
        f"a pattern's payload is {per_pattern / 1e3:.1f} kB"
    )
    with ray_session(num_cpus=2):
        before = bytes_under_backpressure(config, batch, True, producers=2, every_s=1.0, seconds=seconds)
        after = bytes_under_backpressure(config, batch, False, producers=2, every_s=1.0, seconds=seconds)
        print(
            f"backpressure (2 producers, queue of 4, consumer 1 item/s): bytes the queue actor receives per delivered "
            f"pattern: before (timed put, re-sent every second) {before[0] / 1e3:.1f} kB ({before[1]:.1f} MB/s), "
            f"after (sent once) {after[0] / 1e3:.1f} kB ({after[1]:.1f} MB/s); reference, the pattern itself "
            f"{per_pattern / 1e3:.1f} kB: before x{before[0] / per_pattern:.2f}, after x{after[0] / per_pattern:.2f}"
        )
        rates = {n: capacity(config, batch, n, seconds) for n in (1, 2, 3, 4)}
    print(
        "queue capacity, replaying producers -> one QueueFeed consumer: "
        + ", ".join(f"{n} producer{'s' if n > 1 else ''} {rate:,.0f} patterns/s" for n, rate in rates.items())
        + f" ({max(rates.values()) * per_pattern / 1e6:.0f} MB/s at best; {os.cpu_count()} cores shared by all)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--statistics", type=Path, default=None)
    parser.add_argument(
        "--patterns",
        type=int,
        default=2560,
        help="patterns per stream measured (after its first batch); a window of several seconds, so the queue's fill and "
        "poll latency (fixed per measurement) does not count as per-pattern overhead",
    )
    parser.add_argument("--batch", type=int, default=256, help="patterns per queue item (cluster.generator_batch_size)")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved reference / 1-actor rounds (best counts)")
    parser.add_argument("--preset", choices=("pure", "measured"), default="measured", help="pattern preset of the stream")
    parser.add_argument(
        "--part",
        choices=("all", "overhead", "queue"),
        default="all",
        help="overhead: the stream through the queue vs without Ray; queue: the queue alone (backpressure bytes, capacity)",
    )
    parser.add_argument("--seconds", type=float, default=20.0, help="window of each queue measurement")
    args = parser.parse_args()

    config = load_config(
        None,
        {
            "preset": args.preset,
            "cluster.generator_batch_size": args.batch,
            "cluster.cpus_per_generator": 1.0,
            "statistics.min_count_per_spacegroup": 20,
        },
    )
    if args.part in ("all", "queue"):
        measure_queue(config, args.seconds)
    if args.part == "queue":
        return
    if args.statistics:
        from xrdgen.statistics.model import Statistics

        statistics = Statistics.load(args.statistics)
    else:
        statistics = statistics_from_mp40(config)
    print(
        f"statistics: {len(statistics.spacegroups)} classes; preset {config.preset}; grid {config.grid.n_points} points; "
        f"{args.patterns} patterns per stream; {os.cpu_count()} cores on this machine"
    )

    from services.ray_runtime import ray_session

    n = args.patterns
    from services.statistics_server import StatisticsServer

    with ray_session(num_cpus=2), tempfile.TemporaryDirectory() as tmp:
        statistics_path = args.statistics or statistics.save(Path(tmp) / "statistics.json")
        server = StatisticsServer(statistics_path, config.cluster)
        # Interleaved rounds, best of each (the machine is shared: the minimum is the least disturbed).
        ref0, actor0, ray1 = [], [], []
        for _ in range(args.rounds):
            ref0.append(seconds_without_ray(statistics, config, 0, n))
            actor0.append(seconds_in_actor(statistics_path, config, 0, n))
            ray1.append(seconds_with_ray(server, config, 1, n))
        ref1 = seconds_without_ray(statistics, config, 1, n)
        ray2 = seconds_with_ray(server, config, 2, n)
    plain, in_actor, one = n / min(ref0), n / min(actor0), n / min(ray1)
    plain_both, two = 2 * n / (min(ref0) + ref1), 2 * n / ray2
    print(
        f"reference, no Ray, 1 core, stream 0: {plain:8.2f} patterns/s   (rounds: "
        + ", ".join(f"{n / t:.1f}" for t in ref0)
        + f"; streams 0+1: {plain_both:.2f} /s)"
    )
    print(
        f"Ray queue, 1 actor (stream 0):       {one:8.2f} patterns/s   ({one:.2f} /s/core; rounds: "
        + ", ".join(f"{n / t:.1f}" for t in ray1)
        + ")"
    )
    print(
        f"the same loop in a 1-CPU Ray actor:   {in_actor:8.2f} patterns/s   (a Ray worker runs at nice 15; rounds: "
        + ", ".join(f"{n / t:.1f}" for t in actor0)
        + ")"
    )
    print(f"Ray queue, 2 actors (streams 0+1):   {two:8.2f} patterns/s   ({two / 2:.2f} /s/core)")
    print(
        f"ratio Ray(1 actor) / reference, same patterns: {one / plain:.3f} -> Ray overhead "
        f"{100 * (1 - one / plain):+.1f} % (target < 5 %), of which the queue transport (vs the same loop in an actor) "
        f"{100 * (1 - one / in_actor):+.1f} % and running as a Ray worker {100 * (1 - in_actor / plain):+.1f} %"
    )
    print(
        f"producer busy making patterns: {100 * min(MAKING[:-1]):.0f}-{100 * max(MAKING[:-1]):.0f} % of the wall time with 1 actor, "
        f"{100 * MAKING[-1]:.0f} % each with 2 (the rest: its queue calls, and waiting for a core)"
    )
    print(
        f"scaling 1 -> 2 actors: x{two / one:.2f}; 2 actors vs 1-core reference of the same streams: "
        f"x{two / plain_both:.2f} (ideal x2.00)"
    )


if __name__ == "__main__":
    main()
