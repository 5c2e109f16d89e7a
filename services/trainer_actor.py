"""Trainer actor: the local `xrdgen.training.trainer.Trainer`, fed from the Ray queue, on the GPU node.

A thin shell: the optimisation, checkpoints, TensorBoard and history belong to the Trainer (which
splits every global batch across the GPUs with a `MirroredStrategy` when it has several); this actor
adds the queue end of the input pipeline (queue -> `QueueFeed` background thread -> the Trainer's
`tf.data` prefetch) and the dashboard metrics (steps/s, latest test top-1/top-5).

Kill-and-resume: a trainer actor whose process dies (killed, out of memory, its node lost) is started
again by the job (`TrainerActor.recreate`, up to `cluster.trainer_restarts` times, services/train.py);
the new Trainer finds the last checkpoint in the run directory and continues at the same global step,
in the same epoch of the learning-rate schedule. A resubmitted job resumes the same way. The job
recreates the actor rather than letting Ray restart it: Ray would replay the constructor's arguments
(the queue handle, the test set) from the object store (ray-project/ray#53727), and the job's
wall-time budget (`training.max_minutes`) must count the time before the death.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Optional

import ray
from ray.util.placement_group import PlacementGroup, placement_group
from ray.util.queue import Queue
from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

from services import metrics
from services.batch_feed import QueueFeed
from services.options import trainer_bundle, trainer_options
from services.quiet_tensorflow import import_tensorflow
from xrdgen.config import ClusterConfig, Config
from xrdgen.errors import UserError
from xrdgen.training.trainer import Trainer

RATE_EVERY_S = 5.0
RESERVE_NOTICE_S = 30.0  # how often a job waiting for the trainer's resources says so
NODE_ID_LABEL = "ray.io/node-id"  # every Ray node carries its id under this label


class _TrainerActor:
    def __init__(self, config: Config, spacegroups: list, run_dir: str, queue: Queue, test_set=None):
        import_tensorflow()  # before the Trainer does: no CUDA notices in the job's log
        self._config = config
        self._queue = queue
        self._feed: Optional[QueueFeed] = None
        self._done = threading.Event()
        self._setup_error: Optional[UserError] = None
        try:
            self._trainer = Trainer(
                config,
                spacegroups,
                run_dir=run_dir,
                test_set=test_set,
                resume=True,
                log=lambda line: print(line, flush=True),
                on_epoch_end=self._export_epoch,
            )
        except UserError as exc:  # raised again by fit: a task error reaches the job as one line, a constructor's as a traceback
            self._setup_error = exc
            return
        self.start_step = self._trainer.step

    def _export_epoch(self, entry: dict) -> None:
        if "test_top1" in entry:
            metrics.test_top1().set(entry["test_top1"])
            metrics.test_top5().set(entry["test_top5"])

    def _export_rate(self) -> None:
        """Steps/s over the last RATE_EVERY_S, from the optimizer's own counter."""
        rate, step_gauge = metrics.trainer_steps_per_second(), metrics.trainer_step()
        last_step, last_time = self._trainer.step, time.monotonic()
        while not self._done.wait(RATE_EVERY_S):
            step, now = self._trainer.step, time.monotonic()
            rate.set((step - last_step) / (now - last_time))
            step_gauge.set(step)
            last_step, last_time = step, now

    def fit(
        self, epochs: Optional[int] = None, batches_per_epoch: Optional[int] = None, max_minutes: Optional[float] = None
    ) -> dict:
        if self._setup_error is not None:
            raise self._setup_error
        # Global batches (batch_size per replica x replicas): the Trainer's input pipeline splits them.
        self._feed = QueueFeed(self._queue, self._trainer.global_batch_size, self._config.cluster.prefetch_batches)
        self._done.clear()
        exporter = threading.Thread(target=self._export_rate, name="trainer-metrics", daemon=True)
        exporter.start()
        try:
            history = self._trainer.fit(self._feed, epochs=epochs, batches_per_epoch=batches_per_epoch, max_minutes=max_minutes)
        finally:
            self._done.set()
            self._feed.close()
        return dict(self.status(), history=history)

    def status(self) -> dict:
        feed = self._feed
        return dict(
            pid=os.getpid(),
            start_step=self.start_step,
            step=self._trainer.step,
            learning_rate=self._trainer.learning_rate,
            run_dir=str(Path(self._trainer.run_dir).resolve()),
            batches_received=feed.batches_delivered if feed else 0,
            stalls=list(feed.stalls) if feed else [],
        )


def reserve_trainer(cluster: ClusterConfig, echo=print) -> Optional[PlacementGroup]:
    """The trainer's CPUs and GPUs, reserved (a placement group) before any generator is placed.

    Why: the generators start first (they produce while the test set is simulated) and Ray fills the
    driver's node first, so on the head+two layout they could take the GPU head's CPUs and leave the
    trainer unplaceable for good. A trainer without GPUs is reserved on the driver's node (the head,
    beside the queue that feeds it, whose CPUs the layouts offer to the trainer alone); one with GPUs
    wherever they are. Waits until the cluster (or its autoscaler) offers the resources.
    """
    bundle = trainer_bundle(cluster)
    if not bundle:
        return None
    here = [{NODE_ID_LABEL: ray.get_runtime_context().get_node_id()}] if not cluster.trainer_gpus else None
    group = placement_group([bundle], bundle_label_selector=here)
    while not ray.wait([group.ready()], timeout=RESERVE_NOTICE_S)[0]:
        where = " on the driver's node" if here else ""
        echo(f"waiting for the trainer's resources {bundle}{where} (cluster offers {ray.cluster_resources()})")
    return group


class TrainerActor:
    """Public handle; `fit(...)` returns an ObjectRef to the final status (with `history`).

    `reservation`: the placement group of `reserve_trainer`, which the actor then runs in.
    `recreate()` starts a new actor with the same arguments in place of a dead one (its Trainer
    resumes from the last checkpoint); `restarts` counts them.
    """

    def __init__(
        self,
        config: Config,
        spacegroups: list,
        queue: Queue,
        run_dir: Optional[Path | str] = None,
        test_set=None,
        reservation: Optional[PlacementGroup] = None,
    ):
        run_dir = str(run_dir if run_dir is not None else config.training.output_dir)
        self._options = trainer_options(config.cluster)
        if reservation is not None:
            self._options["scheduling_strategy"] = PlacementGroupSchedulingStrategy(reservation, placement_group_bundle_index=0)
        test_set = ray.put(test_set) if test_set is not None else None  # serialised once, also for a recreated actor
        self._arguments = (config, list(spacegroups), run_dir, queue, test_set)
        self._first_status: Optional[ray.ObjectRef] = None
        self.restarts = 0
        self._start()

    def _start(self) -> None:
        self.actor = ray.remote(_TrainerActor).options(**self._options).remote(*self._arguments)
        if self._first_status is None:
            self._first_status = self.actor.status.remote()  # answered once its Trainer is built

    def recreate(self) -> None:
        """A new trainer actor in place of the dead one; its Trainer resumes from the last checkpoint."""
        ray.kill(self.actor, no_restart=True)
        self.restarts += 1
        self._start()

    def first_start_step(self, timeout: float = 5.0) -> Optional[int]:
        """The step the first actor started at (None if it died before it could say)."""
        try:
            return ray.get(self._first_status, timeout=timeout)["start_step"]
        except ray.exceptions.RayError:  # died, or still not answering
            return None

    def fit(self, **kwargs) -> ray.ObjectRef:
        return self.actor.fit.remote(**kwargs)

    def status(self, timeout: float = 30.0) -> dict:
        return ray.get(self.actor.status.remote(), timeout=timeout)

    def kill(self) -> None:
        ray.kill(self.actor, no_restart=True)
