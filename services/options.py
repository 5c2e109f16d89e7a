"""Every Ray option of the services, in one place, derived from `ClusterConfig`.

Why here and not at each `@ray.remote`: resources, restarts and concurrency are deployment choices
(a laptop, the head+two cluster, KubeRay) that the config decides; the actor classes stay plain.
"""

from __future__ import annotations

import math

from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

from xrdgen.config import ClusterConfig

# Retry an interrupted actor method after a restart (the generator's endless `run`, a queue call).
RETRY_FOREVER = -1


def process_env(gpus: float) -> dict:
    """Environment variables of an actor process, in place before its first import of TensorFlow.

    Without a GPU: CUDA_VISIBLE_DEVICES="" because Ray no longer empties it for a zero-GPU actor
    (ray-project/ray#54868), so TensorFlow on the GPU head would see, and reserve memory on, the
    trainer's GPU; and TF_CPP_MIN_LOG_LEVEL=3 because TensorFlow logs its failed `cuInit` at ERROR
    level in every process without a usable GPU (CUDA hidden or absent). Errors of the Python API
    still raise.
    With a GPU: TF_CPP_MIN_LOG_LEVEL=2, info and warning lines off (tf.data prints some every
    epoch), C++ errors kept.
    """
    if gpus > 0:
        return {"TF_CPP_MIN_LOG_LEVEL": "2"}
    return {"CUDA_VISIBLE_DEVICES": "", "TF_CPP_MIN_LOG_LEVEL": "3"}


def driver_env(node_gpus: float) -> dict:
    """The job driver's TensorFlow log level, set before it imports TensorFlow to calibrate the model
    after training: process_env's level for a node with `node_gpus` GPUs (3 without: no `cuInit`
    error line). CUDA stays visible, so on a GPU head the driver may use the GPU the trainer left."""
    return {"TF_CPP_MIN_LOG_LEVEL": process_env(node_gpus)["TF_CPP_MIN_LOG_LEVEL"]}


def generator_count(cluster: ClusterConfig, cluster_cpus: float) -> int:
    """Size of the generator pool: `n_generators`, or for "auto"
        max(1, floor((cluster_cpus - trainer_cpus) / cpus_per_generator)),
    every CPU of the cluster that the trainer does not hold (the queue and the statistics server ask
    for none). On a cluster the head offers only the trainer's CPUs (cluster/*.yaml declare
    trainer_cpus there), so this counts the workers' CPUs and no generator crowds the head, where
    the driver, the queue, the GCS and the trainer's input pipeline run."""
    if cluster.n_generators != "auto":
        return cluster.n_generators
    return max(1, math.floor((cluster_cpus - cluster.trainer_cpus) / cluster.cpus_per_generator + 1e-9))


def trainer_bundle(cluster: ClusterConfig) -> dict:
    """The trainer's resources (those it asks for), e.g. {"CPU": 4, "GPU": 1}."""
    return {k: v for k, v in {"CPU": cluster.trainer_cpus, "GPU": cluster.trainer_gpus}.items() if v > 0}


def wanted_bundles(cluster: ClusterConfig) -> list[dict]:
    """What the job asks the autoscaler for (`ray.autoscaler.sdk.request_resources`): the trainer's
    bundle and one per generator when `n_generators` is a number; nothing for "auto", which takes the
    CPUs the cluster has. On a layout with min_workers < max_workers the autoscaler then starts the
    workers the pool needs at once, whatever its upscaling speed, and keeps them while the job runs."""
    if cluster.n_generators == "auto":
        return []
    trainer = trainer_bundle(cluster)
    return ([trainer] if trainer else []) + [{"CPU": cluster.cpus_per_generator}] * cluster.n_generators


def queue_options(cluster: ClusterConfig, node_id: str) -> dict:
    """The bounded queue: tiny, restartable, never evicted by a CPU request, and on `node_id` (the
    driver's node, the head): a lost worker node then never takes the queued batches with it."""
    return dict(
        num_cpus=0,
        max_restarts=RETRY_FOREVER,
        max_task_retries=RETRY_FOREVER,
        scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
    )


def statistics_server_options(cluster: ClusterConfig, node_id: str) -> dict:
    """Pinned to `node_id` (the driver's node), where the statistics file is."""
    return dict(
        num_cpus=0,
        max_restarts=RETRY_FOREVER,
        max_task_retries=RETRY_FOREVER,
        scheduling_strategy=NodeAffinitySchedulingStrategy(node_id, soft=False),
    )


def generator_options(cluster: ClusterConfig) -> dict:
    """One generator actor. Two threads: the endless `run` loop and the `stop`/`counters` calls."""
    return dict(
        num_cpus=cluster.cpus_per_generator,
        max_restarts=cluster.max_restarts,
        max_task_retries=RETRY_FOREVER if cluster.max_restarts != 0 else 0,
        max_concurrency=2,
        runtime_env={"env_vars": process_env(gpus=0)},
    )


def trainer_options(cluster: ClusterConfig) -> dict:
    """The trainer: lands on a GPU node when `trainer_gpus` > 0 (the head of cluster/*.yaml).

    No automatic restart by Ray: the job starts a dead trainer again itself (services/trainer_actor.py
    says why), and it continues from the last checkpoint.
    """
    return dict(
        num_cpus=cluster.trainer_cpus,
        num_gpus=cluster.trainer_gpus,
        max_restarts=0,
        max_concurrency=2,  # `status` answers while `fit` runs
        runtime_env={"env_vars": process_env(cluster.trainer_gpus)},
    )
