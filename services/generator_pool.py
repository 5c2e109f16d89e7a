"""Generator pool: supervised long-lived actors looping `PatternStream` batches into one bounded queue.

Shape (style of ray/util/queue.py: a public class wrapping a plain private actor class):
  * `_GeneratorActor` is a thin shell around `PatternStream`: `run` fetches the statistics from the
    statistics server, builds the stream once, then loops forever: next_batch -> `hand_over` (waits
    while the queue is full: backpressure, so memory stays bounded by queue_max_items + one batch
    per producer, whatever the trainer's speed).
  * `GeneratorPool` starts the actors and supervises them from a background thread: an actor whose
    process dies is restarted by Ray (`max_restarts`, and its `run` retried); an actor that is gone
    for good (killed, restarts used up, its node lost) is replaced by a new one while the pool is
    below its target size.

Target size: `generator_count` (services/options.py): `cluster.n_generators`, or with "auto" the
cluster's CPUs left by the trainer, re-read from Ray every RESIZE_EVERY_S, so the pool grows when
the autoscaler adds a node; when a node is lost, its members (which Ray would restart once CPUs are
free again) are dropped down to the new target, and the pool grows back with a replacement node.
With a number, the pool asks the autoscaler for the CPUs of that many generators and the trainer
(`request_resources`, withdrawn at shutdown), so an autoscaling layout starts its workers because
the job needs them. A head that offers generators CPUs beside the trainer's is named in the log.

Why the statistics server and the queue reach a generator as arguments of `run`, not of its
constructor: Ray replays a restartable actor's constructor arguments on every restart, so handles
among them must outlive everything (ray-project/ray#53727); `run` is retried with its own arguments.

Hand-over: a batch travels to the queue actor once: the put waits on the actor's side for room
(`asyncio.Queue.put`), and the producer polls its completion every PUT_TIMEOUT_S to see whether to
stop (a timed put retried in a loop sent the batch again each second a producer was blocked). A
waiting batch sits in the queue actor on the driver's node (up to queue_max_items + one per
producer); values, not references, so a lost worker node takes none with it (references made the
trainer wait 14 s on a dead producer's objects). benchmarks/bench_pipeline.py measures both.

Seeds: member i streams with SeedSequence([config.seed, i]); a replacement takes the next unused i,
a Ray-restarted actor mixes in fresh entropy: no member replays another's patterns.
"""

from __future__ import annotations

import logging
import os
import threading
import time
import uuid
import warnings
from collections.abc import Callable
from typing import Optional

import numpy as np
import ray
from ray.autoscaler.sdk import request_resources
from ray.exceptions import RayActorError, RayTaskError
from ray.util.queue import Queue
from ray.util.state import list_actors

from services import metrics
from services.options import generator_count, generator_options, queue_options, wanted_bundles
from services.statistics_server import StatisticsServer
from xrdgen.config import Config
from xrdgen.training.stream import PatternStream, StreamCounters

log = logging.getLogger(__name__)

PUT_TIMEOUT_S = 1.0  # how often a blocked producer looks up to see whether it should stop
SUPERVISE_EVERY_S = 0.5
RESIZE_EVERY_S = 2.0  # how often `n_generators: auto` re-reads the cluster's CPUs
# Ray's actor states of a member that is not running: waiting for a place or being restarted.
WAITING_STATES = {"DEPENDENCIES_UNREADY", "PENDING_CREATION", "RESTARTING"}


def member_name(index: int) -> str:
    """Pool member `index` in logs and metric tags."""
    return f"generator-{index}"


def member_seed(seed: int, index: int, restarted: bool = False) -> int:
    """Seed of pool member `index`; fresh entropy after a Ray restart (no replayed patterns)."""
    entropy = [seed, index] + ([int(time.time_ns())] if restarted else [])
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


def hand_over(queue: Queue, batch, stop: threading.Event, on_wait: Callable[[], None] = lambda: None) -> None:
    """Put `batch` into `queue`, sending it once; `on_wait()` after each PUT_TIMEOUT_S spent waiting.

    The put blocks on the queue actor until there is room; this thread polls it so that `stop`
    still ends a blocked producer (the pending put is then cancelled and the batch dropped).
    """
    pending = queue.actor.put.remote(batch)  # no timeout: the actor awaits room for it
    while not ray.wait([pending], timeout=PUT_TIMEOUT_S)[0]:
        if stop.is_set():
            ray.cancel(pending)
            return
        on_wait()
    ray.get(pending)


def _warn_if_the_head_is_shared(cluster) -> None:
    """Log when a cluster of several nodes offers generators CPUs on its head: they would run beside
    the driver, the queue and the GCS (declare the head's CPUs as trainer_cpus, cluster/*.yaml)."""
    nodes = [node for node in ray.nodes() if node["Alive"]]
    heads = [node["Resources"] for node in nodes if "node:__internal_head__" in node["Resources"]]
    if len(nodes) > 1 and heads and heads[0].get("CPU", 0.0) > cluster.trainer_cpus:
        log.warning(
            "generator pool: the head offers %g CPUs, the trainer takes %g: generators may run there too; "
            "start the head with --num-cpus=%g to keep them on the workers",
            heads[0]["CPU"],
            cluster.trainer_cpus,
            cluster.trainer_cpus,
        )


class _GeneratorActor:
    def __init__(self, config: Config, index: int):
        with warnings.catch_warnings():  # the property reads the actor id through a deprecated path
            warnings.simplefilter("ignore", DeprecationWarning)
            restarted = bool(ray.get_runtime_context().was_current_actor_reconstructed)
        self._name = member_name(index)
        self._config = config
        self._seed = member_seed(config.seed, index, restarted)
        self._stream: Optional[PatternStream] = None
        self._stop = threading.Event()
        self._tags = {"actor": self._name}
        self._full_waits = 0

    def run(self, statistics_server, queue: Queue) -> dict:
        """Produce into `queue` until `stop`; returns the stream's counters.

        The statistics come from the server here, on the first call (also the retried call after a
        Ray restart), never as a constructor argument: see the module docstring.
        """
        if self._stream is None:
            statistics = ray.get(ray.get(statistics_server.reference.remote())[0])  # shared, zero-copy
            self._stream = PatternStream(statistics, self._config, self._seed)
        batch_size = self._config.cluster.generator_batch_size
        counter, rate, skipped = metrics.patterns_generated(), metrics.patterns_per_second(), metrics.patterns_skipped()
        while not self._stop.is_set():
            t0, skipped_before = time.perf_counter(), self._stream.counters.skipped
            batch = self._stream.next_batch(batch_size)
            seconds = time.perf_counter() - t0  # production only, not the wait on a full queue
            counter.inc(batch_size, tags=self._tags)
            rate.set(batch_size / max(seconds, 1e-9), tags=self._tags)
            if self._stream.counters.skipped > skipped_before:
                skipped.inc(self._stream.counters.skipped - skipped_before, tags=self._tags)
            hand_over(queue, batch, self._stop, on_wait=self._count_full_wait)
        return self.counters()

    def _count_full_wait(self) -> None:
        self._full_waits += 1  # one more PUT_TIMEOUT_S spent blocked on a full queue

    def stop(self) -> None:
        self._stop.set()

    def counters(self) -> dict:
        counters = self._stream.counters if self._stream is not None else StreamCounters()
        return dict(name=self._name, pid=os.getpid(), full_queue_waits=self._full_waits, **counters.as_dict())


class GeneratorPool:
    """Supervised producers feeding `queue` (a new bounded one if None), statistics from `server`."""

    def __init__(self, server: StatisticsServer, config: Config, queue: Optional[Queue] = None):
        cluster = config.cluster
        self.config = config
        self._owns_queue = queue is None
        if queue is None:
            queue = Queue(cluster.queue_max_items, actor_options=queue_options(cluster, ray.get_runtime_context().get_node_id()))
        self.queue = queue
        self._server = server.actor
        self._options = generator_options(cluster)
        self._lock = threading.Lock()
        self._members: dict = {}  # run() ObjectRef -> (index, actor handle)
        self._next_index = 0
        self._id = uuid.uuid4().hex[:8]
        self.replacements = 0
        self.errors: list[str] = []
        self.counter_failures = 0  # members that gave no counters when asked (`counters`)
        self.metric_failures = 0  # supervision rounds whose queue metrics could not be exported
        self.target = self._target()
        self._wanted = wanted_bundles(cluster)
        if self._wanted:
            request_resources(bundles=self._wanted)
        _warn_if_the_head_is_shared(cluster)
        self._stopping = threading.Event()
        with self._lock:
            for _ in range(self.target):
                self._spawn()
        self._supervisor = threading.Thread(target=self._supervise, name="generator-pool-supervisor", daemon=True)
        self._supervisor.start()

    def _target(self) -> int:
        cpus = ray.cluster_resources().get("CPU", 0.0) if self.config.cluster.n_generators == "auto" else 0.0
        return generator_count(self.config.cluster, cpus)

    # ------------------------------------------------------------------------------------ members
    def _actor_name(self, index: int) -> str:
        """Ray's name of member `index`: unique in the job, even with several pools (the dashboard shows it)."""
        return f"{member_name(index)}-{self._id}"

    def _spawn(self) -> int:
        """One new member (call with the lock held); returns its index."""
        index = self._next_index
        self._next_index += 1
        actor = ray.remote(_GeneratorActor).options(name=self._actor_name(index), **self._options).remote(self.config, index)
        self._members[actor.run.remote(self._server, self.queue)] = (index, actor)
        return index

    @property
    def actors(self) -> list:
        with self._lock:
            return [actor for _, actor in self._members.values()]

    @property
    def gave_up(self) -> bool:
        """Members failed (a bug or bad input, not a lost process) more than 3x the target: no more
        replacements, the pool is left to die out."""
        return len(self.errors) > 3 * self.target

    @property
    def size(self) -> int:
        with self._lock:
            return len(self._members)

    def _supervise(self) -> None:
        """Replace members whose `run` ended, follow the target size; export pool metrics."""
        depth, alive = metrics.queue_depth(), metrics.pool_size()
        last_resize = time.monotonic()
        failed_in_a_row = 0
        while not self._stopping.is_set():
            with self._lock:
                refs = list(self._members)
            ready, _ = ray.wait(refs, num_returns=1, timeout=SUPERVISE_EVERY_S) if refs else ([], [])
            if self.config.cluster.n_generators == "auto" and time.monotonic() - last_resize >= RESIZE_EVERY_S:
                last_resize = time.monotonic()
                target, self.target = self.target, self._target()
                if self.target < self.size and target < self.size:  # two looks in a row: a node is gone
                    self._trim()
            retired = [self._retire(ref) for ref in ready if not self._stopping.is_set()]
            self._fill(retired)
            try:
                depth.set(self.queue.qsize())
                alive.set(self.size)
            except Exception as exc:  # noqa: BLE001 - the queue may be restarting: counted, training goes on
                self.metric_failures += 1
                failed_in_a_row += 1
                if failed_in_a_row == 1:
                    log.warning("generator pool: queue metrics not exported (%s: %s); retrying", type(exc).__name__, exc)
            else:
                if failed_in_a_row:
                    log.warning("generator pool: queue metrics exported again after %d failed tries", failed_in_a_row)
                failed_in_a_row = 0

    def _trim(self) -> None:
        """Down to the target after a node loss: members that Ray is restarting or cannot place (they
        wait for CPUs that left with the node) are killed, newest first. A live member is never
        touched, however slow. Needs Ray's state API (the dashboard); without it the pool keeps them."""
        try:
            waiting = {
                actor.name
                for actor in list_actors(
                    address=ray.get_runtime_context().gcs_address,
                    filters=[("job_id", "=", ray.get_runtime_context().get_job_id()), ("class_name", "=", "_GeneratorActor")],
                    limit=10_000,
                    raise_on_missing_output=False,
                )
                if actor.state in WAITING_STATES
            }
        except Exception as exc:  # noqa: BLE001 - no dashboard (a bare ray.init): trimming is an optimisation
            log.warning("generator pool: cannot read actor states (%s); members above the target stay", exc)
            return
        with self._lock:
            members = sorted(self._members.values(), key=lambda member: -member[0])
        victims = [(index, actor) for index, actor in members if self._actor_name(index) in waiting]
        for index, actor in victims[: len(members) - self.target]:
            ray.kill(actor, no_restart=True)
            log.warning("generator-%d waits for CPUs that left the cluster; pool shrinks to %d", index, self.target)

    def _fill(self, retired: list[int]) -> None:
        """Spawn members up to the target; the first len(retired) of them count as replacements."""
        if self._stopping.is_set():
            return
        if self.gave_up:
            if retired:
                log.error("generator pool: %d failures, not replacing generator(s) %s", len(self.errors), retired)
            return
        with self._lock:
            new = [self._spawn() for _ in range(self.target - len(self._members))]
        replaced = min(len(new), len(retired))
        self.replacements += replaced
        for old, index in zip(retired, new):
            log.warning("generator-%d replaced by generator-%d", old, index)
        if len(new) > replaced:
            log.warning("generator pool grows to its target of %d (cluster CPUs changed)", self.target)

    def _retire(self, ref) -> int:
        """Take a member whose `run` ended out of the pool, log why; returns its index."""
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
        log.warning("generator-%d %s", index, reason)
        return index

    def counters(self, timeout: float = 10.0) -> list[dict]:
        """Counters of every member that answers within `timeout`; the others are left out, counted
        in `counter_failures` and logged (a member that died since the last supervision, or a busy one)."""
        refs = [actor.counters.remote() for actor in self.actors]
        ready, late = ray.wait(refs, num_returns=len(refs), timeout=timeout)
        out, failed = [], []
        for ref in ready:
            try:
                out.append(ray.get(ref))
            except (RayActorError, RayTaskError) as exc:
                failed.append(type(exc).__name__)
        if failed or late:
            self.counter_failures += len(failed) + len(late)
            log.warning(
                "generator pool: %d of %d members gave no counters (%d not within %.0f s, failed: %s)",
                len(failed) + len(late),
                len(refs),
                len(late),
                timeout,
                ", ".join(failed) or "none",
            )
        return out

    def shutdown(self, timeout: float = 5.0) -> None:
        """Stop producing, wait briefly for members to finish, then kill what is left."""
        self._stopping.set()
        self._supervisor.join(timeout=timeout)
        actors = self.actors
        for actor in actors:
            try:
                actor.stop.remote()
            except Exception as exc:  # noqa: BLE001 - it is killed below either way
                log.warning("generator pool: cannot ask a member to stop (%s); killing it", exc)
        with self._lock:
            refs = list(self._members)
            self._members.clear()
        if refs:
            ray.wait(refs, num_returns=len(refs), timeout=timeout)
        for actor in actors:
            ray.kill(actor, no_restart=True)
        if self._owns_queue:
            self.queue.shutdown(force=True)
        if self._wanted:
            request_resources(bundles=[])  # the autoscaler may let the workers go
