"""Statistics server: load a statistics file once, serve it to every generator through the object store.

The statistics (KDE samples, per-space-group tables) are read and parsed once on the cluster; the
server `ray.put`s the object, and every generator actor gets the same shared, zero-copy copy of its
arrays instead of re-reading the file. The server runs on the driver's node, because that is where
the file is (a worker node of the cluster need not have it).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import ray

from services.options import statistics_server_options
from xrdgen.config import ClusterConfig


class _StatisticsServerActor:
    def __init__(self, path: str):
        from xrdgen.errors import UserError
        from xrdgen.statistics import Statistics

        # A bad file is the user's input, not a crash to restart from: keep the one-line error and
        # raise it from the calls, where the caller sees it as the cause of a task error.
        self._error = None
        try:
            statistics = Statistics.load(path)
        except UserError as exc:
            self._error = exc
            return
        self._ref = ray.put(statistics)
        self._summary = statistics.summary()

    def reference(self) -> list:
        if self._error is not None:
            raise self._error
        # Wrapped in a list so Ray passes the reference itself, not its value.
        return [self._ref]

    def summary(self) -> str:
        if self._error is not None:
            raise self._error
        return self._summary


class StatisticsServer:
    """Public handle: `StatisticsServer(path).reference()` is an ObjectRef to the `Statistics`."""

    def __init__(self, path: Path | str, cluster: Optional[ClusterConfig] = None):
        node_id = ray.get_runtime_context().get_node_id()
        options = statistics_server_options(cluster or ClusterConfig(), node_id)
        self.actor = ray.remote(_StatisticsServerActor).options(**options).remote(str(Path(path).resolve()))

    def reference(self) -> "ray.ObjectRef":
        return ray.get(self.actor.reference.remote())[0]

    def get(self):
        return ray.get(self.reference())

    def summary(self) -> str:
        return ray.get(self.actor.summary.remote())

    def shutdown(self) -> None:
        ray.kill(self.actor)
