"""Statistics server: load a statistics file once, serve it to every generator through the object store.

The statistics (KDE samples, per-space-group tables) are read and parsed once on the cluster; the
server `ray.put`s the object, and every generator actor gets the same shared, zero-copy copy of its
arrays instead of re-reading the file. The server runs on the driver's node, because that is where
the file is (a worker node of the cluster need not have it). Generators ask the server for the
reference themselves (also after a restart of either side); see services/generator_pool.py for why
the reference is not a constructor argument.
"""

from __future__ import annotations

from pathlib import Path

import ray

from services.options import statistics_server_options
from xrdgen.config import ClusterConfig
from xrdgen.errors import UserError
from xrdgen.statistics.model import Statistics


class _StatisticsServerActor:
    def __init__(self, path: str):
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
    """Public handle: `StatisticsServer(path, cluster).reference()` is an ObjectRef to the `Statistics`."""

    def __init__(self, path: Path | str, cluster: ClusterConfig):
        node_id = ray.get_runtime_context().get_node_id()
        options = statistics_server_options(cluster, node_id)
        self.actor = ray.remote(_StatisticsServerActor).options(**options).remote(str(Path(path).resolve()))

    def reference(self) -> ray.ObjectRef:
        return ray.get(self.actor.reference.remote())[0]

    def get(self):
        return ray.get(self.reference())

    def summary(self) -> str:
        return ray.get(self.actor.summary.remote())

    def shutdown(self) -> None:
        ray.kill(self.actor)
