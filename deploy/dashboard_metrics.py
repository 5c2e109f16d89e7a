"""Prometheus and Grafana for the running Ray session, so that the dashboard's Metrics tab has graphs.

Ray does half of it: when a head starts, its dashboard writes both servers' configuration into the
session folder (`<temp-dir>/session_latest/metrics/`: `prometheus/prometheus.yml` scrapes every node
listed in the service-discovery file that Ray keeps up to date; `grafana/grafana.ini` with Ray's
dashboards provisioned) and asks them for data at RAY_PROMETHEUS_HOST and RAY_GRAFANA_HOST (the
browser loads Grafana's panels from RAY_GRAFANA_IFRAME_HOST), read when the head starts. This script
is the other half, run on the head after `ray start --head` with those variables set to
PROMETHEUS_URL and GRAFANA_URL (the head start commands of cluster/*.yaml do both):

    python deploy/dashboard_metrics.py install   # once per head: the pinned releases into ~/xrdgen-metrics
    python deploy/dashboard_metrics.py start     # after each `ray start --head`
    python deploy/dashboard_metrics.py stop      # e.g. after `ray down` on your own machines

`start` adds deploy/grafana_xrdgen_dashboard.json to Ray's dashboards, stops what an earlier `start`
left running, starts both servers detached (logs beside Ray's), and returns once Prometheus answers
queries. Both listen on 127.0.0.1 only, like the dashboard: forward ports 8265 and 3000 to see them.
Without Grafana, Prometheus still feeds the dashboard's own charts and its query API.
(`ray metrics launch-prometheus` downloads the newest Prometheus for Ray's default temp dir only,
with no Grafana; here the versions are pinned and the KubeRay manifests use the same ones.)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import psutil

PROMETHEUS_VERSION = "2.53.4"  # LTS line
GRAFANA_VERSION = "11.5.0"
PROMETHEUS_PORT, GRAFANA_PORT = 9090, 3000
PROMETHEUS_URL, GRAFANA_URL = f"http://127.0.0.1:{PROMETHEUS_PORT}", f"http://127.0.0.1:{GRAFANA_PORT}"
PREFIX = Path("~/xrdgen-metrics").expanduser()
DASHBOARD = Path(__file__).with_name("grafana_xrdgen_dashboard.json")
STATE = "xrdgen_metrics"  # folder in Ray's temp dir: pid files and the servers' data


def _arch() -> str:
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())


def prometheus_release() -> tuple[str, str]:
    """(download URL, folder the archive unpacks to) of the pinned Prometheus for this machine."""
    name = f"prometheus-{PROMETHEUS_VERSION}.linux-{_arch()}"
    return f"https://github.com/prometheus/prometheus/releases/download/v{PROMETHEUS_VERSION}/{name}.tar.gz", name


def grafana_release() -> tuple[str, str]:
    return f"https://dl.grafana.com/oss/release/grafana-{GRAFANA_VERSION}.linux-{_arch()}.tar.gz", f"grafana-v{GRAFANA_VERSION}"


def install(prefix: Path) -> None:
    """Download and unpack the pinned releases into prefix (skipping what is there)."""
    prefix.mkdir(parents=True, exist_ok=True)
    for url, folder in (prometheus_release(), grafana_release()):
        if (prefix / folder).is_dir():
            print(f"{prefix / folder}: already there")
            continue
        archive = prefix / url.rsplit("/", 1)[1]
        print(f"downloading {url}", flush=True)
        urllib.request.urlretrieve(url, archive)
        with tarfile.open(archive) as tar:
            tar.extractall(prefix, filter="data")
        archive.unlink()
        print(f"{prefix / folder}: installed")


def default_temp_dir() -> Path:
    """Ray's default --temp-dir: `ray` in RAY_TMPDIR, else in the system's temp folder (TMPDIR)."""
    return Path(os.environ.get("RAY_TMPDIR") or tempfile.gettempdir()) / "ray"


def _find_prometheus(prefix: Path) -> str | None:
    installed = prefix / prometheus_release()[1] / "prometheus"
    return str(installed) if installed.exists() else shutil.which("prometheus")


def _find_grafana_home(prefix: Path) -> Path | None:
    """A Grafana release folder (bin/grafana, conf/defaults.ini): ours, else a system package's."""
    for home in (prefix / grafana_release()[1], Path("/usr/share/grafana")):
        if (home / "bin" / "grafana").exists():
            return home
    return None


def _wait_for(path: Path, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    while not path.exists():
        if time.monotonic() > deadline:
            raise SystemExit(
                f"error: {path} not written within {seconds:.0f} s: is a Ray head with its dashboard running (--temp-dir)?"
            )
        time.sleep(1)


def _answers(url: str, seconds: float, process: subprocess.Popen) -> bool:
    """True once url returns 200 within `seconds`; False if it does not or the process ends."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(1)
    return False


def _detached(command: list[str], log: Path, env: dict | None = None) -> subprocess.Popen:
    """Start command in its own session, so that it outlives this script and the SSH command that ran it."""
    with open(log, "ab") as out:
        return subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True, env=env
        )


def stop(temp_dir: Path) -> None:
    """End the servers an earlier `start` recorded in the state folder (only those processes)."""
    for pid_file in sorted((temp_dir / STATE).glob("*.pid")):
        record = json.loads(pid_file.read_text())
        try:
            process = psutil.Process(record["pid"])
            if process.create_time() == record["created"]:
                process.terminate()
                try:
                    process.wait(15)
                except psutil.TimeoutExpired:
                    process.kill()
                print(f"{pid_file.stem}: stopped (pid {record['pid']})")
        except psutil.NoSuchProcess:
            pass
        pid_file.unlink()


def _record(temp_dir: Path, name: str, process: subprocess.Popen) -> None:
    created = psutil.Process(process.pid).create_time()
    (temp_dir / STATE / f"{name}.pid").write_text(json.dumps({"pid": process.pid, "created": created}))


def start(
    temp_dir: Path,
    prefix: Path,
    prometheus: str | None,
    grafana_home: Path | None,
    prometheus_port: int,
    grafana_port: int,
    wait_s: float,
) -> int:
    session = temp_dir / "session_latest"
    prometheus_config = session / "metrics" / "prometheus" / "prometheus.yml"
    grafana_config = session / "metrics" / "grafana" / "grafana.ini"
    for path in (prometheus_config, grafana_config):
        _wait_for(path, wait_s)
    stop(temp_dir)
    state = temp_dir / STATE
    state.mkdir(parents=True, exist_ok=True)
    logs = session / "logs"
    prometheus = prometheus or _find_prometheus(prefix)
    if prometheus is None:
        print(f"error: no Prometheus in {prefix} or on PATH: run `python {Path(__file__).name} install` first", file=sys.stderr)
        return 1
    server = _detached(
        [
            prometheus,
            f"--config.file={prometheus_config.resolve()}",
            f"--storage.tsdb.path={state / 'prometheus-data'}",
            f"--web.listen-address=127.0.0.1:{prometheus_port}",
            "--web.enable-lifecycle",
        ],
        logs / "prometheus.log",
    )
    _record(temp_dir, "prometheus", server)
    if not _answers(f"http://127.0.0.1:{prometheus_port}/api/v1/query?query=vector(1)", wait_s, server):
        print(f"error: Prometheus did not answer on port {prometheus_port}; see {logs / 'prometheus.log'}", file=sys.stderr)
        return 1
    print(f"prometheus: http://127.0.0.1:{prometheus_port} (pid {server.pid}, scraping {prometheus_config.resolve()})")

    # Ray's provisioning reads every dashboard in this folder (it is rewritten when the head starts).
    dashboards = grafana_config.parent / "dashboards"
    shutil.copy(DASHBOARD, dashboards / DASHBOARD.name)
    grafana_home = grafana_home or _find_grafana_home(prefix)
    if grafana_home is None or not (grafana_home / "bin" / "grafana").exists():
        print(f"grafana: not installed (`python {Path(__file__).name} install`): the Metrics tab shows no Grafana panels")
        return 0
    env = dict(
        os.environ,
        GF_SERVER_HTTP_ADDR="127.0.0.1",
        GF_SERVER_HTTP_PORT=str(grafana_port),
        GF_PATHS_DATA=str(state / "grafana-data"),
        GF_PATHS_LOGS=str(logs),
    )
    command = [
        str(grafana_home / "bin" / "grafana"),
        "server",
        f"--homepath={grafana_home}",
        f"--config={grafana_config.resolve()}",
    ]
    server = _detached(command, logs / "grafana.log", env)
    _record(temp_dir, "grafana", server)
    if not _answers(f"http://127.0.0.1:{grafana_port}/api/health", wait_s, server):
        print(f"error: Grafana did not answer on port {grafana_port}; see {logs / 'grafana.log'}", file=sys.stderr)
        return 1
    print(f"grafana: http://127.0.0.1:{grafana_port} (pid {server.pid}), Ray's dashboards and '{DASHBOARD.stem}' provisioned")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    for name in ("install", "start", "stop"):
        command = commands.add_parser(name)
        command.add_argument("--prefix", type=Path, default=PREFIX, help="where `install` puts the releases")
        command.add_argument("--temp-dir", type=Path, default=default_temp_dir(), help="the head's `ray start --temp-dir`")
        if name == "start":
            command.add_argument("--prometheus", help="a Prometheus binary (default: installed, else on PATH)")
            command.add_argument("--grafana-home", type=Path, help="a Grafana release folder (default: installed)")
            command.add_argument("--prometheus-port", type=int, default=PROMETHEUS_PORT)
            command.add_argument("--grafana-port", type=int, default=GRAFANA_PORT)
            command.add_argument("--wait", type=float, default=120.0, help="seconds to wait for Ray's configs and each server")
    args = parser.parse_args(argv)
    if args.command == "install":
        install(args.prefix)
        return 0
    if args.command == "stop":
        stop(args.temp_dir)
        return 0
    return start(
        args.temp_dir, args.prefix, args.prometheus, args.grafana_home, args.prometheus_port, args.grafana_port, args.wait
    )


if __name__ == "__main__":
    sys.exit(main())
