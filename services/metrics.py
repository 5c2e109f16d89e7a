"""The dashboard metrics of a training run (`ray.util.metrics`), defined once.

Shown on the Ray dashboard's Metrics tab under the names below. Every node's Prometheus endpoint
(`ray.nodes()[i]["MetricsExportPort"]`, `--metrics-export-port` of `ray start`) exports them as
`ray_<name>`, counters with a `_total` suffix: `ray_xrdgen_patterns_generated_total`,
`ray_xrdgen_queue_depth`, ... (deploy/grafana_xrdgen_dashboard.json plots them). Metrics are created
lazily inside the process that records them, since a metric object belongs to the worker that made it.
"""

from __future__ import annotations

import functools

from ray.util import metrics

PREFIX = "xrdgen_"
PROMETHEUS_PREFIX = "ray_" + PREFIX  # what a Prometheus scrape of a Ray node shows

# name (without PREFIX) -> (kind, description, tag keys)
SERIES = {
    "patterns_generated": ("Counter", "Patterns produced by a generator actor.", ("actor",)),
    "patterns_per_second": ("Gauge", "Recent generation rate of one generator actor.", ("actor",)),
    "patterns_skipped": ("Counter", "Failed draws (skipped) of a generator actor.", ("actor",)),
    "queue_depth": ("Gauge", "Batches waiting in the bounded queue.", ()),
    "generators_alive": ("Gauge", "Generator actors currently in the pool.", ()),
    "trainer_steps_per_second": ("Gauge", "Optimizer steps per second of the trainer.", ()),
    "trainer_step": ("Gauge", "Optimizer steps done so far.", ()),
    "test_top1": ("Gauge", "Latest top-1 accuracy on the held-out test set.", ()),
    "test_top5": ("Gauge", "Latest top-5 accuracy on the held-out test set.", ()),
}


def prometheus_name(name: str) -> str:
    """The Prometheus series of SERIES[name]: ray_xrdgen_<name>, with _total for a counter."""
    return PROMETHEUS_PREFIX + name + ("_total" if SERIES[name][0] == "Counter" else "")


@functools.cache
def _metric(name: str):
    kind, description, tag_keys = SERIES[name]
    return getattr(metrics, kind)(PREFIX + name, description=description, tag_keys=tag_keys)


def patterns_generated():
    return _metric("patterns_generated")


def patterns_per_second():
    return _metric("patterns_per_second")


def patterns_skipped():
    return _metric("patterns_skipped")


def queue_depth():
    return _metric("queue_depth")


def pool_size():
    return _metric("generators_alive")


def trainer_steps_per_second():
    return _metric("trainer_steps_per_second")


def trainer_step():
    return _metric("trainer_step")


def test_top1():
    return _metric("test_top1")


def test_top5():
    return _metric("test_top5")
