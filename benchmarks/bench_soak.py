"""Soak: memory of every process of a training job under backpressure, sampled every minute.

    .venv/bin/python benchmarks/bench_soak.py [--minutes 30] [--every 60] [--run-dir runs/soak]

The real job path on a private local head (services/local_cluster.py): `ray job submit -- python -m
services.train` with the default statistics, the full 8501-point grid and a ResNet-10 trainer, so
that the generators are faster than the trainer and the bounded queue stays full (backpressure: the
producers block in `put`). This process joins the head as a client and, every `--every` seconds,
records
  * the RSS of every live actor (trainer, generators, queue, statistics server) and of the job's
    driver, from psutil on the pids that Ray's state API reports;
  * the object store's use (Prometheus `ray_object_store_memory` of the node, all locations) and the
    queue depth and trainer step (ray_xrdgen_* series).
Written to the run directory: soak.json (every sample) and soak.png (RSS per process and object
store over time). Printed: per process the RSS at the first sample after warm-up and at the end,
and the drift (end / first - 1); target: every drift within 10 %.

Warm-up: the first WARMUP_MINUTES are excluded (TensorFlow's graph tracing, Numba compilation and
the first checkpoint allocate once). A generator replaced during the run starts a new series.
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

os.environ["RAY_AUTH_MODE"] = "token"  # read when Ray is imported: this process joins the head as a client

import psutil  # noqa: E402
import ray  # noqa: E402
from ray.util.state import list_actors  # noqa: E402

from services.local_cluster import local_head  # noqa: E402
from services.metrics import prometheus_name  # noqa: E402
from xrdgen.config import load_config  # noqa: E402
from xrdgen.pipeline import resolve_statistics  # noqa: E402
from xrdgen.plotting import pyplot, save_figure  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
WARMUP_MINUTES = 3.0
TARGET_DRIFT = 0.10
JOB = {  # producers faster than the trainer: ResNet-10 on the full grid is ~37 patterns/s on a core
    "training.model": "resnet10",
    "training.batch_size": 16,
    "training.batches_per_epoch": 50,
    "training.epochs": 100_000,
    "cluster.n_generators": 2,
    "cluster.cpus_per_generator": 0.5,
    "cluster.trainer_cpus": 1,
    "cluster.generator_batch_size": 16,
    "cluster.queue_max_items": 16,
    "cluster.prefetch_batches": 4,
}
ROLES = {
    "_TrainerActor": "trainer",
    "_GeneratorActor": "generator",
    "_QueueActor": "queue",
    "_StatisticsServerActor": "statistics server",
}


def prometheus(url: str) -> dict:
    """{series name: summed value} of a node's Prometheus text."""
    values: dict = {}
    with urllib.request.urlopen(url, timeout=10) as response:
        for line in response.read().decode().splitlines():
            if line and not line.startswith("#"):
                name, value = line.split("{")[0].split(" ")[0], float(line.rsplit(" ", 1)[1])
                values[name] = values.get(name, 0.0) + value
    return values


def sample(head, driver_pid: int | None, started: float) -> dict:
    """One sample: RSS per process (MB), object store bytes, queue depth, trainer step."""
    processes = {}
    for actor in list_actors(
        address=head.dashboard_url, filters=[("state", "=", "ALIVE")], detail=True, limit=1000, raise_on_missing_output=False
    ):
        role = ROLES.get(actor.class_name)
        if role is not None and actor.pid:
            processes[f"{role} {actor.actor_id[:6]}"] = actor.pid
    if driver_pid:
        processes["job driver"] = driver_pid
    rss = {}
    for name, pid in processes.items():
        try:
            rss[name] = psutil.Process(pid).memory_info().rss / 2**20
        except psutil.NoSuchProcess:
            pass
    metrics = prometheus(head.metrics_url)
    return {
        "minute": (time.monotonic() - started) / 60,
        "rss_mb": rss,
        "object_store_mb": metrics.get("ray_object_store_memory", 0.0) / 2**20,
        "queue_depth": metrics.get(prometheus_name("queue_depth")),
        "trainer_step": metrics.get(prometheus_name("trainer_step")),
    }


def drifts(samples: list[dict]) -> dict:
    """Per process: RSS at the first sample after warm-up, at the last sample, and last / first - 1."""
    warm = [s for s in samples if s["minute"] >= WARMUP_MINUTES] or samples[-1:]
    out = {}
    for name in {n for s in warm for n in s["rss_mb"]}:
        series = [s["rss_mb"][name] for s in warm if name in s["rss_mb"]]
        if len(series) >= 2:
            out[name] = {"first_mb": series[0], "last_mb": series[-1], "drift": series[-1] / series[0] - 1}
    store = [s["object_store_mb"] for s in warm]
    out["object store"] = {"first_mb": store[0], "last_mb": store[-1], "max_mb": max(store)}
    return out


def plot(samples: list[dict], path: Path) -> Path:
    plt = pyplot()
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 7), sharex=True)
    for name in sorted({n for s in samples for n in s["rss_mb"]}):
        points = [(s["minute"], s["rss_mb"][name]) for s in samples if name in s["rss_mb"]]
        top.plot(*zip(*points), marker=".", label=name)
    top.axvline(WARMUP_MINUTES, color="grey", linestyle=":", label="end of warm-up")
    top.set_ylabel("RSS (MB)")
    top.set_title("Soak under backpressure: memory per process")
    top.legend(fontsize=7, ncol=2)
    bottom.plot([s["minute"] for s in samples], [s["object_store_mb"] for s in samples], marker=".", label="object store")
    depth = [(s["minute"], s["queue_depth"]) for s in samples if s["queue_depth"] is not None]
    if depth:
        twin = bottom.twinx()
        twin.plot(*zip(*depth), color="tab:red", linestyle="--", label="queue depth (items)")
        twin.set_ylabel("queue depth (items)")
        twin.legend(loc="lower right", fontsize=7)
    bottom.set_ylabel("object store (MB)")
    bottom.set_ylim(bottom=0)
    bottom.set_xlabel("minutes since the job was submitted")
    bottom.legend(loc="lower left", fontsize=7)
    return save_figure(fig, path)


def driver_pid(head, deadline_s: float = 120.0) -> int | None:
    """The pid of the job's driver (`python -m services.train`, not the shell that starts it)."""
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        for process in psutil.Process(head.pid).children(recursive=True):
            try:
                if process.name().startswith("python") and "services.train" in process.cmdline():
                    return process.pid
            except psutil.Error:
                continue
        time.sleep(1.0)
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=30.0, help="training time of the job")
    parser.add_argument("--every", type=float, default=60.0, help="seconds between samples")
    parser.add_argument("--run-dir", type=Path, default=ROOT / "runs" / "soak")
    args = parser.parse_args()
    run_dir = args.run_dir.resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    config = load_config(None, JOB | {"training.max_minutes": args.minutes, "training.output_dir": str(run_dir / "run")})
    shutil.rmtree(config.training.output_dir, ignore_errors=True)  # a fresh training, not a resumed one
    statistics, _ = resolve_statistics("default")
    job_config = run_dir / "job_config.yaml"
    job_config.write_text(config.to_yaml())

    samples: list[dict] = []
    with local_head(num_cpus=2) as head:
        ray.init(address=head.gcs_address, logging_level="WARNING", log_to_driver=False)
        try:
            started = time.monotonic()
            job = head.submit_in_background(
                ["python", "-m", "services.train", "--config", str(job_config), "--statistics", str(statistics)],
                run_dir / "job.log",
            )
            driver = driver_pid(head)
            while job.poll() is None:
                time.sleep(args.every - (time.monotonic() - started) % args.every)
                if job.poll() is None:
                    samples.append(sample(head, driver, started))
                    last = samples[-1]
                    print(
                        f"minute {last['minute']:5.1f}: RSS "
                        + ", ".join(f"{k} {v:.0f}" for k, v in sorted(last["rss_mb"].items()))
                        + f" MB; object store {last['object_store_mb']:.1f} MB; queue {last['queue_depth']}; "
                        f"step {last['trainer_step']}",
                        flush=True,
                    )
            status = job.wait()
        finally:
            ray.shutdown()  # before the head goes: a connected client would hang on its exit
    result = {"job_status": status, "minutes": args.minutes, "samples": samples, "drift": drifts(samples)}
    (run_dir / "soak.json").write_text(json.dumps(result, indent=2) + "\n")
    png = plot(samples, run_dir / "soak.png") if samples else None
    print(f"\njob exit status {status}; {len(samples)} samples; plot {png}")
    print(f"{'process':28s} {'first MB':>9s} {'last MB':>9s} {'drift':>7s}   (after {WARMUP_MINUTES:.0f} min of warm-up)")
    worst = 0.0
    for name, d in sorted(result["drift"].items()):
        if "drift" in d:
            worst = max(worst, abs(d["drift"]))
            print(f"{name:28s} {d['first_mb']:9.1f} {d['last_mb']:9.1f} {100 * d['drift']:+6.1f} %")
        else:
            print(f"{name:28s} {d['first_mb']:9.1f} {d['last_mb']:9.1f}   (max {d['max_mb']:.1f} MB)")
    depths = [s["queue_depth"] for s in samples if s["queue_depth"] is not None]
    full = sum(d >= config.cluster.queue_max_items - 1 for d in depths)
    measured = any("drift" in d for d in result["drift"].values())
    print(
        (
            f"worst drift {100 * worst:.1f} % (target within {100 * TARGET_DRIFT:.0f} %)"
            if measured
            else "no drift: fewer than 2 samples after the warm-up (run longer)"
        )
        + f"; queue full or one short in {full} of {len(depths)} samples (backpressure)"
    )
    return 0 if status == 0 and worst <= TARGET_DRIFT else 1


if __name__ == "__main__":
    sys.exit(main())
