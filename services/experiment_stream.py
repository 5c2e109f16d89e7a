"""Arm A of the experiment fed by the Ray generator pool: every core of the cluster makes patterns.

`pool_stream` is an `xrdgen.experiment.arms.StreamOpener`: for one (split, training seed) it starts
the statistics server on the split's statistics file, a supervised `GeneratorPool` (size
`cluster.n_generators`, "auto" = the cluster's free CPUs) and a `QueueFeed` cutting the queue's
items into training batches; on leaving, the feed, the pool and the server go away, so each run
has its own producers seeded from its training seed (`member_seed(seed, index)`). Patterns arrive
in the order the producers finish them, so arm A is reproducible in distribution, not batch for
batch (the in-process stream is both).
"""

from __future__ import annotations

import contextlib
from pathlib import Path

from services.batch_feed import QueueFeed
from services.generator_pool import GeneratorPool
from services.statistics_server import StatisticsServer
from xrdgen.config import Config
from xrdgen.statistics.model import Statistics

COUNTERS_TIMEOUT_S = 10.0
SUMMED = ("patterns", "skipped", "full_queue_waits", "seconds_generate", "seconds_simulate", "seconds_augment")


@contextlib.contextmanager
def pool_stream(statistics: Statistics, statistics_path: Path, config: Config, seed: int, batch_size: int):
    """(batches, counters()) from a generator pool on the running Ray; counters are summed over members."""
    run_config = config.model_copy(update={"seed": seed})
    with contextlib.ExitStack() as cleanup:
        server = StatisticsServer(statistics_path, run_config.cluster)
        cleanup.callback(server.shutdown)
        pool = GeneratorPool(server, run_config)
        cleanup.callback(pool.shutdown)
        feed = QueueFeed(pool.queue, batch_size, run_config.cluster.prefetch_batches)
        cleanup.callback(feed.close)

        def counters() -> dict:
            members = pool.counters(timeout=COUNTERS_TIMEOUT_S)
            summed = {k: sum(m[k] for m in members) for k in SUMMED}
            return {**summed, "generators": [m["name"] for m in members], "replacements": pool.replacements}

        yield iter(feed), counters
