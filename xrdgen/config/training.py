"""The training sections: the model and optimiser, and the Ray services that feed it.

New training or cluster settings (precision, compilation, steps per execution) go here, one field
each, in the section whose job they describe.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal, Optional, Union

from pydantic import Field, field_validator, model_validator

from xrdgen.config.base import _Section
from xrdgen.config.presets import TRAINING_PRESETS

ModelName = Literal["park_medium", "park_big", "resnet10", "resnet50", "resnet101"]


def _positive_int_or_auto(cls, value):
    if value == "auto" or (isinstance(value, int) and not isinstance(value, bool) and value > 0):
        return value
    raise ValueError(f"expected a positive integer or auto, got {value!r}")


class TrainingConfig(_Section):
    """Model and optimiser. None means: the preset of the chosen architecture."""

    model: ModelName = "park_medium"
    batch_size: Optional[int] = Field(None, gt=0)
    learning_rate: Optional[float] = Field(None, gt=0.0)
    batches_per_epoch: Optional[int] = Field(None, gt=0)
    lr_halving_epochs: Optional[int] = Field(None, gt=0)
    epochs: Optional[int] = Field(None, gt=0)
    max_minutes: Optional[float] = Field(None, gt=0.0, description="stop after this wall time")
    dropout: bool = False
    data: Literal["synthetic", "structures", "mix"] = Field(
        "synthetic",
        description="what `xrdgen train` streams: the method's synthetic crystals; patterns of real structures "
        "(training.structures) with the preset's effects drawn afresh for every pattern; or a mix of both "
        "(xrdgen/training/structure_stream.py). The Ray job streams synthetic crystals only",
    )
    synthetic_fraction: float = Field(
        0.5, ge=0.0, le=1.0, description="mix: the probability that a pattern comes from the synthetic stream"
    )
    structures: Optional[Path] = Field(
        None,
        description="structures and mix (and the baseline): the real structures to train on, an entries file or a "
        "collection (CIF folder, CSV with a `cif` column); default: the statistics part beside the statistics file. "
        "Held-out test structures are left out by source id, so an entries cache of the statistics' own collection "
        "(e.g. runs/mp26k.entries.json.gz for the shipped default) gives its statistics part",
    )
    baseline: bool = False
    baseline_patterns_per_structure: int = Field(
        2,
        gt=0,
        description="baseline: patterns per structure, each with its own crystallite size from simulation.crystallite_size_nm",
    )
    test_patterns_per_structure: int = Field(1, gt=0)
    output_dir: Path = Path("runs/latest")
    init_from: Optional[Path] = Field(
        None,
        description="a run directory whose model starts a new run (same model, class list and grid): e.g. a pure-preset "
        "model fine-tuned in the measured preset, which from scratch stays at the prior for thousands of steps; "
        "ignored when the run resumes from its own checkpoint",
    )

    crystal_system_weight: float = Field(
        0.0,
        ge=0.0,
        description="weight w of a crystal-system head trained jointly with the space-group head (loss = CE(space group) "
        "+ w * CE(crystal system)); 0: none. Only the space-group head is saved as the run's model",
    )
    # The hardware (xrdgen/training/devices.py decides "auto" once, when the trainer starts).
    replicas: Optional[int] = Field(
        None,
        gt=0,
        description="data-parallel replicas: None = every GPU TensorFlow sees (one CPU device without GPUs); N = the first "
        "N GPUs, or N logical CPU devices on a machine without GPUs; batch_size is per replica, the global batch is "
        "batch_size x replicas",
    )
    precision: Literal["auto", "float32", "mixed_bfloat16", "mixed_float16"] = Field(
        "auto",
        description="auto: mixed_bfloat16 on GPUs of compute capability >= 8 (A100, H100), mixed_float16 (with loss "
        "scaling) on older GPUs, float32 on CPUs; the logits are float32 in every case",
    )
    jit_compile: Union[bool, Literal["auto"]] = Field(
        "auto",
        description="XLA for the training step; auto: on for one device (CPU or GPU: as fast or faster, "
        "benchmarks/bench_training.py) and on the JAX backend, off under a multi-replica strategy (Keras' rule) "
        "and for a model with dropout on TensorFlow's CPU (7 times slower with XLA)",
    )
    steps_per_execution: Union[int, Literal["auto"]] = Field(
        "auto",
        description="training steps per compiled call; metrics reach the host once per call; auto: 1 on CPUs, the largest "
        "divisor of batches_per_epoch up to 32 on GPUs",
    )

    _steps_per_execution = field_validator("steps_per_execution", mode="before")(_positive_int_or_auto)

    @model_validator(mode="after")
    def _one_kind_of_data(self):
        if self.baseline and self.data != "synthetic":
            raise ValueError(f"baseline trains on a fixed set of the real structures; data={self.data} streams them: choose one")
        return self

    def resolved(self) -> TrainingConfig:
        """A copy with every None filled from the architecture's preset."""
        preset = TRAINING_PRESETS["park" if self.model.startswith("park") else "resnet"]
        values = self.model_dump()
        for key, value in preset.items():
            if values.get(key) is None:
                values[key] = value
        return TrainingConfig(**values)


class ClusterConfig(_Section):
    """Ray services: how many actors, how much each asks for, how deep the queue is."""

    address: Optional[str] = Field(None, description="Ray address; None starts or joins a local one")
    n_generators: Union[int, Literal["auto"]] = Field(
        2, description='"auto": the cluster\'s CPUs minus trainer_cpus, per cpus_per_generator; follows the autoscaler'
    )
    cpus_per_generator: float = Field(1.0, gt=0.0)
    generator_batch_size: int = Field(
        256,
        gt=0,
        description="patterns per queue item; each item costs a fixed transfer: 256 keeps Ray's overhead near 8 %, 64 at 13 % (bench_pipeline.py)",
    )
    queue_max_items: int = Field(8, gt=0, description="items the queue holds: 8 x 256 patterns of 8501 points = 70 MB")
    trainer_gpus: float = Field(0.0, ge=0.0)
    trainer_cpus: float = Field(1.0, ge=0.0)
    max_restarts: int = Field(-1, ge=-1)
    trainer_restarts: int = Field(
        3, ge=0, description="times a trainer actor that died is started again; it resumes from the run's last checkpoint"
    )
    prefetch_batches: int = Field(4, ge=0)

    _n_generators = field_validator("n_generators", mode="before")(_positive_int_or_auto)
