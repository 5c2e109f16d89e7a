"""The CNN of Park et al. (2017) as the method trains it, in two sizes ("medium" and "big").

Architecture (Park et al., IUCrJ 4, 2017; sizes as in Schopmans et al., SI): three strided 1D
convolutions of 80 filters, each followed by ReLU and average pooling, then two fully connected
ReLU layers and a linear output layer of one logit per class.

    conv  k=100 s=5 "same"  -> ReLU -> [dropout 0.3] -> avg-pool 3, stride 2
    conv  k=50  s=5 "same"  -> ReLU -> [dropout 0.3] -> avg-pool 3, stride 3
    conv  k=25  s=2 "same"  -> ReLU -> [dropout 0.3] -> avg-pool 3, stride 3
    flatten -> dense d1 -> ReLU -> [dropout 0.5] -> dense d2 -> ReLU -> [dropout 0.5] -> dense n_classes

Dropout is only used in the method's baseline (training directly on the few real structures), where
the network would otherwise memorise them; on the endless synthetic stream it is not needed.

Keras is imported inside `build_park` only: it takes seconds to import, and the specs here are read
by the model registry (`models.MODEL_SPECS`), which the config uses to check model names.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ConvSpec:
    filters: int
    kernel_size: int
    strides: int
    pool_size: int
    pool_strides: int


@dataclass(frozen=True)
class ParkSpec:
    convs: tuple[ConvSpec, ...]
    dense: tuple[int, ...]
    conv_dropout: float = 0.3
    dense_dropout: float = 0.5


_PARK_CONVS = (
    ConvSpec(80, 100, 5, 3, 2),
    ConvSpec(80, 50, 5, 3, 3),
    ConvSpec(80, 25, 2, 3, 3),
)

PARK_SPECS = {
    "park_medium": ParkSpec(_PARK_CONVS, dense=(4040, 202)),
    "park_big": ParkSpec(_PARK_CONVS, dense=(2300, 1150)),
}


def build_park(spec: ParkSpec, n_classes: int, input_length: int, dropout: bool = False, name: str = "park"):
    """One builder for every parkCNN spec (a `keras.Model`); layers are `conv{i}`, `pool{i}`, `dense{i}`, `logits`."""
    import keras  # lazy: see the module docstring

    inputs = keras.Input(shape=(input_length,), name="pattern")
    x = keras.layers.Reshape((input_length, 1), name="channel")(inputs)
    for i, conv in enumerate(spec.convs, start=1):
        x = keras.layers.Conv1D(conv.filters, conv.kernel_size, strides=conv.strides, padding="same", name=f"conv{i}")(x)
        x = keras.layers.Activation("relu", name=f"conv{i}_relu")(x)
        if dropout:
            x = keras.layers.Dropout(spec.conv_dropout, name=f"conv{i}_dropout")(x)
        x = keras.layers.AveragePooling1D(conv.pool_size, strides=conv.pool_strides, name=f"pool{i}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    for i, units in enumerate(spec.dense, start=1):
        x = keras.layers.Dense(units, name=f"dense{i}")(x)
        x = keras.layers.Activation("relu", name=f"dense{i}_relu")(x)
        if dropout:
            x = keras.layers.Dropout(spec.dense_dropout, name=f"dense{i}_dropout")(x)
    outputs = keras.layers.Dense(n_classes, dtype="float32", name="logits")(x)  # float32 under mixed precision too
    return keras.Model(inputs, outputs, name=name)
