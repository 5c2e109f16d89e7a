"""The dashboard metrics of a training run (`ray.util.metrics`), defined once.

Shown on the Ray dashboard's Metrics tab (and Prometheus, when configured) under the names below.
Metrics are created lazily inside the process that records them, since a metric object belongs to
the worker that made it.
"""

from __future__ import annotations

import functools


@functools.lru_cache(maxsize=None)
def _metric(kind: str, name: str, description: str, tag_keys: tuple = ()):
    from ray.util import metrics

    return getattr(metrics, kind)(name, description=description, tag_keys=tag_keys)


def patterns_generated():
    return _metric("Counter", "xrdgen_patterns_generated", "Patterns produced by a generator actor.", ("actor",))


def patterns_per_second():
    return _metric("Gauge", "xrdgen_patterns_per_second", "Recent generation rate of one generator actor.", ("actor",))


def patterns_skipped():
    return _metric("Counter", "xrdgen_patterns_skipped", "Failed draws (skipped) of a generator actor.", ("actor",))


def queue_depth():
    return _metric("Gauge", "xrdgen_queue_depth", "Batches waiting in the bounded queue.")


def pool_size():
    return _metric("Gauge", "xrdgen_generators_alive", "Generator actors currently in the pool.")


def trainer_steps_per_second():
    return _metric("Gauge", "xrdgen_trainer_steps_per_second", "Optimizer steps per second of the trainer.")


def trainer_step():
    return _metric("Gauge", "xrdgen_trainer_step", "Optimizer steps done so far.")


def test_top1():
    return _metric("Gauge", "xrdgen_test_top1", "Latest top-1 accuracy on the held-out test set.")


def test_top5():
    return _metric("Gauge", "xrdgen_test_top5", "Latest top-5 accuracy on the held-out test set.")
