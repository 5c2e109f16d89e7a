"""The cluster layout under Ray's real autoscaler (fake multinode provider), end to end, in one run.

benchmarks/bench_cluster.py with a 1-minute training job (about 3 minutes on 2 busy cores, most of
it Ray and TensorFlow starting): RAY_FAKE_CLUSTER=1 head with cluster/fake_multinode.yaml -> the
autoscaler starts the two worker nodes -> `ray job submit` of services.train -> the state API shows
the trainer on the head and one generator per worker CPU on the workers -> the Prometheus endpoints
of the nodes show the ray_xrdgen_* series with values -> a worker's raylet is killed: the autoscaler
replaces the node, the pool is back to its size on live workers, the trainer keeps training (its
step grows after the pool is back) -> the job succeeds and no process of the cluster is left. How
long the trainer waited after the kill is a figure of the benchmark, not asserted here: on a loaded
machine every wait is longer.

It runs in a subprocess: the benchmark connects to its own cluster as a Ray client, which cannot
share this process with the session's local Ray (the `ray_local` fixture).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TIMEOUT_S = 900


def test_autoscaled_cluster_places_recovers_and_exports_metrics(tmp_path):
    report_path = tmp_path / "report.json"
    command = [
        sys.executable,
        str(ROOT / "benchmarks" / "bench_cluster.py"),
        "--minutes",
        "1",
        "--no-test-set",
        "--run-dir",
        str(tmp_path / "run"),
        "--json",
        str(report_path),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT_S, cwd=ROOT)
    assert report_path.exists(), result.stdout[-4000:] + result.stderr[-4000:]
    report = json.loads(report_path.read_text())
    failed = [name for name, ok in report["checks"].items() if not ok]
    assert not failed, f"{failed}\n{result.stdout[-4000:]}"
    assert result.returncode == 0

    placement = report["placement"]
    (head,) = placement["trainer"]
    assert head not in placement["generators"] and len(set(placement["generators"])) == 2  # one per worker
    assert placement["queue"] == placement["statistics_server"] == [head]  # with the driver, on the head

    metrics = report["metrics"]
    assert metrics["ray_xrdgen_patterns_generated_total"] > 0 and metrics["ray_xrdgen_trainer_step"] > 0
    assert metrics["ray_xrdgen_generators_alive"] == 2
    assert 0 <= metrics["ray_xrdgen_queue_depth"] <= 4  # the job's queue_max_items

    after = report["after_kill"]["generators"]
    replacement = set(after) - set(placement["generators"])
    assert len(replacement) == 1 and replacement.isdisjoint({head}), after  # a node the autoscaler added
    assert report["checks"]["trainer_kept_training_after_node_loss"]  # and it passed (no failed check above)
    assert report["summary"]["step"] > report["step_when_pool_restored"] > 0
