"""A real Prometheus, started as the cluster layouts start it, scrapes a running training job.

A private Ray head (services/local_cluster.py) starts with RAY_PROMETHEUS_HOST pointing at a free
port; `deploy/dashboard_metrics.py start` runs Prometheus (Debian's `prometheus` package, or any
binary on PATH) with the configuration Ray's dashboard wrote for the session; a short `services.train`
job (one generator, a tiny model) records the xrdgen metrics. Checked: Prometheus's query API returns
the `ray_xrdgen_*` series of the job, labelled with the session (what the Grafana dashboard filters
on); every query of deploy/grafana_xrdgen_dashboard.json is valid PromQL there and the generator
pool's return data; the dashboard's own Prometheus check (what its Metrics tab asks) succeeds; the
xrdgen dashboard sits among Ray's provisioned Grafana dashboards; `stop` ends the server.

The test installs nothing: without a `prometheus` binary it is skipped (and fails under CI=true;
.ci/run installs the package).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from conftest import IN_CI

from services.local_cluster import free_ports, local_head
from xrdgen.config import load_config

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "deploy" / "dashboard_metrics.py"
WAIT_S = 420  # Ray, TensorFlow and the generator's first batch on two busy cores
SMALL = {
    "grid.two_theta_min": 10.0,
    "grid.two_theta_max": 50.0,
    "grid.step": 0.05,
    "training.model": "park_medium",
    "training.batch_size": 8,
    "training.batches_per_epoch": 4,
    "training.max_minutes": 4,
    "cluster.n_generators": 1,
    "cluster.cpus_per_generator": 0.5,
    "cluster.trainer_cpus": 0.5,
    "cluster.trainer_gpus": 0,
    "cluster.generator_batch_size": 4,
    "cluster.queue_max_items": 2,
    "cluster.prefetch_batches": 1,
}


def _prometheus_binary() -> str:
    path = shutil.which("prometheus")
    if path is None:
        reason = "no `prometheus` on PATH: `apt-get install -y prometheus` (Debian's package; .ci/run installs it)"
        if IN_CI:
            pytest.fail(f"{reason} (CI=true: fails instead of skipping)", pytrace=False)
        pytest.skip(reason)
    return path


def _query(port: int, promql: str) -> dict:
    url = f"http://127.0.0.1:{port}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
    with urllib.request.urlopen(url, timeout=10) as response:
        return json.load(response)


def _xrdgen_series(port: int) -> dict[str, list[dict]]:
    """{series name: [label sets]} of every ray_xrdgen_* series Prometheus holds now."""
    series: dict = {}
    for result in _query(port, '{__name__=~"ray_xrdgen_.+"}')["data"]["result"]:
        series.setdefault(result["metric"]["__name__"], []).append(result["metric"])
    return series


def test_prometheus_scrapes_the_running_job(tmp_path):
    prometheus = _prometheus_binary()
    port, grafana_port = free_ports(2)
    config = load_config(None, SMALL | {"training.output_dir": str(tmp_path / "run")})
    job_config = tmp_path / "job.yaml"
    job_config.write_text(config.to_yaml())
    entrypoint = ["python", "-m", "services.train", "--config", str(job_config), "--statistics", "default"]

    with local_head(num_cpus=2, extra_env={"RAY_PROMETHEUS_HOST": f"http://127.0.0.1:{port}"}) as head:
        metrics_command = [sys.executable, str(SCRIPT), "start", "--temp-dir", str(head.temp_dir)]
        metrics_command += ["--prometheus", prometheus, "--prometheus-port", str(port), "--grafana-port", str(grafana_port)]
        started = subprocess.run(metrics_command, env=head.env, capture_output=True, text=True, timeout=300)
        try:
            assert started.returncode == 0, started.stdout + started.stderr
            assert f"prometheus: http://127.0.0.1:{port}" in started.stdout
            job = head.submit_in_background(entrypoint, tmp_path / "job.log")
            wanted = {"ray_xrdgen_generators_alive", "ray_xrdgen_patterns_generated_total"}
            deadline = time.monotonic() + WAIT_S
            while not wanted <= set(series := _xrdgen_series(port)) and time.monotonic() < deadline and job.poll() is None:
                time.sleep(5)
            job_log = (tmp_path / "job.log").read_text()[-3000:]
            assert wanted <= set(series), f"{sorted(series)}\n{job_log}"

            session = head.temp_dir.joinpath("session_latest").resolve().name
            assert all(labels["SessionName"] == session for found in series.values() for labels in found)
            (alive,) = _query(port, "ray_xrdgen_generators_alive")["data"]["result"]
            assert float(alive["value"][1]) == 1  # the job's one generator

            # The Grafana dashboard's queries, as Grafana sends them for "all sessions" (a rate needs two scrapes).
            dashboard = json.loads((ROOT / "deploy" / "grafana_xrdgen_dashboard.json").read_text())
            for panel in dashboard["panels"]:
                for target in panel["targets"]:
                    promql = target["expr"].replace("$SessionName", ".+").replace("$__rate_interval", "1m")
                    answer = _query(port, promql)
                    assert answer["status"] == "success", (panel["title"], answer)
                    deadline = time.monotonic() + 60
                    while re.search(r"patterns_generated|generators_alive", promql) and not answer["data"]["result"]:
                        assert time.monotonic() < deadline, f"no data for {panel['title']!r}: {promql}"
                        time.sleep(5)
                        answer = _query(port, promql)

            # What the dashboard's Metrics tab asks before it shows graphs.
            token = (Path.home() / ".ray" / "auth_token").read_text().strip()
            request = urllib.request.Request(
                head.dashboard_url + "/api/prometheus_health", headers={"Authorization": f"Bearer {token}"}
            )
            with urllib.request.urlopen(request, timeout=10) as response:
                health = json.load(response)
            assert health["result"] is True, health

            provisioned = head.temp_dir / "session_latest" / "metrics" / "grafana" / "dashboards"
            assert json.loads((provisioned / "grafana_xrdgen_dashboard.json").read_text()) == dashboard
            assert (provisioned / "default_grafana_dashboard.json").exists()  # beside Ray's own
        finally:
            stopped = subprocess.run(
                [sys.executable, str(SCRIPT), "stop", "--temp-dir", str(head.temp_dir)], capture_output=True, text=True
            )
    assert stopped.returncode == 0 and "prometheus: stopped" in stopped.stdout, stopped.stdout + stopped.stderr
    with pytest.raises(OSError):
        _query(port, "vector(1)")
