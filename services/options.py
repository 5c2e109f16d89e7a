"""Every Ray option of the services, in one place, derived from `ClusterConfig`.

Why here and not at each `@ray.remote`: resources, restarts and concurrency are deployment choices
(a laptop, the head+two cluster, KubeRay) that the config decides; the actor classes stay plain.
"""

from __future__ import annotations

from xrdgen.config import ClusterConfig

# Retry an interrupted actor method after a restart (the generator's endless `run`, a queue call).
RETRY_FOREVER = -1


def queue_options(cluster: ClusterConfig) -> dict:
    """The bounded queue: tiny, restartable, and never evicted by a CPU request."""
    return dict(num_cpus=0, max_restarts=RETRY_FOREVER, max_task_retries=RETRY_FOREVER)


def statistics_server_options(cluster: ClusterConfig, node_id: str) -> dict:
    """Pinned to `node_id` (the driver's node), where the statistics file is."""
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

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
    )


def trainer_options(cluster: ClusterConfig) -> dict:
    """The trainer: lands on a GPU node when `trainer_gpus` > 0 (the head of cluster/*.yaml).

    No automatic restart: a killed trainer is resumed by resubmitting the job, which continues from
    the last checkpoint (the job, not the actor, owns the run).
    """
    return dict(
        num_cpus=cluster.trainer_cpus,
        num_gpus=cluster.trainer_gpus,
        max_restarts=0,
        max_concurrency=2,  # `status` answers while `fit` runs
        # TensorFlow's C++ info/warning lines (one per epoch from tf.data) would drown the progress lines.
        runtime_env={"env_vars": {"TF_CPP_MIN_LOG_LEVEL": "2"}},
    )
