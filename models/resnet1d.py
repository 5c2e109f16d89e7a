"""1D ResNets (He et al. 2016, Table 1) adapted to powder patterns as in Schopmans et al. (SI, Table S1).

Changes from the 2D image network, all following the method:

1. Every 3x3 kernel becomes a 1D kernel of 9 = 3^2 points, and the stride 2 of downsampling
   blocks and projection shortcuts becomes 4 = 2^2, so that a 1D layer sees and skips as many
   input values as its 2D original.
2. The stem keeps the 2D network's kernel 7 and stride 2 (as the original's 1D port does), followed
   by max pooling 3, stride 2.
3. Batch normalisation is replaced by group normalisation with 32 groups: batch statistics made the
   training on the synthetic stream unstable in the original work.
4. The head is flatten -> dense 256 -> dense n_classes (logits). The original applies no activation
   between the two dense layers; we keep that (a low-rank factorisation of one large dense layer).
5. With `dropout` (the baseline arm, which trains on a fixed set and overfits without it): dropout
   before each dense layer of the head, flatten -> [dropout 0.5] -> dense 256 -> [dropout 0.5] ->
   logits, the rate of the Park CNNs' dense dropout, so both families are regularised alike where
   the parameters are (the head holds most of ResNet-10's). The convolutions keep none: group
   normalisation and residual paths are what the method's ResNets rely on.

As in the TensorFlow model garden that the original ported, the first block of every stage has a
projection shortcut (1x1 convolution + normalisation), convolutions carry no bias (the
normalisation's offset replaces it), and the first stage does not downsample.

Keras is imported inside the builder functions only: it takes seconds to import, and the specs here
are read by the model registry (`models.MODEL_SPECS`), which the config uses to check model names.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class StageSpec:
    block: str  # "basic" (two k=9 convolutions) or "bottleneck" (1 -> 9 -> 1, 4x expansion)
    filters: int
    repeats: int


@dataclass(frozen=True)
class ResNetSpec:
    stages: tuple[StageSpec, ...]
    kernel_size: int = 9
    downsample_stride: int = 4
    stem_filters: int = 64
    stem_kernel: int = 7
    stem_stride: int = 2
    stem_pool: int = 3
    stem_pool_stride: int = 2
    groups: int = 32
    head_units: int = 256
    head_dropout: float = 0.5  # before each dense layer of the head, when dropout is asked for


def _stages(block: str, repeats: tuple[int, int, int, int]) -> tuple[StageSpec, ...]:
    return tuple(StageSpec(block, filters, n) for filters, n in zip((64, 128, 256, 512), repeats))


RESNET_SPECS = {
    "resnet10": ResNetSpec(_stages("basic", (1, 1, 1, 1))),
    "resnet50": ResNetSpec(_stages("bottleneck", (3, 4, 6, 3))),
    "resnet101": ResNetSpec(_stages("bottleneck", (3, 4, 23, 3))),
}

BOTTLENECK_EXPANSION = 4


def _conv_norm(x, filters, kernel_size, strides, groups, name, relu=True):
    import keras  # lazy: see the module docstring

    x = keras.layers.Conv1D(filters, kernel_size, strides=strides, padding="same", use_bias=False, name=f"{name}_conv")(x)
    x = keras.layers.GroupNormalization(groups=groups, name=f"{name}_norm")(x)
    if relu:
        x = keras.layers.Activation("relu", name=f"{name}_relu")(x)
    return x


def _block(x, stage: StageSpec, spec: ResNetSpec, strides: int, projection: bool, name: str):
    """One residual block; the stride sits on the first k=9 convolution (model-garden convention)."""
    import keras  # lazy: see the module docstring

    shortcut = x
    if projection:
        out_filters = stage.filters * (BOTTLENECK_EXPANSION if stage.block == "bottleneck" else 1)
        shortcut = _conv_norm(x, out_filters, 1, strides, spec.groups, f"{name}_shortcut", relu=False)
    if stage.block == "basic":
        x = _conv_norm(x, stage.filters, spec.kernel_size, strides, spec.groups, f"{name}_1")
        x = _conv_norm(x, stage.filters, spec.kernel_size, 1, spec.groups, f"{name}_2", relu=False)
    elif stage.block == "bottleneck":
        x = _conv_norm(x, stage.filters, 1, 1, spec.groups, f"{name}_1")
        x = _conv_norm(x, stage.filters, spec.kernel_size, strides, spec.groups, f"{name}_2")
        x = _conv_norm(x, stage.filters * BOTTLENECK_EXPANSION, 1, 1, spec.groups, f"{name}_3", relu=False)
    else:
        raise ValueError(f"unknown block type {stage.block!r}")
    x = keras.layers.Add(name=f"{name}_add")([x, shortcut])
    return keras.layers.Activation("relu", name=f"{name}_out")(x)


def build_resnet(spec: ResNetSpec, n_classes: int, input_length: int, dropout: bool = False, name: str = "resnet"):
    """One builder for every ResNet spec (a `keras.Model`); layers are `stem_*`, `stage{s}_block{b}_*`, `dense`, `logits`,
    and with `dropout` `flatten_dropout` and `dense_dropout` (module docstring, item 5)."""
    import keras  # lazy: see the module docstring

    inputs = keras.Input(shape=(input_length,), name="pattern")
    x = keras.layers.Reshape((input_length, 1), name="channel")(inputs)
    x = _conv_norm(x, spec.stem_filters, spec.stem_kernel, spec.stem_stride, spec.groups, "stem")
    x = keras.layers.MaxPooling1D(spec.stem_pool, strides=spec.stem_pool_stride, padding="same", name="stem_pool")(x)
    for s, stage in enumerate(spec.stages, start=1):
        for b in range(1, stage.repeats + 1):
            first = b == 1
            strides = spec.downsample_stride if (first and s > 1) else 1
            x = _block(x, stage, spec, strides, projection=first, name=f"stage{s}_block{b}")
    x = keras.layers.Flatten(name="flatten")(x)
    if dropout:
        x = keras.layers.Dropout(spec.head_dropout, name="flatten_dropout")(x)
    x = keras.layers.Dense(spec.head_units, name="dense")(x)
    if dropout:
        x = keras.layers.Dropout(spec.head_dropout, name="dense_dropout")(x)
    outputs = keras.layers.Dense(n_classes, dtype="float32", name="logits")(x)  # float32 under mixed precision too
    return keras.Model(inputs, outputs, name=name)
