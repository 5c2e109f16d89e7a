"""Generator pool: N long-lived actors looping `PatternStream` batches into one bounded queue.

Shape (style of ray/util/queue.py: a public class wrapping a plain private actor class):
  * `_GeneratorActor` is a thin shell around `xrdgen.stream.PatternStream`: build the stream once,
    then `run` forever: next_batch -> queue.put (blocks while the queue is full: backpressure, so
    memory stays bounded by queue_max_items + n_generators batches whatever the trainer's speed).
  * `GeneratorPool` starts the actors and supervises them from a background thread: an actor whose
    process dies is restarted by Ray (`max_restarts`, and its `run` retried); an actor that is gone
    for good (killed, restarts used up, its node lost) is replaced by a new one, so the pool keeps
    its size.

Seeds: member i of the pool streams with seed SeedSequence([config.seed, i]); a replacement takes
the next unused i, and a Ray-restarted actor mixes in fresh entropy, so no member ever replays
patterns another already produced.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Optional

import numpy as np
import ray
from ray.exceptions import RayActorError, RayTaskError
from ray.util.queue import Full, Queue

from services import metrics
from services.options import generator_options, queue_options
from xrdgen.config import Config

log = logging.getLogger(__name__)

PUT_TIMEOUT_S = 1.0  # how often a blocked producer looks up to see whether it should stop
SUPERVISE_EVERY_S = 0.5


def member_seed(seed: int, index: int, restarted: bool = False) -> int:
    """Seed of pool member `index`; fresh entropy after a Ray restart (no replayed patterns)."""
    entropy = [seed, index] + ([int(time.time_ns())] if restarted else [])
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


class _GeneratorActor:
    def __init__(self, statistics_ref: list, config: Config, index: int, queue: Queue):
        import warnings

        from xrdgen.stream import PatternStream

        statistics = ray.get(statistics_ref[0])  # the shared copy in the object store
        with warnings.catch_warnings():  # the property reads the actor id through a deprecated path
            warnings.simplefilter("ignore", DeprecationWarning)
            restarted = bool(ray.get_runtime_context().was_current_actor_reconstructed)
        self._name = f"generator-{index}"
        self._stream = PatternStream(statistics, config, member_seed(config.seed, index, restarted))
        self._batch_size = config.cluster.generator_batch_size
        self._queue = queue
        self._stop = threading.Event()
        self._tags = {"actor": self._name}

    def run(self) -> dict:
        """Produce until `stop`; returns the stream's counters."""
        counter, rate, skipped = metrics.patterns_generated(), metrics.patterns_per_second(), metrics.patterns_skipped()
        while not self._stop.is_set():
            t0, skipped_before = time.perf_counter(), self._stream.counters.skipped
            batch = self._stream.next_batch(self._batch_size)
            seconds = time.perf_counter() - t0  # production only, not the wait on a full queue
            counter.inc(self._batch_size, tags=self._tags)
            rate.set(self._batch_size / max(seconds, 1e-9), tags=self._tags)
            if self._stream.counters.skipped > skipped_before:
                skipped.inc(self._stream.counters.skipped - skipped_before, tags=self._tags)
            while not self._stop.is_set():
                try:
                    self._queue.put(batch, block=True, timeout=PUT_TIMEOUT_S)
                    break
                except Full:
                    continue
        return self.counters()

    def stop(self) -> None:
        self._stop.set()

    def counters(self) -> dict:
        return dict(name=self._name, pid=__import__("os").getpid(), **self._stream.counters.as_dict())


class GeneratorPool:
    """`config.cluster.n_generators` supervised producers feeding `queue` (a new bounded one if None).

    `statistics` is a `Statistics` or an ObjectRef to one (from `StatisticsServer.reference()`).
    """

    def __init__(self, statistics, config: Config, queue: Optional[Queue] = None):
        cluster = config.cluster
        self.config = config
        self._owns_queue = queue is None
        self.queue = queue if queue is not None else Queue(cluster.queue_max_items, actor_options=queue_options(cluster))
        self._statistics_ref = statistics if isinstance(statistics, ray.ObjectRef) else ray.put(statistics)
        self._options = generator_options(cluster)
        self._lock = threading.Lock()
        self._members: dict = {}  # run() ObjectRef -> (index, actor handle)
        self._next_index = 0
        self.replacements = 0
        self.errors: list[str] = []
        self._stopping = threading.Event()
        for _ in range(cluster.n_generators):
            self._spawn()
        self._supervisor = threading.Thread(target=self._supervise, name="generator-pool-supervisor", daemon=True)
        self._supervisor.start()

    # ------------------------------------------------------------------------------------ members
    def _spawn(self) -> None:
        index = self._next_index
        self._next_index += 1
        # The reference travels inside a list, so that Ray hands it over as is (a restart re-reads it
        # from the object store) instead of pinning a resolved copy as a constructor argument.
        actor = ray.remote(_GeneratorActor).options(**self._options).remote(
            [self._statistics_ref], self.config, index, self.queue
        )
        self._members[actor.run.remote()] = (index, actor)

    @property
    def actors(self) -> list:
        with self._lock:
            return [actor for _, actor in self._members.values()]

    @property
    def size(self) -> int:
        with self._lock:
            return len(self._members)

    def _supervise(self) -> None:
        """Replace members whose `run` ended while the pool is running; export pool metrics."""
        depth, alive = metrics.queue_depth(), metrics.pool_size()
        while not self._stopping.is_set():
            with self._lock:
                refs = list(self._members)
            ready, _ = ray.wait(refs, num_returns=1, timeout=SUPERVISE_EVERY_S) if refs else ([], [])
            for ref in ready:
                if self._stopping.is_set():
                    break
                try:
                    ray.get(ref)
                    reason = "returned"
                except RayActorError as exc:
                    reason = f"actor died: {type(exc).__name__}"
                except RayTaskError as exc:  # a bug in the loop: keep the message, replace the member
                    reason = f"failed: {exc}"
                    self.errors.append(str(exc).splitlines()[-1])
                with self._lock:
                    index, _ = self._members.pop(ref)
                    if len(self.errors) > 3 * self.config.cluster.n_generators:
                        log.error("generator pool: too many failures, not replacing %s", index)
                        continue
                    self._spawn()
                    self.replacements += 1
                log.warning("generator-%d %s; replaced by generator-%d", index, reason, self._next_index - 1)
            try:
                depth.set(self.queue.qsize())
                alive.set(self.size)
            except Exception:  # noqa: BLE001 - metrics are best effort; the queue may be restarting
                pass

    def counters(self, timeout: float = 10.0) -> list[dict]:
        """Counters of every live member (members that do not answer in time are left out)."""
        refs = [actor.counters.remote() for actor in self.actors]
        ready, _ = ray.wait(refs, num_returns=len(refs), timeout=timeout)
        out = []
        for ref in ready:
            try:
                out.append(ray.get(ref))
            except (RayActorError, RayTaskError):
                pass
        return out

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop producing, wait briefly for members to finish, then kill what is left."""
        self._stopping.set()
        self._supervisor.join(timeout=timeout)
        actors = self.actors
        for actor in actors:
            try:
                actor.stop.remote()
            except Exception:  # noqa: BLE001
                pass
        with self._lock:
            refs = list(self._members)
            self._members.clear()
        if refs:
            ray.wait(refs, num_returns=len(refs), timeout=timeout)
        for actor in actors:
            ray.kill(actor, no_restart=True)
        if self._owns_queue:
            self.queue.shutdown(force=True)
