"""A private single-machine Ray head for `xrdgen run` / `make run`, always stopped afterwards.

Why not `ray start --head` + `ray stop`: `ray stop` kills *every* Ray process of the user on the
machine (other runs, test sessions). Instead the head runs as `ray start --head --block` in a child
process with its own temp dir and free ports; terminating that one process (SIGTERM, as Ctrl-C or
any error does through the context manager) makes Ray tear down exactly the processes it started.

With an autoscaling config (`local_head(autoscaling_config=...)`, used by services/fake_cluster.py)
the head also runs Ray's autoscaler; nodes it starts on this machine (the fake multinode provider)
are children of the autoscaler, outside the head's own clean-up, so stopping also ends every process
that descends from the head and is still there after the grace period.

Token authentication stays on: the shared token is ~/.ray/auth_token (created once with
`ray get-auth-token --generate`), and the head, `ray job submit` and the job all run with
RAY_AUTH_MODE=token. The dashboard listens on 127.0.0.1 only.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import psutil

START_TIMEOUT_S = 120.0


def _ray_executable() -> str:
    """The `ray` next to this interpreter (the project's venv), else the one on PATH."""
    candidate = Path(sys.executable).with_name("ray")
    return str(candidate) if candidate.exists() else (shutil.which("ray") or "ray")


def free_ports(n: int) -> list[int]:
    """n distinct free ports: every socket stays bound until all are chosen (one at a time, the
    system may hand out the same port twice, and Ray refuses two components on one port)."""
    with contextlib.ExitStack() as stack:
        sockets = [stack.enter_context(socket.socket()) for _ in range(n)]
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]


def token_auth_env() -> dict:
    """Environment for every Ray command: token auth on, token file present (created if missing)."""
    # The job's `python` must be this interpreter (the project's venv), not whatever PATH has first.
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    env = dict(os.environ, RAY_AUTH_MODE="token", PATH=path)
    token = Path.home() / ".ray" / "auth_token"
    if not token.exists() and not env.get("RAY_AUTH_TOKEN") and not env.get("RAY_AUTH_TOKEN_PATH"):
        # Prints the token on stdout: keep it out of the terminal and logs.
        subprocess.run(
            [_ray_executable(), "get-auth-token", "--generate"],
            env=env,
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
    return env


@dataclass
class LocalHead:
    dashboard_url: str
    gcs_address: str
    metrics_url: str  # Prometheus text of this node's metrics (what the dashboard's Metrics view shows)
    env: dict
    log_path: Path
    pid: int  # the blocking `ray start --head`; every process of the cluster descends from it
    temp_dir: Path

    def submit(self, entrypoint: Sequence[str], working_dir: Optional[Path] = None, extra: Sequence[str] = ()) -> int:
        """`ray job submit [--working-dir ...] -- entrypoint`, its logs streamed here; returns its status."""
        return subprocess.call(self._submit_command(entrypoint, working_dir, extra), env=self.env)

    def submit_in_background(self, entrypoint: Sequence[str], log_path: Path) -> subprocess.Popen:
        """`ray job submit -- entrypoint` running beside the caller, its logs streamed into log_path."""
        with open(log_path, "w") as log:
            return subprocess.Popen(self._submit_command(entrypoint), env=self.env, stdout=log, stderr=subprocess.STDOUT)

    def _submit_command(self, entrypoint: Sequence[str], working_dir: Optional[Path] = None, extra: Sequence[str] = ()) -> list:
        command = [_ray_executable(), "job", "submit", "--address", self.dashboard_url]
        if working_dir is not None:
            command += ["--working-dir", str(working_dir)]
        return [*command, *extra, "--", *entrypoint]


def _dashboard_up(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/api/version", timeout=2) as response:
            return response.status == 200
    except urllib.error.HTTPError as exc:  # 401 without a token: up, and enforcing auth
        return exc.code in (401, 403)
    except OSError:
        return False


@contextlib.contextmanager
def local_head(
    num_cpus: Optional[float] = None,
    num_gpus: Optional[float] = None,
    autoscaling_config: Optional[Callable[[str, Path], Path]] = None,
    extra_env: Optional[dict] = None,
) -> Iterator[LocalHead]:
    """Start a private head, yield it, stop it (and what it started) on exit, error or Ctrl-C.

    `autoscaling_config(gcs_address, temp_dir)` writes the autoscaler's cluster YAML for a head at
    that address into temp_dir and returns its path (the head's port is only known here).
    """
    env = dict(token_auth_env(), **(extra_env or {}))
    temp_dir = Path(tempfile.mkdtemp(prefix="xrdgen_ray_", dir="/tmp"))
    port, dashboard_port, agent_port, client_port, metrics_port = free_ports(5)
    log_path = temp_dir / "ray_start.log"
    command = [
        _ray_executable(),
        "start",
        "--head",
        "--block",
        f"--port={port}",
        f"--temp-dir={temp_dir}",
        "--dashboard-host=127.0.0.1",
        f"--dashboard-port={dashboard_port}",
        f"--dashboard-agent-listen-port={agent_port}",
        f"--ray-client-server-port={client_port}",
        f"--metrics-export-port={metrics_port}",
        "--disable-usage-stats",
    ]
    if num_cpus is not None:
        command.append(f"--num-cpus={num_cpus}")
    if num_gpus is not None:
        command.append(f"--num-gpus={num_gpus}")
    if autoscaling_config is not None:
        command.append(f"--autoscaling-config={autoscaling_config(f'{node_ip_address()}:{port}', temp_dir)}")
    url = f"http://127.0.0.1:{dashboard_port}"
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not _dashboard_up(url):
            if process.poll() is not None:
                raise RuntimeError(
                    f"ray start failed (exit {process.returncode}); see {log_path}:\n" + log_path.read_text()[-2000:]
                )
            if time.monotonic() > deadline:
                raise RuntimeError(f"Ray head did not come up within {START_TIMEOUT_S:.0f} s; see {log_path}")
            time.sleep(0.5)
        yield LocalHead(
            dashboard_url=url,
            gcs_address=f"{node_ip_address()}:{port}",
            metrics_url=f"http://127.0.0.1:{metrics_port}/metrics",
            env=env,
            log_path=log_path,
            pid=process.pid,
            temp_dir=temp_dir,
        )
    finally:
        _stop(process)
        shutil.rmtree(temp_dir, ignore_errors=True)


def node_ip_address() -> str:
    """The address Ray's nodes on this machine register with (the fake multinode provider's too)."""
    from ray._private.services import get_node_ip_address  # private, but the one Ray itself uses here

    return get_node_ip_address()


def _stop(process: subprocess.Popen, grace_s: float = 30.0) -> None:
    """SIGTERM the blocking `ray start` (it stops its own processes), SIGKILL its group if it hangs,
    then SIGKILL its descendants that outlived it (nodes started by the autoscaler)."""
    try:
        descendants = psutil.Process(process.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        descendants = []
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    for child in descendants:
        with contextlib.suppress(psutil.NoSuchProcess):
            child.kill()
    psutil.wait_procs(descendants, timeout=5)
