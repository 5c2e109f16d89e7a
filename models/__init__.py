"""Keras 3 architectures as data: each network is a spec handed to one builder.

`build_model(name, n_classes, input_length, dropout=False)` returns an uncompiled `keras.Model`
mapping patterns of shape (batch, input_length) to logits (batch, n_classes). Model code uses
`keras` only (no `tf.`), so the TensorFlow, JAX and PyTorch backends all build it.
"""

from __future__ import annotations

from models.parkcnn import PARK_SPECS, ParkSpec, build_park
from models.resnet1d import RESNET_SPECS, ResNetSpec, build_resnet

MODEL_SPECS: dict[str, ParkSpec | ResNetSpec] = {**PARK_SPECS, **RESNET_SPECS}
MODEL_NAMES = tuple(MODEL_SPECS)


def build_model(name: str, n_classes: int, input_length: int, dropout: bool = False):
    """The named architecture for `n_classes` classes and patterns of `input_length` points."""
    if name not in MODEL_SPECS:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(MODEL_NAMES)}")
    spec = MODEL_SPECS[name]
    builder = build_park if isinstance(spec, ParkSpec) else build_resnet
    return builder(spec, n_classes, input_length, dropout=dropout, name=name)


__all__ = ["MODEL_SPECS", "MODEL_NAMES", "build_model", "PARK_SPECS", "RESNET_SPECS"]
