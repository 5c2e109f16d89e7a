"""Keras 3 architectures as data: each network is a spec handed to one builder.

`MODEL_SPECS` is the one registry of model names: the config's `training.model`, the benchmarks and
the tests take the names from it (tests/test_models.py fails on a name the registry lacks).
`build_model(name, n_classes, input_length, dropout=False)` returns an uncompiled `keras.Model`
mapping patterns of shape (batch, input_length) to logits (batch, n_classes). Model code uses
`keras` only (no `tf.`), so the TensorFlow, JAX and PyTorch backends all build it. Importing this
package does not import Keras (only building a model does), so the config can read the names.
This package imports nothing of the project.
"""

from __future__ import annotations

from models.parkcnn import PARK_SPECS, ParkSpec, build_park
from models.resnet1d import RESNET_SPECS, ResNetSpec, build_resnet

MODEL_SPECS: dict[str, ParkSpec | ResNetSpec] = {**PARK_SPECS, **RESNET_SPECS}
MODEL_NAMES = tuple(MODEL_SPECS)


def model_family(name: str) -> str:
    """ "park" or "resnet": the family whose training preset a model takes."""
    if name not in MODEL_SPECS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}")
    return "park" if isinstance(MODEL_SPECS[name], ParkSpec) else "resnet"


def build_model(name: str, n_classes: int, input_length: int, dropout: bool = False):
    """The named architecture for `n_classes` classes and patterns of `input_length` points."""
    builder = build_park if model_family(name) == "park" else build_resnet
    return builder(MODEL_SPECS[name], n_classes, input_length, dropout=dropout, name=name)


SYSTEM_HEAD = "crystal_system"  # the layer name of the optional crystal-system head
N_CRYSTAL_SYSTEMS = 7


def with_crystal_system_head(model):
    """`model` with a second output: 7 crystal-system logits (float32) from the input of its `logits` layer."""
    import keras  # lazy: see the module docstring

    features = model.get_layer("logits").input
    systems = keras.layers.Dense(N_CRYSTAL_SYSTEMS, dtype="float32", name=SYSTEM_HEAD)(features)
    return keras.Model(model.input, [model.output, systems], name=model.name)


def space_group_head(model):
    """The space-group logits alone of a model with heads (shares its weights); a one-output model itself."""
    import keras  # lazy: see the module docstring

    return keras.Model(model.input, model.outputs[0], name=model.name) if len(model.outputs) > 1 else model
