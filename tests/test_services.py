"""Reliability of the Ray services on a real local Ray cluster (the `ray_local` fixture, 2 CPUs).

Real statistics (built from mp40 structures), real generator, simulator, augmentation and a real
Keras model; only the sizes are small (short 2θ grid, small batches) so the whole module stays
within its time budget. What is checked:
  * the stream is reproducible from its seed and gives valid batches;
  * backpressure: with nobody consuming, producers stop once the queue is full, so the number of
    batches in existence (and hence memory) is bounded;
  * killing a generator mid-training: the pool restores its size, training continues, and the
    trainer never waits long for a batch;
  * killing the trainer: the resubmitted job resumes from the last checkpoint, same step, same
    learning-rate schedule; killed during a job, the job starts it again and it resumes there.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest

from xrdgen.config import load_config

MP40_SUBSET = 400  # structures read from mp40 for the statistics (enough for a handful of classes)


@pytest.fixture(scope="module")
def statistics_file(mp40_dir, tmp_path_factory):
    """Statistics of real structures, built once for the module (the statistics builder)."""
    from xrdgen.collection.reading import read_collection
    from xrdgen.statistics.build import build_statistics

    csv = sorted(mp40_dir.glob("*.csv"))[0]
    config = small_config(tmp_path_factory.mktemp("stats"))
    entries = read_collection(csv, config, progress=False).entries[:MP40_SUBSET]
    statistics = build_statistics(entries, config)
    assert len(statistics.spacegroups) >= 3
    return statistics.save(tmp_path_factory.mktemp("stats") / "statistics.json")


def small_config(run_dir: Path, **overrides):
    """A short grid and small sizes; everything else is the real default configuration."""
    values = {
        "grid.two_theta_min": 10.0,
        "grid.two_theta_max": 50.0,
        "grid.step": 0.05,  # 801 points
        "statistics.min_count_per_spacegroup": 8,
        "statistics.max_atoms_asymmetric_unit": 12,
        "statistics.max_volume": 1500.0,
        "training.model": "park_medium",
        "training.batch_size": 8,
        "training.batches_per_epoch": 4,
        "training.learning_rate": 1e-3,
        "training.output_dir": str(run_dir / "run"),
        "cluster.n_generators": 2,
        "cluster.cpus_per_generator": 0.5,
        "cluster.trainer_cpus": 0.5,
        "cluster.generator_batch_size": 4,
        "cluster.queue_max_items": 3,
        "cluster.prefetch_batches": 2,
    }
    values.update(overrides)
    return load_config(None, values)


@pytest.fixture(scope="module")
def statistics(statistics_file):
    from xrdgen.statistics.model import Statistics

    return Statistics.load(statistics_file)


def _wait_for(condition, timeout: float, every: float = 0.25):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"condition not met within {timeout} s")


# ------------------------------------------------------------------------------------ the stream
def test_stream_is_reproducible_and_valid(statistics, tmp_path):
    from xrdgen.training.stream import PatternStream

    config = small_config(tmp_path)
    a = PatternStream(statistics, config, seed=3).next_batch(6)
    b = PatternStream(statistics, config, seed=3).next_batch(6)
    c = PatternStream(statistics, config, seed=4).next_batch(6)
    x, y = a
    assert x.shape == (6, config.grid.n_points) and x.dtype == np.float32
    assert y.dtype == np.int32 and ((0 <= y) & (y < len(statistics.spacegroups))).all()
    assert np.isfinite(x).all() and np.allclose(x.max(axis=1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


# ------------------------------------------------------------------------- where things run
def test_auto_counts_the_workers_and_a_number_is_asked_of_the_autoscaler(tmp_path):
    """head+two: a head that offers only the trainer's 4 CPUs and two 16-CPU workers -> 32 generators;
    a number of generators (and the trainer) is what the pool asks the autoscaler for, "auto" asks nothing."""
    from services.options import generator_count, wanted_bundles

    layout = {"cluster.cpus_per_generator": 1.0, "cluster.trainer_cpus": 4.0, "cluster.trainer_gpus": 1.0}
    auto = small_config(tmp_path, **layout, **{"cluster.n_generators": "auto"})
    assert generator_count(auto.cluster, cluster_cpus=4 + 2 * 16) == 32
    assert wanted_bundles(auto.cluster) == []
    fixed = small_config(tmp_path, **layout, **{"cluster.n_generators": 3})
    assert wanted_bundles(fixed.cluster) == [{"CPU": 4.0, "GPU": 1.0}] + [{"CPU": 1.0}] * 3


# ------------------------------------------------------------------------------ generator pool
@pytest.fixture(scope="module")
def pool(ray_local, statistics_file, tmp_path_factory):
    from services.generator_pool import GeneratorPool
    from services.statistics_server import StatisticsServer

    config = small_config(tmp_path_factory.mktemp("pool"))
    server = StatisticsServer(statistics_file, config.cluster)
    pool = GeneratorPool(server, config)
    yield pool
    pool.shutdown()
    server.shutdown()


def test_queue_memory_is_bounded_when_nobody_consumes(pool):
    """Producers block on the full queue: batches in existence <= queue + one in hand per producer."""
    cluster = pool.config.cluster
    _wait_for(lambda: pool.queue.qsize() == cluster.queue_max_items, timeout=90)

    def all_blocked_since(waits: dict, more: int):
        """Counters once every producer has waited `more` more put timeouts on the full queue."""
        counters = pool.counters()
        names = {c["name"] for c in counters}
        done = len(names) == cluster.n_generators and all(
            c["full_queue_waits"] >= waits.get(c["name"], 0) + more for c in counters
        )
        return counters if done else None

    first = _wait_for(lambda: all_blocked_since({}, 2), timeout=90)  # every producer is blocked, not just slow
    waits = {c["name"]: c["full_queue_waits"] for c in first}
    second = _wait_for(lambda: all_blocked_since(waits, 2), timeout=90)  # ... and stays blocked
    bound = (cluster.queue_max_items + 2 * cluster.n_generators) * cluster.generator_batch_size
    produced = [sum(c["patterns"] for c in counters) for counters in (first, second)]
    assert pool.queue.qsize() == cluster.queue_max_items
    assert produced[1] == produced[0], "producers kept producing into a full queue"
    assert produced[1] <= bound


def test_killing_a_generator_keeps_training_going(ray_local, pool, statistics):
    """Kill one generator mid-training: the pool restores its size and the trainer keeps receiving
    batches (how long it waited is a figure of benchmarks/bench_cluster.py, not a bound here)."""
    import ray

    from services.trainer_actor import TrainerActor

    run_dir = Path(pool.config.training.output_dir).parent / "kill_generator"
    trainer = TrainerActor(pool.config, statistics.spacegroups, pool.queue, run_dir=run_dir)
    done = trainer.fit(epochs=1000, max_minutes=5)
    try:
        # the first status waits for the actor's construction (TensorFlow's import: slow on a loaded machine)
        _wait_for(lambda: trainer.status(timeout=240)["step"] >= 3, timeout=300, every=0.5)
        victim = pool.actors[0]
        ray.kill(victim, no_restart=True)
        _wait_for(lambda: pool.replacements >= 1 and pool.size == pool.config.cluster.n_generators, timeout=120)
        assert victim not in pool.actors
        after_restore = trainer.status()
        _wait_for(lambda: trainer.status()["batches_received"] >= after_restore["batches_received"] + 6, timeout=120, every=0.5)
        assert trainer.status()["step"] > after_restore["step"]
    finally:
        trainer.kill()
    with pytest.raises(ray.exceptions.RayActorError):
        ray.get(done, timeout=180)  # a bound for a hang only: a loaded machine reports the kill late


def trainer_process(pid_of_test: int):
    """The live trainer actor's process among this test process's descendants (its own Ray cluster)."""
    import psutil

    for process in psutil.Process(pid_of_test).children(recursive=True):
        try:
            if process.cmdline()[:1] and process.cmdline()[0].startswith("ray::_TrainerActor"):
                return process
        except psutil.NoSuchProcess:
            continue
    return None


def test_trainer_killed_mid_job_is_started_again_and_resumes(ray_local, pool, statistics_file):
    """SIGKILL the trainer's process during a job: the job starts a new trainer, which resumes from the
    last checkpoint at the same step and learning rate, and the job ends with every step trained once
    and a calibrated model (as `xrdgen train` ends)."""
    import os
    import signal
    import threading

    from services.train import run
    from xrdgen.training.rundir import RunDirectory

    run_dir = Path(pool.config.training.output_dir).parent / "kill_trainer_mid_job"
    config = pool.config.model_copy(deep=True)
    config.training.output_dir = run_dir
    config.training.epochs = 8  # killed after the first checkpoint: epochs are left to resume
    config.training.lr_halving_epochs = 1  # so that "the same schedule" is visible in the numbers
    config.cluster.n_generators = 1  # the module's pool still holds its CPUs
    per_epoch = config.training.batches_per_epoch
    outcome: dict = {}
    job = threading.Thread(target=lambda: outcome.update(summary=run(config, statistics_file)), daemon=True)
    job.start()

    checkpoints = RunDirectory(run_dir)
    _wait_for(lambda: checkpoints.latest_checkpoint() is not None, timeout=300, every=0.2)
    victim = _wait_for(lambda: trainer_process(os.getpid()), timeout=30, every=0.2)
    os.kill(victim.pid, signal.SIGKILL)
    victim.wait(timeout=30)
    saved = checkpoints.latest_checkpoint()  # what the new trainer must resume from
    saved_step = json.loads(saved.with_suffix(".json").read_text())["step"]

    job.join(timeout=600)
    assert not job.is_alive(), "the job did not end after the trainer was killed"
    summary = outcome["summary"]
    assert summary["trainer_restarts"] == 1
    assert summary["start_step"] == 0 and summary["resumed_at_step"] == saved_step
    assert summary["step"] == config.training.epochs * per_epoch
    history = json.loads((run_dir / "history.json").read_text())
    assert [h["step"] for h in history] == [per_epoch * (i + 1) for i in range(config.training.epochs)]  # each epoch once
    assert history[-1]["learning_rate"] == pytest.approx(1e-3 * 0.5 ** (config.training.epochs - 1))  # halved once per epoch
    assert (run_dir / "model.keras").exists() and (run_dir / "summary.json").exists()
    meta = json.loads((run_dir / "meta.json").read_text())
    assert meta["calibration"]["temperature"] == pytest.approx(summary["temperature"]) and summary["temperature"] > 0


def test_job_entrypoint_reports_bad_input_in_one_line(ray_local, tmp_path, capsys):
    """A missing or broken statistics file is one line naming the file, exit status 2, no traceback."""
    from services.train import main

    assert main(["--statistics", str(tmp_path / "missing.json")]) == 2
    assert "missing.json: no such statistics file" in capsys.readouterr().err
    broken = tmp_path / "broken.json"
    broken.write_text('{"format": "something else"}')
    assert main(["--statistics", str(broken), "--set", f"training.output_dir={tmp_path / 'run'}"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: ") and "broken.json" in err[0], err


def test_job_prints_only_changed_values_and_writes_the_full_config(ray_local, tmp_path, capsys):
    """The job's log names the values that differ from the defaults and the file with all of them."""
    from services.train import main
    from xrdgen.config import load_config

    broken = tmp_path / "broken.json"  # the job stops at the statistics, after printing its config
    broken.write_text('{"format": "something else"}')
    run_dir = tmp_path / "run"
    assert main(["--statistics", str(broken), "--set", f"training.output_dir={run_dir}", "--set", "training.epochs=7"]) == 2
    out = capsys.readouterr().out.splitlines()
    assert out[:3] == [
        f"config: differences from the defaults; full config: {run_dir / 'config.yaml'}",
        "  training.epochs = 7",
        f"  training.output_dir = {run_dir}",
    ]
    assert load_config(run_dir / "config.yaml") == load_config(None, {"training.epochs": 7, "training.output_dir": str(run_dir)})


def test_trainer_actor_asked_for_gpus_that_tensorflow_does_not_see_fails_in_one_line(ray_local, statistics, tmp_path):
    """A GPU node whose TensorFlow has no CUDA build: the actor's fit raises the Trainer's one-line error
    (a task error, which the job prints as one line), never a silent CPU run."""
    import ray
    import tensorflow as tf

    from services.trainer_actor import _TrainerActor
    from xrdgen.errors import UserError

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("this machine has a GPU")
    config = small_config(tmp_path, **{"cluster.trainer_gpus": 1})
    queue = ray.util.queue.Queue(maxsize=1)
    actor = ray.remote(_TrainerActor).options(num_cpus=0.5).remote(config, statistics.spacegroups, str(tmp_path / "run"), queue)
    with pytest.raises(ray.exceptions.RayTaskError) as error:
        ray.get(actor.fit.remote(), timeout=120)
    assert isinstance(error.value.cause, UserError)
    message = str(error.value.cause)
    assert "\n" not in message and "cluster.trainer_gpus=1" in message and "sees no GPU" in message
    ray.kill(actor)
