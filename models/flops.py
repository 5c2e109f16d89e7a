"""Floating-point operations of a built model, counted from its layers' shapes.

Forward FLOPs per pattern count the multiply-adds of the convolutions and dense layers (one
multiply-add = 2 FLOPs), where nearly all the work is:

    Conv1D: 2 * kernel_size * in_channels * filters * output_length
    Dense:  2 * in_features * units

Pooling, activations and normalisation (a few operations per value) are left out; they are memory
bound, not FLOP bound. Training one pattern costs the forward pass plus the backward pass, which
computes two products per layer (the gradient of its weights and of its input), each as expensive as
the forward product; the first layer's input gradient is not needed:

    training FLOPs = 3 * forward - forward(first weighted layer)
"""

from __future__ import annotations


def layer_flops(layer) -> int:
    """Forward FLOPs per pattern of one layer (0 for layers without a matrix product)."""
    kind = type(layer).__name__
    if kind == "Conv1D":
        out_length, filters = layer.output.shape[1], layer.output.shape[2]
        in_channels = layer.input.shape[-1]
        return 2 * layer.kernel_size[0] * in_channels * filters * out_length
    if kind == "Dense":
        return 2 * layer.input.shape[-1] * layer.units
    return 0


def forward_flops(model) -> int:
    """Forward FLOPs per pattern of a built functional keras.Model."""
    return sum(layer_flops(layer) for layer in model.layers)


def training_flops(model) -> int:
    """FLOPs of one training step per pattern (module docstring)."""
    weighted = [f for f in (layer_flops(layer) for layer in model.layers) if f]
    return 3 * sum(weighted) - (weighted[0] if weighted else 0)
