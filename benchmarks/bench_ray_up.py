"""`ray up`, `ray status`, `ray job submit` and `ray down` as a user runs them, on three loopback "nodes".

    .venv/bin/python benchmarks/bench_ray_up.py --user xrdgen --key ~/.ssh/xrdgen_loopback
                                                [--layout as-written|loopback|loopback-ray-stop]
                                                [--autoscaler v1|v2] [--run-dir runs/ray_up]
                                                [--no-metrics-install]

Ray's local provider needs only SSH: `ray up` logs into each address of the layout, syncs the
project, runs the setup commands (a venv per node, `pip install -e ~/xrdgen`) and the start
commands, and the autoscaler on the head does the same for the workers. Here the three addresses
are 127.0.0.1 (head), 127.0.0.2 and 127.0.0.3 (workers), all answered by this machine's sshd for
one user, so every "node" shares one host, one home and one temp folder.

Layouts:
  as-written        cluster/head_plus_two.yaml with only the addresses, the SSH user and key, and the
                    cluster name changed: what a user gets who points the on-prem layout at one host;
  loopback          the same plus what several Ray nodes on one host (and a "laptop" on it too) need,
                    each explained in docs/cluster.md: the nodes keep Ray's files in a folder of their
                    own (RAY_TMPDIR; each worker a session folder of its own, `ray start
                    --temp-dir`), each node registers under the address it was reached at, the
                    workers do not run `ray stop`, and the nodes' setup runs one at a time (one
                    home, one venv);
  loopback-ray-stop loopback, but the workers keep the layout's `ray stop`: shows what it does here.

Steps (each timed, its output in RUN_DIR/<step>.log):
  1. `ray up -y`;
  2. `ray exec ... ray status` until the head and both workers are active (or a timeout);
  3. `ray dashboard -p PORT` (the SSH port-forward) and `ray job submit --working-dir .` of
     `services.train` (configs/cluster.yaml, about a minute, sized for this machine);
  4. `ray exec ... cat summary.json` of the run on the head;
  5. `ray down -y`.
Prints each step's seconds and exit status and writes RUN_DIR/report.json. Not a test: it installs
the project (TensorFlow, Ray) into the user's venv, which takes minutes the first time.
Prerequisites (as root, once): docs/cluster.md, "`ray up` on one machine".
"""

from __future__ import annotations

import argparse
import ast
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

from services.local_cluster import free_ports, token_auth_env

ROOT = Path(__file__).resolve().parents[1]
LAYOUT = ROOT / "cluster" / "head_plus_two.yaml"
HEAD, WORKERS = "127.0.0.1", ["127.0.0.2", "127.0.0.3"]
RAY = str(Path(sys.executable).with_name("ray"))
JOB_OVERRIDES = {  # configs/cluster.yaml on three 2-CPU "nodes": one 2-CPU generator per worker, a small batch
    "training.max_minutes": 1,
    "training.batch_size": 32,
    "training.batches_per_epoch": 10,
    "training.output_dir": "~/xrdgen-runs/loopback",
    "cluster.trainer_cpus": 1,
    "cluster.trainer_gpus": 0,  # no GPU here (the head's declared GPU is not one TensorFlow sees)
    "cluster.cpus_per_generator": 2,
    "cluster.generator_batch_size": 32,
    "cluster.queue_max_items": 4,
    "cluster.prefetch_batches": 2,
}
# The node's own address, as the SSH session that runs the command sees it (local provider: the layout's IP).
OWN_ADDRESS = "$(echo $SSH_CONNECTION | cut -d' ' -f3)"


def layout(variant: str, user: str, key: Path, metrics_install: bool = True) -> dict:
    """cluster/head_plus_two.yaml pointed at the loopback addresses (see the module docstring)."""
    config = yaml.safe_load(LAYOUT.read_text())
    config["cluster_name"] = f"xrdgen-{variant}"
    config["provider"].update(head_ip=HEAD, worker_ips=WORKERS)
    config["auth"] = {"ssh_user": user, "ssh_private_key": str(key)}
    # No GPU here: the trainer's TensorFlow runs on the CPU, without the gpu extra's CUDA wheels (3 GB).
    config["head_setup_commands"] = [c for c in config["head_setup_commands"] if "[gpu]" not in c]
    if not metrics_install:  # a machine that reaches no release downloads: `prometheus` on PATH serves, no Grafana
        config["head_setup_commands"] = [c for c in config["head_setup_commands"] if "dashboard_metrics.py install" not in c]
    if variant.startswith("loopback"):
        private_tmp = (
            "mkdir -p ~/ray-tmp && (grep -q RAY_TMPDIR ~/.bashrc || echo 'export RAY_TMPDIR=$HOME/ray-tmp' >> ~/.bashrc)"
        )
        config["setup_commands"] = [
            f"flock ~/.xrdgen-setup.lock -c {_quote(c)}" for c in [private_tmp, *config["setup_commands"]]
        ]
        config["head_start_ray_commands"] = [
            c.replace("ray start --head", f"ray start --head --node-ip-address={OWN_ADDRESS}")
            for c in config["head_start_ray_commands"]
        ]
        own_node = f"--node-ip-address={OWN_ADDRESS} --temp-dir=$HOME/ray-tmp/{OWN_ADDRESS}"  # a session folder per node
        config["worker_start_ray_commands"] = [
            c.replace("ray start --address", f"ray start {own_node} --address")
            for c in config["worker_start_ray_commands"]
            if variant == "loopback-ray-stop" or "ray stop" not in c
        ]
    return config


def _quote(command: str) -> str:
    return "'" + command.replace("'", "'\"'\"'") + "'"


class Steps:
    """Runs the user's commands one by one, each logged to RUN_DIR/<name>.log and timed."""

    def __init__(self, run_dir: Path, env: dict):
        self.run_dir, self.env, self.report = run_dir, env, []
        self.started = time.monotonic()

    def run(self, name: str, command: list[str], timeout_s: float) -> subprocess.CompletedProcess:
        log = self.run_dir / f"{name}.log"
        print(f"[{time.monotonic() - self.started:7.1f} s] {name}: {' '.join(command)}", flush=True)
        began = time.monotonic()
        try:
            result = subprocess.run(command, cwd=ROOT, env=self.env, capture_output=True, text=True, timeout=timeout_s)
        except subprocess.TimeoutExpired as exc:
            result = subprocess.CompletedProcess(command, 124, _text(exc.stdout), _text(exc.stderr) + "\n(timed out)")
        seconds = time.monotonic() - began
        log.write_text(result.stdout + result.stderr)
        self.report.append({"step": name, "seconds": round(seconds, 1), "returncode": result.returncode, "log": log.name})
        print(f"[{time.monotonic() - self.started:7.1f} s] {name}: exit {result.returncode} after {seconds:.1f} s", flush=True)
        return result


def _text(value) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else (value or "")


# The live nodes and the address each registered with, from Ray itself on the head (`ray status` counts
# the nodes the autoscaler matched to the layout's addresses).
NODES = (
    "RAY_AUTH_MODE=token ~/xrdgen-venv/bin/python -c \"import ray; ray.init(address='auto', logging_level='ERROR'); "
    "print('NODES', sorted((n['NodeManagerAddress'], n['Resources'].get('CPU', 0)) for n in ray.nodes() if n['Alive']))\""
)


# The end of the autoscaler's logs in the head's Ray temp folder (RAY_TMPDIR, else the system's).
MONITOR_LOGS = (
    '~/xrdgen-venv/bin/python -c "import glob, os, tempfile; '
    "logs = os.path.join(os.environ.get('RAY_TMPDIR') or tempfile.gettempdir(), 'ray', 'session_latest', 'logs'); "
    "[print(path, open(path).read()[-8000:]) for path in sorted(glob.glob(logs + '/monitor.*'))]\""
)


def live_nodes(output: str) -> list:
    """[(address, CPUs)] of the NODES line."""
    line = next((line for line in output.splitlines() if line.startswith("NODES ")), "NODES []")
    return ast.literal_eval(line.removeprefix("NODES "))


def _dashboard_up(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/api/version", timeout=2):
            return True
    except urllib.error.HTTPError as exc:
        return exc.code in (401, 403)  # up, and enforcing token authentication
    except OSError:
        return False


def submit_job(steps: Steps, cluster: list[str], run_dir: Path, report: dict) -> subprocess.Popen:
    """`ray dashboard` (SSH port-forward) and `ray job submit` of services.train; returns the forward."""
    (port,) = free_ports(1)
    with (run_dir / "ray_dashboard.log").open("w") as log:
        tunnel = subprocess.Popen(
            [RAY, "dashboard", "-p", str(port), *cluster[:2]],
            cwd=ROOT,
            env=steps.env,
            stdout=log,
            stderr=log,
            start_new_session=True,  # ended with its ssh child as one group
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while not _dashboard_up(url) and time.monotonic() < deadline:
        time.sleep(1)
    report["dashboard_forwarded"] = _dashboard_up(url)
    run_dir_on_head = JOB_OVERRIDES["training.output_dir"]
    steps.run("fresh_run_dir", [RAY, "exec", *cluster, f"rm -rf {run_dir_on_head}"], timeout_s=120)  # not a resumed run
    sets = [word for key, value in JOB_OVERRIDES.items() for word in ("--set", f"{key}={value}")]
    statistics = "xrdgen/data/default_statistics.json.gz"  # the shipped statistics, without their 7,794-crystal test part
    entrypoint = ["python", "-m", "services.train", "--config", "configs/cluster.yaml", "--statistics", statistics, *sets]
    steps.run("ray_job_submit", [RAY, "job", "submit", "--address", url, "--working-dir", ".", "--", *entrypoint], 1800)
    summary = steps.run("run_summary", [RAY, "exec", *cluster, f"cat {run_dir_on_head}/summary.json"], timeout_s=120)
    with contextlib.suppress(ValueError):
        report["summary"] = json.loads(summary.stdout[summary.stdout.index("{") : summary.stdout.rindex("}") + 1])
    return tunnel


def run(variant: str, user: str, key: Path, run_dir: Path, metrics_install: bool = True, autoscaler: str = "v2") -> dict:
    run_dir.mkdir(parents=True, exist_ok=True)
    config_path = run_dir / f"{variant}.yaml"
    config_path.write_text(yaml.safe_dump(layout(variant, user, key, metrics_install), sort_keys=False))
    # `ray up` starts the head with Ray's autoscaler v2 (the default since Ray 2.50) unless told otherwise.
    steps = Steps(run_dir, token_auth_env() | {"RAY_UP_enable_autoscaler_v2": "1" if autoscaler == "v2" else "0"})
    cluster = [str(config_path), "--no-config-cache", "--log-style", "record"]
    report: dict = {"variant": variant, "autoscaler": autoscaler, "layout": str(config_path), "steps": steps.report}

    up = steps.run("ray_up", [RAY, "up", "-y", *cluster], timeout_s=3600)
    remote_ray = "RAY_AUTH_MODE=token ~/xrdgen-venv/bin/ray"
    tunnel = None
    try:
        if up.returncode == 0:
            deadline = time.monotonic() + 300
            while True:
                status = steps.run("ray_status", [RAY, "exec", *cluster, f"{remote_ray} status"], timeout_s=120)
                report["ray_status"] = status.stdout[status.stdout.find("======== Autoscaler") :]
                report["live_nodes"] = live_nodes(steps.run("ray_nodes", [RAY, "exec", *cluster, NODES], 120).stdout)
                if len(report["live_nodes"]) >= 1 + len(WORKERS) or time.monotonic() > deadline:
                    break
                time.sleep(20)
        if len(report.get("live_nodes", [])) >= 1 + len(WORKERS):
            tunnel = submit_job(steps, cluster, run_dir, report)
            steps.run("ray_status_after_job", [RAY, "exec", *cluster, f"{remote_ray} status"], timeout_s=120)
        # The autoscaler's own account (it runs on the head), for the record.
        steps.run("autoscaler_log", [RAY, "exec", *cluster, MONITOR_LOGS], timeout_s=120)
    finally:
        if tunnel is not None:
            os.killpg(tunnel.pid, signal.SIGTERM)
            try:
                tunnel.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(tunnel.pid, signal.SIGKILL)
        steps.run("ray_down", [RAY, "down", "-y", str(config_path), "--log-style", "record"], timeout_s=600)
    report["seconds_total"] = round(time.monotonic() - steps.started, 1)
    (run_dir / "report.json").write_text(json.dumps(report, indent=2))
    return report


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--user", required=True, help="the SSH user of the three loopback nodes")
    parser.add_argument("--key", type=Path, required=True, help="its private key (the public one in its authorized_keys)")
    parser.add_argument("--layout", choices=("as-written", "loopback", "loopback-ray-stop"), default="loopback")
    parser.add_argument("--run-dir", type=Path, default=ROOT / "runs" / "ray_up")
    parser.add_argument("--autoscaler", choices=("v1", "v2"), default="v2", help="the autoscaler `ray up` starts on the head")
    parser.add_argument(
        "--no-metrics-install",
        action="store_true",
        help="drop the head's `dashboard_metrics.py install` (no internet for release downloads; `prometheus` on PATH)",
    )
    args = parser.parse_args()
    if shutil.which("rsync") is None:
        print("error: `ray up` syncs files with rsync: install it (apt-get install -y rsync)", file=sys.stderr)
        return 2
    key = args.key.expanduser().resolve()
    probe = ["ssh", "-i", str(key), "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"]
    for address in (HEAD, *WORKERS):
        if subprocess.run([*probe, f"{args.user}@{address}", "true"], capture_output=True, timeout=30).returncode != 0:
            print(f"error: ssh {args.user}@{address} with {key} fails: see docs/cluster.md for the SSH set-up", file=sys.stderr)
            return 2
    run_dir = args.run_dir / f"{args.layout}-{args.autoscaler}"
    report = run(args.layout, args.user, key, run_dir, metrics_install=not args.no_metrics_install, autoscaler=args.autoscaler)
    print(f"\n{'step':<22} {'seconds':>8} {'exit':>5}")
    for step in report["steps"]:
        print(f"{step['step']:<22} {step['seconds']:8.1f} {step['returncode']:5d}")
    print(f"live nodes (address, CPUs): {report.get('live_nodes', [])}, wanted {1 + len(WORKERS)}")
    print(f"run summary: {json.dumps(report.get('summary'))}")
    print(f"report: {run_dir / 'report.json'}")
    failed = [s["step"] for s in report["steps"] if s["returncode"] != 0]
    return 1 if failed or len(report.get("live_nodes", [])) < 1 + len(WORKERS) else 0


if __name__ == "__main__":
    sys.exit(main())
