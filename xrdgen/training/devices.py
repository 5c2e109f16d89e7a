"""Which devices a training run uses, and how: replicas, precision, XLA, steps per compiled call.

Decided once, when the trainer starts, from the training section and what the backend sees; the
decision is printed and written to meta.json so a run says what it ran on.

Data parallelism (TensorFlow backend): with more than one replica the model lives in a
`tf.distribute.MirroredStrategy` and Keras' `fit` splits every global batch across the replicas
(`experimental_distribute_dataset`): each replica computes batch_size patterns, the gradients are
summed across replicas, and the loss is the mean over the global batch, so one step on R replicas is
one step on one device with the global batch (tests/test_distributed.py checks the weights).

    global batch = training.batch_size (per replica) x replicas

Precision: `mixed_bfloat16` keeps float32's exponent range (no loss scaling) and runs on the tensor
cores of GPUs of compute capability >= 8 (A100, H100); older GPUs get `mixed_float16`, which Keras
wraps in a `LossScaleOptimizer`. The logits layer is float32 in every policy (models/), so softmax,
loss and calibration see float32.

XLA: Keras' own "auto" switches XLA off on CPU-only machines and under a distribution strategy. On
this project's CPU benchmark (benchmarks/bench_training.py, docs/speed.md) the TensorFlow training
step of parkCNN was as fast or faster with XLA (42 % faster at batch 128, level at 870), so "auto"
turns it on for one device, CPU or GPU, and on JAX; under a multi-replica strategy it follows Keras.
One exception: a model with dropout (the baseline's) on TensorFlow's CPU, where XLA's random numbers
made a step 7 times slower (3.9 s against 0.55 s for 64 patterns of park_medium on the 0.02° grid).

Steps per execution: the host reads the metrics once per compiled call, so on a GPU several steps
run per call (the largest divisor of batches_per_epoch up to 32, so an epoch is whole calls); on a
CPU the step itself is the cost and 1 keeps the progress exact.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Optional

from xrdgen.config import TrainingConfig
from xrdgen.errors import UserError

MAX_STEPS_PER_EXECUTION = 32
GPU_EXTRA_HINT = "install the GPU build (pip install 'xrdgen[gpu]') on a machine with an NVIDIA driver"


@dataclass(frozen=True)
class DevicePlan:
    """The devices and compilation settings of one training run."""

    backend: str  # keras backend: tensorflow or jax
    kind: str  # "GPU" or "CPU"
    devices: tuple[str, ...]  # one per replica
    precision: str  # keras dtype policy
    jit_compile: bool
    steps_per_execution: int

    @property
    def replicas(self) -> int:
        return len(self.devices)

    def strategy(self):
        """MirroredStrategy over the replicas' devices, or None for one device (no strategy)."""
        if self.replicas == 1:
            return None
        import tensorflow as tf  # lazy: only a multi-replica TensorFlow run needs it

        return tf.distribute.MirroredStrategy(list(self.devices))

    def describe(self, batch_size: int) -> str:
        replicas = (
            f"{self.replicas} replicas ({', '.join(self.devices)})" if self.replicas > 1 else f"one device ({self.devices[0]})"
        )
        return (
            f"devices: {self.backend} on {replicas}; global batch {batch_size * self.replicas} "
            f"({batch_size} per replica); precision {self.precision}; XLA {'on' if self.jit_compile else 'off'}; "
            f"{self.steps_per_execution} step(s) per execution"
        )

    def to_meta(self) -> dict:
        return {
            "backend": self.backend,
            "kind": self.kind,
            "devices": list(self.devices),
            "precision": self.precision,
            "jit_compile": self.jit_compile,
            "steps_per_execution": self.steps_per_execution,
        }


@contextlib.contextmanager
def dtype_policy(name: str):
    """Build layers under the keras dtype policy `name`, then restore the previous global policy."""
    import keras  # lazy: TensorFlow's start-up

    previous = keras.config.dtype_policy()
    keras.config.set_dtype_policy(name)
    try:
        yield
    finally:
        keras.config.set_dtype_policy(previous)


def _tensorflow_devices(replicas: Optional[int], gpus_requested: float) -> tuple[str, tuple[str, ...], list]:
    """("GPU"|"CPU", device names, GPU details) that TensorFlow offers for `replicas`."""
    import tensorflow as tf  # lazy: TensorFlow's start-up

    gpus = tf.config.list_physical_devices("GPU")
    if gpus_requested > 0 and not gpus:
        raise UserError(
            f"cluster.trainer_gpus={gpus_requested:g} but TensorFlow sees no GPU; {GPU_EXTRA_HINT}, "
            f"or set cluster.trainer_gpus=0 to train on the CPU"
        )
    if gpus:
        wanted = replicas or len(gpus)
        if wanted > len(gpus):
            raise UserError(f"training.replicas={wanted} but TensorFlow sees {len(gpus)} GPU(s)")
        details = [tf.config.experimental.get_device_details(g) for g in gpus[:wanted]]
        return "GPU", tuple(f"/gpu:{i}" for i in range(wanted)), details
    wanted = replicas or 1
    cpus = tf.config.list_logical_devices("CPU")
    if len(cpus) < wanted:
        try:  # logical CPU devices: data parallelism on one CPU (tests, CPU clusters)
            physical = tf.config.list_physical_devices("CPU")[0]
            tf.config.set_logical_device_configuration(physical, [tf.config.LogicalDeviceConfiguration()] * wanted)
            cpus = tf.config.list_logical_devices("CPU")
        except RuntimeError:
            raise UserError(
                f"training.replicas={wanted} on a machine without GPUs needs {wanted} logical CPU devices, which must be "
                f"configured before TensorFlow starts; this process has {len(cpus)}"
            ) from None
    return "CPU", tuple(f"/cpu:{i}" for i in range(wanted)), []


def _auto_precision(kind: str, gpu_details: list) -> str:
    if kind != "GPU":
        return "float32"
    capabilities = [d.get("compute_capability") or (0, 0) for d in gpu_details]
    return "mixed_bfloat16" if min(capabilities) >= (8, 0) else "mixed_float16"


def _steps_per_execution(setting, kind: str, batches_per_epoch: int) -> int:
    if setting != "auto":
        return int(setting)
    if kind != "GPU":
        return 1
    return max(d for d in range(1, MAX_STEPS_PER_EXECUTION + 1) if batches_per_epoch % d == 0)


def plan_devices(training: TrainingConfig, gpus_requested: float = 0.0) -> DevicePlan:
    """The plan for a resolved training section; `gpus_requested` is cluster.trainer_gpus.

    Asking for GPUs that the backend does not see is a one-line error, never a silent CPU run.
    """
    import keras  # lazy: TensorFlow's start-up

    backend = keras.backend.backend()
    if backend == "tensorflow":
        kind, devices, details = _tensorflow_devices(training.replicas, gpus_requested)
    elif backend == "jax":
        import jax  # lazy: only on the JAX backend

        gpus = [d for d in jax.devices() if d.platform == "gpu"]
        if gpus_requested > 0 and not gpus:
            raise UserError(f"cluster.trainer_gpus={gpus_requested:g} but JAX sees no GPU; {GPU_EXTRA_HINT}")
        if (training.replicas or 1) > 1:
            raise UserError(f"training.replicas={training.replicas}: data parallelism runs on the TensorFlow backend")
        kind, devices = ("GPU", ("gpu:0",)) if gpus else ("CPU", ("cpu:0",))
        details = [{"compute_capability": tuple(int(v) for v in str(gpus[0].compute_capability).split("."))}] if gpus else []
    else:
        raise UserError(f"keras backend {backend!r}: xrdgen trains on tensorflow or jax")
    precision = training.precision if training.precision != "auto" else _auto_precision(kind, details)
    if training.jit_compile == "auto":
        dropout_on_tf_cpu = backend == "tensorflow" and kind == "CPU" and (training.dropout or training.baseline)
        jit = backend == "jax" or (len(devices) == 1 and not dropout_on_tf_cpu)
    else:
        jit = bool(training.jit_compile)
    spe = _steps_per_execution(training.steps_per_execution, kind, training.batches_per_epoch)
    return DevicePlan(backend, kind, devices, precision, jit, spe)


def whole_executions(steps: int, steps_per_execution: int) -> int:
    """Steps per execution that divide `steps` (a remainder of an epoch runs in whole calls)."""
    return math.gcd(steps, steps_per_execution)
