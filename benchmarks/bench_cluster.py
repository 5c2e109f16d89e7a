"""The cluster layout run by Ray's autoscaler, end to end, on this machine (fake multinode provider).

    .venv/bin/python benchmarks/bench_cluster.py [--minutes 1.5] [--no-kill] [--no-replacement]
                                                 [--autoscale] [--no-test-set] [--json OUT.json]

1. the default statistics (embedded structures) are built once into the run directory;
2. `RAY_FAKE_CLUSTER=1 ray start --head --autoscaling-config=cluster/fake_multinode.yaml` (token
   authentication on, services/fake_cluster.py); the autoscaler brings up the two worker nodes;
3. `ray job submit -- python -m services.train` with a small config and `n_generators: auto`; with
   --autoscale the layout's workers start at min_workers 0 and the job asks for 2 generators: the
   pool's request to the autoscaler (`request_resources`) must appear and bring both workers up;
4. from Ray's state API: the trainer sits on the head (a trainer without GPUs is reserved on the
   driver's node; this machine has no GPU for the head's declared one), every generator on a
   worker, the pool has its target size (the workers' CPUs), queue and statistics server on the head;
5. the Prometheus endpoint of every node (`MetricsExportPort` of `ray.nodes()`) shows the
   ray_xrdgen_* series with values;
6. unless --no-kill, after WARM_UP_S of training: the raylet of a worker that hosts a generator is
   killed, as if the machine died. The autoscaler (v2) replaces the node and the pool is back to
   its size on live workers; with --no-replacement (v1, which keeps the dead node) the pool shrinks
   to the CPUs left. Either way the trainer keeps training after the pool is back (its step grows).
   Figures, not checks: the trainer's longest wait for a batch that began after the kill, against
   its longest wait before the kill in the same run (the load's own), and the seconds until the pool
   was back;
7. the job ends, the cluster is stopped and no process of it is left.

Prints each step's time and writes the figures and the checks as JSON; exit status 1 when a check
fails (no check is a timing). The sizes are small (801-point grid, batches of 8) so that it runs on a 2-core laptop; the
point is the placement and the recovery, not the throughput. All "nodes" share this machine's
cores: on a loaded machine the trainer also waits for reasons that have nothing to do with a node.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
import urllib.request
from pathlib import Path

os.environ["RAY_AUTH_MODE"] = "token"  # read when Ray is imported: this process joins the cluster as a client

import psutil  # noqa: E402
import ray  # noqa: E402
import yaml  # noqa: E402
from ray.util.state import list_actors  # noqa: E402

from services.fake_cluster import alive_nodes, fake_cluster, kill_node, wait_for_workers  # noqa: E402
from services.metrics import PROMETHEUS_PREFIX  # noqa: E402
from xrdgen.config import load_config  # noqa: E402
from xrdgen.pipeline import resolve_statistics  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
LAYOUT = ROOT / "cluster" / "fake_multinode.yaml"
WARM_UP_S = 10.0  # training before the kill: the generators' first batches compile Numba kernels
SMALL = {  # everything else is the default configuration
    "grid": {"two_theta_min": 10.0, "two_theta_max": 50.0, "step": 0.05},
    "statistics": {"max_atoms_asymmetric_unit": 12},
    "training": {"model": "park_medium", "batch_size": 8, "batches_per_epoch": 4, "learning_rate": 1e-3},
    "cluster": {
        "n_generators": "auto",
        "cpus_per_generator": 1,
        "trainer_cpus": 1,
        "trainer_gpus": 0,  # the head's GPU is declared, not real: the trainer is reserved on the head by CPU
        "generator_batch_size": 4,
        "queue_max_items": 4,
        "prefetch_batches": 2,
    },
}


def _log(message: str, started: float) -> None:
    print(f"[{time.monotonic() - started:6.1f} s] {message}", flush=True)


def placement(dashboard_url: str) -> dict:
    """Node of every live actor of the job, from the state API."""
    actors = list_actors(address=dashboard_url, filters=[("state", "=", "ALIVE")], limit=1000, raise_on_missing_output=False)
    of = {
        "trainer": "_TrainerActor",
        "generators": "_GeneratorActor",
        "queue": "_QueueActor",
        "statistics_server": "_StatisticsServerActor",
    }
    return {role: sorted(a.node_id for a in actors if a.class_name == name) for role, name in of.items()}


def scrape(nodes: list[dict]) -> dict:
    """{series name: summed value} of the xrdgen_* series over the Prometheus endpoints of `nodes`."""
    values: dict = {}
    for node in nodes:
        url = f"http://{node['NodeManagerAddress']}:{node['MetricsExportPort']}/metrics"
        try:
            text = urllib.request.urlopen(url, timeout=5).read().decode()
        except OSError:
            continue
        for line in text.splitlines():
            if line.startswith(PROMETHEUS_PREFIX):
                name, value = line.split("{")[0].split(" ")[0], float(line.rsplit(" ", 1)[1])
                values[name] = values.get(name, 0.0) + value
    return values


def wait(condition, timeout_s: float, job, every_s: float = 2.0):
    """condition()'s first true value within timeout_s, or None (also as soon as the job has ended)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and job.poll() is None:
        value = condition()
        if value:
            return value
        time.sleep(every_s)
    return None


def autoscaling_layout(run_dir: Path) -> Path:
    """LAYOUT with its workers at min_workers 0: the autoscaler starts them only when asked."""
    layout = yaml.safe_load(LAYOUT.read_text())
    for name, node_type in layout["available_node_types"].items():
        if name != layout["head_node_type"]:
            node_type["min_workers"] = 0
    path = run_dir / "fake_multinode_autoscaling.yaml"
    path.write_text(yaml.safe_dump(layout, sort_keys=False))
    return path


def run(
    minutes: float, kill: bool, run_dir: Path, test_set: bool = True, replacement: bool = True, autoscale: bool = False
) -> dict:
    """Steps 1-7 of the module docstring; returns the report (figures and checks)."""
    started = time.monotonic()
    report: dict = {"checks": {}, "seconds": {}}
    run_dir.mkdir(parents=True, exist_ok=True)
    layout = autoscaling_layout(run_dir) if autoscale else LAYOUT
    generators = {"cluster.n_generators": max_worker_cpus(layout)} if autoscale else {}  # a number: asked for
    config = load_config(
        None,
        {f"{s}.{k}": v for s, fields in SMALL.items() for k, v in fields.items()}
        | {"training.max_minutes": minutes, "training.output_dir": str(run_dir / "run")}
        | generators,
    )
    shutil.rmtree(config.training.output_dir, ignore_errors=True)  # a fresh training, not a resumed one
    statistics, test_part = resolve_statistics("default")
    job_config = run_dir / "job_config.yaml"
    job_config.write_text(config.to_yaml())
    entrypoint = ["python", "-m", "services.train", "--config", str(job_config), "--statistics", str(statistics)]
    entrypoint += ["--test", str(test_part)] if test_set else []
    report["seconds"]["statistics"] = time.monotonic() - started

    with fake_cluster(layout, replace_dead_nodes=replacement) as cluster:
        _log(f"head up: {cluster.dashboard_url}", started)
        report["seconds"]["head_up"] = time.monotonic() - started
        ray.init(address=cluster.gcs_address, logging_level="WARNING", log_to_driver=False)
        jobs: list = []
        try:
            exercise(cluster, layout, config, entrypoint, run_dir / "job.log", kill, replacement, report, started, jobs)
        finally:
            for log in (cluster.temp_dir / "session_latest" / "logs").glob("monitor.*"):  # the autoscaler's
                shutil.copy(log, run_dir / log.name)
            ray.shutdown()  # before the cluster goes: a connected client would hang on its exit
            for job in jobs:  # the `ray job submit` client, when a step failed before the job ended
                if job.poll() is None:
                    job.terminate()
                    job.wait(timeout=30)
            processes = psutil.Process(cluster.pid).children(recursive=True) + [psutil.Process(cluster.pid)]
    report["seconds"]["stopped"] = time.monotonic() - started
    _, alive = psutil.wait_procs(processes, timeout=10)
    report["checks"]["cluster_stopped"] = not alive
    _log(f"stopped; {len(alive)} processes left", started)
    return report


def worker_types(layout: Path) -> list[dict]:
    config = yaml.safe_load(Path(layout).read_text())
    return [t for name, t in config["available_node_types"].items() if name != config["head_node_type"]]


def max_worker_cpus(layout: Path) -> int:
    return int(sum(t["max_workers"] * t["resources"].get("CPU", 0) for t in worker_types(layout)))


def constraint_demand(gcs_address: str) -> list[str]:
    """The autoscaler's cluster constraints (what `request_resources` asked for), as text."""
    from ray.autoscaler.v2.sdk import get_cluster_status

    return [str(d) for d in get_cluster_status(gcs_address).resource_demands.cluster_constraint_demand]


def exercise(
    cluster,
    layout: Path,
    config,
    entrypoint: list,
    job_log: Path,
    kill: bool,
    replacement: bool,
    report: dict,
    started: float,
    jobs: list,
) -> None:
    """Steps 2-6 on the running head (this process connected to it); the job's client goes into `jobs`."""
    checks, seconds = report["checks"], report["seconds"]
    workers = wait_for_workers(sum(t.get("min_workers", 0) for t in worker_types(layout)), 180)
    seconds["workers_up"] = time.monotonic() - started
    report["workers_before_the_job"] = len(workers)
    _log(f"autoscaler brought up {len(workers)} workers", started)
    head_id = next(n["NodeID"] for n in ray.nodes() if n["Alive"] and "node:__internal_head__" in n["Resources"])

    job = cluster.submit_in_background(entrypoint, job_log)
    jobs.append(job)
    _log("job submitted: " + " ".join(entrypoint), started)
    if config.cluster.n_generators != "auto":  # the pool asks the autoscaler for its generators' CPUs
        asked: list = []
        count = sum(t["max_workers"] for t in worker_types(layout))

        def scaled_up():
            asked.extend(demand for demand in constraint_demand(cluster.gcs_address) if demand not in asked)
            up = [n for n in alive_nodes() if n["NodeID"] != head_id]
            return len(up) >= count and up

        workers = wait(scaled_up, 300, job) or []
        seconds["workers_up_for_the_job"] = time.monotonic() - started
        report["autoscaler_constraint"] = asked
        checks["pool_asked_the_autoscaler"] = bool(asked)
        checks["autoscaler_started_the_workers_the_job_asked_for"] = len(workers) == count
        _log(f"the job asked for {asked}; {len(workers)} workers up", started)
    expected = int(sum(n["Resources"].get("CPU", 0) for n in workers) // config.cluster.cpus_per_generator)
    placed = wait(lambda: (p := placement(cluster.dashboard_url))["trainer"] and len(p["generators"]) == expected and p, 300, job)
    seconds["placed"] = time.monotonic() - started
    report["placement"] = placed
    checks["trainer_on_head"] = bool(placed) and placed["trainer"] == [head_id]
    checks["generators_on_workers"] = bool(placed) and set(placed["generators"]) <= {n["NodeID"] for n in workers}
    checks["pool_fills_the_workers"] = bool(placed) and len(placed["generators"]) == expected
    _log(f"placement: {placed}", started)

    wanted = [PROMETHEUS_PREFIX + name for name in ("patterns_generated_total", "generators_alive", "trainer_step")]
    metrics = wait(lambda: (v := scrape(ray.nodes())) and all(v.get(w, 0) > 0 for w in wanted) and v, 120, job)
    report["metrics"] = metrics or scrape(ray.nodes())
    checks["metrics_scraped"] = bool(metrics)
    seconds["metrics"] = time.monotonic() - started
    _log(f"metrics: {report['metrics']}", started)

    if kill and placed:
        time.sleep(max(0.0, WARM_UP_S - (time.monotonic() - started - seconds["metrics"])))
        victim = placed["generators"][0]
        kill_node(cluster, victim)
        killed_at = time.monotonic()
        report["killed_at_unix"] = time.time()
        _log(f"killed the raylet of worker ..{victim[-5:]}", started)
        timeline = []  # (seconds after the kill, pool size from the metric, nodes of the live generators)

        # With a replacement node: back to the full size. Without: the pool's own size (the metric)
        # comes down to the CPUs left, one generator less than before.
        size = expected if replacement else expected - 1

        def restored():
            alive = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
            now = placement(cluster.dashboard_url)["generators"]
            pool = scrape(ray.nodes()).get(PROMETHEUS_PREFIX + "generators_alive")
            timeline.append((round(time.monotonic() - killed_at, 1), pool, [n[-5:] for n in now]))
            on_live_workers = len(now) == size and victim not in now and set(now) <= alive - {head_id}
            return on_live_workers and (replacement or pool == size) and now

        back = wait(restored, 240, job)
        seconds["pool_restored_after_kill"] = time.monotonic() - killed_at
        report["after_kill"] = {"generators": back, "timeline": timeline}
        report["step_when_pool_restored"] = scrape(ray.nodes()).get(PROMETHEUS_PREFIX + "trainer_step", 0.0)
        checks["pool_back_to_size_after_node_loss" if replacement else "pool_shrinks_to_the_cpus_left"] = bool(back)
        _log(f"pool after the node loss: {back}; timeline {timeline}", started)

    status = job.wait(timeout=60 * config.training.max_minutes + 600)
    seconds["job_done"] = time.monotonic() - started
    checks["job_succeeded"] = status == 0
    summary_path = Path(config.training.output_dir) / "summary.json"
    report["summary"] = summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    if kill and "killed_at_unix" in report:
        # The trainer went on after the pool was back: its last step lies beyond the one at that moment.
        checks["trainer_kept_training_after_node_loss"] = summary.get("step", 0) > report["step_when_pool_restored"]
        # Figures: waits that ended after the kill (also one under way when it happened) against those
        # that ended before it (the load's own).
        waits = list(zip(summary.get("trainer_stalls_ended_at", []), summary.get("trainer_stalls_s", [])))
        report["waits_after_kill_s"] = after = [s for t, s in waits if t > report["killed_at_unix"]]
        report["waits_before_kill_s"] = before = [s for t, s in waits if t <= report["killed_at_unix"]]
        _log(
            f"the trainer's longest wait for a batch after the node loss {max(after, default=0.0):.1f} s, "
            f"before it in the same run {max(before, default=0.0):.1f} s; pool back after "
            f"{seconds.get('pool_restored_after_kill', float('nan')):.0f} s",
            started,
        )
    text = job_log.read_text()
    report["log_lines"] = {
        "constructor_args_in_object_store": text.count("has constructor arguments in the object store"),
        "cuInit": text.count("cuInit"),
    }
    checks["no_constructor_argument_warning"] = report["log_lines"]["constructor_args_in_object_store"] == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=1.5, help="training time of the job")
    parser.add_argument("--no-kill", dest="kill", action="store_false", help="skip killing a worker node")
    parser.add_argument(
        "--no-replacement",
        dest="replacement",
        action="store_false",
        help="autoscaler v1, which does not replace the killed node: the pool must shrink to the CPUs left",
    )
    parser.add_argument(
        "--autoscale",
        action="store_true",
        help="workers at min_workers 0 and a job that asks for 2 generators: the autoscaler must start the workers for it",
    )
    parser.add_argument("--run-dir", type=Path, default=ROOT / "runs" / "fake_cluster")
    parser.add_argument("--json", type=Path, default=None, help="write the report here")
    parser.add_argument(
        "--no-test-set",
        dest="test_set",
        action="store_false",
        help="train without the held-out test set (no test accuracy, a shorter job start)",
    )
    args = parser.parse_args()
    report = run(args.minutes, args.kill, args.run_dir.resolve(), args.test_set, args.replacement, args.autoscale)
    text = json.dumps(report, indent=2, default=str)
    print(text)
    if args.json:
        args.json.write_text(text + "\n")
    failed = [name for name, ok in report["checks"].items() if not ok]
    print("all checks passed" if not failed else f"FAILED: {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
