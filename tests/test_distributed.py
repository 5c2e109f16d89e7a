"""The trainer's hardware: data parallelism that splits the batch, resume under a strategy, mixed
precision, and the one-line error when GPUs are asked for and none is there.

Data parallelism runs on 2 logical CPU devices (tf.config.set_logical_device_configuration), which
must be set before TensorFlow starts: those checks run in a fresh Python process.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from xrdgen.config import load_config
from xrdgen.errors import UserError

SMALL = {"grid.step": 0.05, "training.batches_per_epoch": 2, "training.epochs": 1}
CLASSES = [1, 2, 14, 62, 225]

TWO_REPLICAS = textwrap.dedent(
    """
    import itertools, json, os, sys
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import tensorflow as tf
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras
    import numpy as np
    from xrdgen.config import load_config
    from xrdgen.training.trainer import Trainer

    run, small, classes = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
    def config(replicas, batch):
        return load_config(None, {**small, "training.batch_size": batch, "training.replicas": replicas})
    rng = np.random.default_rng(0)
    n = config(1, 16).grid.n_points
    x = rng.random((16, n)).astype("float32")
    y = rng.integers(0, len(classes), 16).astype("int32")
    numpy = lambda variables: [keras.ops.convert_to_numpy(v) for v in variables]
    quiet = lambda line: None
    out = {}
    keras.utils.set_random_seed(1)
    one = Trainer(config(1, 16), classes, run_dir=run + "/one", resume=False, log=quiet)
    keras.utils.set_random_seed(1)
    two = Trainer(config(2, 8), classes, run_dir=run + "/two", resume=False, log=quiet)
    start = numpy(one.model.weights)
    out["same_start"] = max(float(np.abs(a - b).max()) for a, b in zip(start, numpy(two.model.weights)))
    out["replicas"], out["global_batch"] = two.devices.replicas, two.global_batch_size
    # What Keras' fit does with the trainer's input pipeline under the strategy: split each global batch.
    distributed = two.strategy.experimental_distribute_dataset(two.input_pipeline(iter([(x, y)])))
    out["rows_per_replica"] = [int(v.shape[0]) for v in two.strategy.experimental_local_results(next(iter(distributed))[0])]
    one.fit(itertools.repeat((x, y)), epochs=1, batches_per_epoch=1)
    two.fit(itertools.repeat((x, y)), epochs=1, batches_per_epoch=1)
    out["steps"] = [one.step, two.step]
    out["moved"] = max(float(np.abs(a - b).max()) for a, b in zip(start, numpy(one.model.weights)))
    out["weight_diff"] = max(float(np.abs(a - b).max()) for a, b in zip(numpy(one.model.weights), numpy(two.model.weights)))
    saved = numpy(two.model.optimizer.variables)
    again = Trainer(config(2, 8), classes, run_dir=run + "/two", log=quiet)
    out["resumed_step"] = again.step
    out["resumed_replicas"] = again.devices.replicas
    out["optimizer_diff"] = max(float(np.abs(a - b).max()) for a, b in zip(numpy(again.model.optimizer.variables), saved))
    again.fit(itertools.repeat((x, y)), epochs=3, batches_per_epoch=1)
    out["steps_after_resume"] = again.step
    print("RESULT " + json.dumps(out))
    """
)


@pytest.fixture(scope="module")
def two_replicas(tmp_path_factory):
    run = tmp_path_factory.mktemp("replicas")
    done = subprocess.run(
        [sys.executable, "-c", TWO_REPLICAS, str(run), json.dumps(SMALL), json.dumps(CLASSES)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    assert done.returncode == 0 and lines, done.stderr[-3000:]
    return json.loads(lines[-1][len("RESULT ") :])


def test_each_replica_computes_half_of_the_global_batch(two_replicas):
    assert two_replicas["replicas"] == 2 and two_replicas["global_batch"] == 16
    assert two_replicas["rows_per_replica"] == [8, 8]


def test_one_step_on_two_replicas_equals_one_step_on_one_device(two_replicas):
    assert two_replicas["same_start"] == 0.0 and two_replicas["steps"] == [1, 1]
    assert two_replicas["moved"] > 1e-4  # the step changed the weights (Adam moves each by about lr)
    assert two_replicas["weight_diff"] < 1e-6 * max(1.0, two_replicas["moved"] * 1e3)


def test_resume_under_the_strategy_keeps_step_and_optimizer_state(two_replicas):
    assert two_replicas["resumed_step"] == 1 and two_replicas["resumed_replicas"] == 2
    assert two_replicas["optimizer_diff"] == 0.0
    assert two_replicas["steps_after_resume"] == 3


def test_asking_for_gpus_without_one_is_a_one_line_error(tmp_path):
    import tensorflow as tf

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("this machine has a GPU")
    from xrdgen.training.trainer import Trainer

    config = load_config(None, {**SMALL, "training.batch_size": 4, "cluster.trainer_gpus": 1})
    with pytest.raises(UserError) as error:
        Trainer(config, CLASSES, run_dir=tmp_path / "gpu")
    message = str(error.value)
    assert "\n" not in message and "cluster.trainer_gpus=1" in message and "sees no GPU" in message
    assert not (tmp_path / "gpu" / "meta.json").exists()  # refused before anything was written


def test_mixed_precision_trains_with_float32_logits(tmp_path):
    from xrdgen.training.trainer import Trainer

    config = load_config(None, {**SMALL, "training.batch_size": 8, "training.precision": "mixed_bfloat16"})
    trainer = Trainer(config, CLASSES, run_dir=tmp_path / "bf16", log=lambda line: None)
    assert trainer.model.get_layer("conv1").compute_dtype == "bfloat16"
    assert trainer.model.get_layer("logits").compute_dtype == "float32"
    rng = np.random.default_rng(0)
    x = rng.random((8, config.grid.n_points)).astype("float32")
    y = rng.integers(0, len(CLASSES), 8)
    history = trainer.fit(iter([(x, y)] * 2), epochs=1, batches_per_epoch=2)
    assert trainer.step == 2 and np.isfinite(history[0]["train_loss"])
    assert trainer.model.predict(x, verbose=0).dtype == np.float32


def test_xla_auto_is_on_for_one_cpu_and_off_for_dropout_there():
    """XLA's random numbers made a dropout step 7 times slower on TensorFlow's CPU (devices.py)."""
    import tensorflow as tf

    from xrdgen.training.devices import plan_devices

    if tf.config.list_physical_devices("GPU"):
        pytest.skip("this machine has a GPU")
    training = load_config(None, SMALL).training
    assert plan_devices(training).jit_compile
    for dropout in ({"baseline": True}, {"dropout": True}):
        assert not plan_devices(training.model_copy(update=dropout)).jit_compile
        assert plan_devices(training.model_copy(update={**dropout, "jit_compile": True})).jit_compile  # asked for: kept


def test_the_initial_weights_follow_the_seed(tmp_path):
    from xrdgen.training.trainer import Trainer

    def first_weights(seed: int, name: str):
        config = load_config(None, {**SMALL, "seed": seed})
        return Trainer(config, CLASSES, run_dir=tmp_path / name, log=lambda line: None).model.get_weights()[0]

    assert np.array_equal(first_weights(1, "a"), first_weights(1, "b"))
    assert not np.array_equal(first_weights(1, "c"), first_weights(2, "d"))
