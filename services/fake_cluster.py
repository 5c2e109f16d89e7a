"""Ray's real autoscaler on this machine: a head plus worker nodes from the fake multinode provider.

`RAY_FAKE_CLUSTER=1 ray start --head --autoscaling-config=cluster/fake_multinode.yaml` runs the
same autoscaler as `ray up`, with a node provider that starts each worker node as another raylet
on this machine (no VMs, SSH or Docker). So the layout of cluster/head_plus_two.yaml is read by the
autoscaler, its workers are launched (and relaunched) by it, and the services schedule onto them
exactly as on a real cluster; only the machines are shared.

Used by benchmarks/bench_cluster.py (the one command of the README) and its test.
"""

from __future__ import annotations

import contextlib
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import ray
import yaml
from ray.autoscaler._private.fake_multi_node.node_provider import FAKE_HEAD_NODE_ID

from services.local_cluster import LocalHead, local_head

# The provider's nodes report by this variable (their node id); the head's id is fixed by the provider.
NODE_ID_VARIABLE = "RAY_OVERRIDE_NODE_ID_FOR_TESTING"


@contextlib.contextmanager
def fake_cluster(layout: Path, replace_dead_nodes: bool = True) -> Iterator[LocalHead]:
    """Start the head of `layout` (a fake_multinode launcher YAML) with its autoscaler; stop it all after.

    The head's --num-cpus/--num-gpus come from the layout's head node type, so the autoscaler's view
    and the head agree; the provider is pointed at this head's port (chosen free, not 6379).
    replace_dead_nodes: Ray's autoscaler v2, which replaces a node whose raylet died, as a cloud
    autoscaler does; else v1, which with this provider never does (it keeps the dead node as
    "pending": the cluster stays smaller, as when no machine of the type is left to start).
    """
    config = yaml.safe_load(Path(layout).read_text())
    head = config["available_node_types"][config["head_node_type"]]["resources"]

    def write_config(gcs_address: str, temp_dir: Path) -> Path:
        config["provider"]["gcs_address"] = gcs_address
        if replace_dead_nodes:
            # v2 fills provider defaults from fake_multi_node/example.yaml, which Ray's wheel does not
            # ship; as an "external" provider (the same class) it needs no defaults file.
            config["provider"]["type"] = "external"
            config["provider"]["module"] = "ray.autoscaler._private.fake_multi_node.node_provider.FakeMultiNodeProvider"
        path = temp_dir / "autoscaling_config.yaml"
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        return path

    env = {"RAY_FAKE_CLUSTER": "1", "AUTOSCALER_UPDATE_INTERVAL_S": "1"}
    if replace_dead_nodes:
        env |= {"RAY_enable_autoscaler_v2": "1", "RAY_CLOUD_INSTANCE_ID": FAKE_HEAD_NODE_ID}
    with local_head(
        num_cpus=head.get("CPU", 0), num_gpus=head.get("GPU", 0), autoscaling_config=write_config, extra_env=env
    ) as cluster:
        yield cluster


def alive_nodes() -> list[dict]:
    """`ray.nodes()` entries of the live nodes (the caller is connected with `ray.init`)."""
    return [node for node in ray.nodes() if node["Alive"]]


def wait_for_workers(count: int, timeout_s: float) -> list[dict]:
    """Block until `count` worker nodes are alive (the autoscaler launched them); returns them."""
    deadline = time.monotonic() + timeout_s
    while True:
        workers = [node for node in alive_nodes() if not _is_head(node)]
        if len(workers) >= count:
            return workers
        if time.monotonic() > deadline:
            raise TimeoutError(f"{len(workers)} of {count} worker nodes up after {timeout_s:.0f} s")
        time.sleep(1.0)


def _is_head(node: dict) -> bool:
    return "node:__internal_head__" in node["Resources"]


def kill_node(cluster: LocalHead, node_id: str) -> int:
    """SIGKILL the raylet of fake node `node_id`, as if its machine died; returns the raylet's pid.

    The node's raylet is a descendant of the head (the autoscaler started it) and carries its node
    id in its environment.
    """
    for process in psutil.Process(cluster.pid).children(recursive=True):
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            if process.name() == "raylet" and process.environ().get(NODE_ID_VARIABLE) == node_id:
                process.send_signal(signal.SIGKILL)
                return process.pid
    raise LookupError(f"no raylet of node {node_id} among the processes of the head {cluster.pid}")
