"""The model zoo: every architecture builds, its size matches the definition counted by hand, and
every model name used anywhere (config, config files, tests, benchmarks) is one of the registry's.

The expected parameter counts are derived here from the written definition (Park et al. 2017 /
the method's Table S1 with its 1D changes), layer by layer with plain arithmetic, independent of
Keras' own bookkeeping: conv k*c_in*c_out (+ c_out bias), group norm 2c (gamma, beta),
dense n_in*n_out + n_out; "same" padding gives ceil(L/s) points, "valid" pooling floor((L-p)/s)+1.
"""

from __future__ import annotations

import math
import re
import subprocess
import sys
import typing
from pathlib import Path

import keras
import numpy as np
import pytest
import yaml

from models import MODEL_NAMES, build_model, model_family
from xrdgen.config import TRAINING_PRESETS, ModelName, TrainingConfig

ROOT = Path(__file__).resolve().parents[1]

N_POINTS = 8501
N_CLASSES = 145


def park_parameter_count(input_length: int, n_classes: int, dense: tuple[int, int]) -> int:
    length, channels, total = input_length, 1, 0
    for kernel, stride, pool, pool_stride in ((100, 5, 3, 2), (50, 5, 3, 3), (25, 2, 3, 3)):
        total += kernel * channels * 80 + 80
        length = math.ceil(length / stride)
        length = (length - pool) // pool_stride + 1
        channels = 80
    n_in = length * channels
    for units in (*dense, n_classes):
        total += n_in * units + units
        n_in = units
    return total


def resnet_parameter_count(input_length: int, n_classes: int, bottleneck: bool, repeats: tuple) -> int:
    group_norm = lambda c: 2 * c  # noqa: E731
    total = 7 * 1 * 64 + group_norm(64)  # stem conv without bias + its norm
    length = math.ceil(math.ceil(input_length / 2) / 2)  # stem stride 2, max pool stride 2 ("same")
    channels = 64
    for stage, (filters, n_blocks) in enumerate(zip((64, 128, 256, 512), repeats)):
        out = 4 * filters if bottleneck else filters
        for block in range(n_blocks):
            stride = 4 if (block == 0 and stage > 0) else 1
            if block == 0:
                total += channels * out + group_norm(out)  # 1x1 projection shortcut
            if bottleneck:
                total += channels * filters + group_norm(filters)
                total += 9 * filters * filters + group_norm(filters)
                total += filters * out + group_norm(out)
            else:
                total += 9 * channels * filters + group_norm(filters)
                total += 9 * filters * filters + group_norm(filters)
            length = math.ceil(length / stride)
            channels = out
    total += length * channels * 256 + 256  # flatten -> dense 256
    total += 256 * n_classes + n_classes  # logits
    return total


EXPECTED = {
    "park_medium": lambda: park_parameter_count(N_POINTS, N_CLASSES, (4040, 202)),
    "park_big": lambda: park_parameter_count(N_POINTS, N_CLASSES, (2300, 1150)),
    "resnet10": lambda: resnet_parameter_count(N_POINTS, N_CLASSES, False, (1, 1, 1, 1)),
    "resnet50": lambda: resnet_parameter_count(N_POINTS, N_CLASSES, True, (3, 4, 6, 3)),
    "resnet101": lambda: resnet_parameter_count(N_POINTS, N_CLASSES, True, (3, 4, 23, 3)),
}


@pytest.fixture(scope="module")
def zoo():
    return {name: build_model(name, N_CLASSES, N_POINTS) for name in MODEL_NAMES}


def test_every_registered_model_has_a_hand_counted_definition():
    assert set(MODEL_NAMES) == set(EXPECTED)


def _names_in_files() -> set[tuple[str, str]]:
    """(file, model name) wherever a name is written: `training.model` settings, `model:` in YAML
    files, `build_model("...")` calls (this file's own names are `EXPECTED`'s, checked above)."""
    found = set()
    for path in [*ROOT.glob("configs/*.yaml"), *ROOT.glob("docs/**/*.yaml")]:
        model = ((yaml.safe_load(path.read_text()) or {}).get("training") or {}).get("model")
        if model is not None:
            found.add((path.name, model))
    patterns = (r"training\.model['\"]?\s*[:=]\s*['\"]([A-Za-z0-9_]+)", r"build_model\(\s*['\"]([A-Za-z0-9_]+)['\"]")
    for folder in ("xrdgen", "services", "tests", "benchmarks"):
        for path in (ROOT / folder).rglob("*.py"):
            if path.name == Path(__file__).name:
                continue
            for pattern in patterns:
                found.update((path.name, name) for name in re.findall(pattern, path.read_text(encoding="utf-8")))
    return found


def test_every_model_name_in_use_is_in_the_registry():
    assert set(typing.get_args(ModelName)) == set(MODEL_NAMES)  # the config accepts exactly the registry
    assert TrainingConfig().model in MODEL_NAMES
    assert {model_family(name) for name in MODEL_NAMES} == set(TRAINING_PRESETS)  # a preset for each family
    used = _names_in_files()
    assert len({name for _, name in used}) >= 3  # the scan finds the names (park_medium, resnet10, resnet50)
    unknown = sorted((file, name) for file, name in used if name not in MODEL_NAMES)
    assert not unknown, unknown


def test_the_registry_needs_neither_keras_nor_the_project():
    code = "import sys, models; print(sorted(m for m in sys.modules if m.split('.')[0] in ('keras', 'xrdgen', 'services')))"
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_parameter_count_matches_definition(zoo, name):
    model = zoo[name]
    expected = EXPECTED[name]()
    print(f"{name}: {model.count_params():,} parameters (definition: {expected:,})")
    assert model.count_params() == expected
    assert model.input_shape == (None, N_POINTS)
    assert model.output_shape == (None, N_CLASSES)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_layer_names_are_systematic(zoo, name):
    names = [layer.name for layer in zoo[name].layers]
    assert len(names) == len(set(names))
    assert names[:2] == ["pattern", "channel"] and names[-1] == "logits"
    pattern = (
        r"(conv\d|pool\d|dense\d)(_relu|_dropout)?|flatten"
        if name.startswith("park")
        else r"stem_(conv|norm|relu|pool)|stage\d_block\d+_(shortcut|\d)_(conv|norm|relu)|stage\d_block\d+_(add|out)|(flatten|dense)(_dropout)?"
    )
    for layer_name in names[2:-1]:
        assert re.fullmatch(pattern, layer_name), layer_name


def test_resnet_uses_group_norm_with_32_groups_and_kernel_9(zoo):
    model = zoo["resnet50"]
    norms = [layer for layer in model.layers if isinstance(layer, keras.layers.GroupNormalization)]
    assert norms and all(layer.groups == 32 for layer in norms)
    assert not any(isinstance(layer, keras.layers.BatchNormalization) for layer in model.layers)
    assert model.get_layer("stem_conv").kernel_size == (7,) and model.get_layer("stem_conv").strides == (2,)
    assert model.get_layer("stage2_block1_2_conv").kernel_size == (9,)
    assert model.get_layer("stage2_block1_2_conv").strides == (4,)
    assert model.get_layer("stage2_block1_shortcut_conv").strides == (4,)
    assert model.get_layer("stage1_block1_2_conv").strides == (1,)


@pytest.mark.parametrize("name, rates", [("park_medium", [0.3, 0.3, 0.3, 0.5, 0.5]), ("resnet10", [0.5, 0.5])])
def test_dropout_only_when_asked(name, rates):
    """Park: after every convolution and hidden dense layer; ResNet: before each dense layer of the head.
    At inference a dropout model computes what the same weights compute without dropout; in training
    it does not."""
    plain = build_model(name, 7, 2001)
    dropped = build_model(name, 7, 2001, dropout=True)
    layers = [layer for layer in dropped.layers if isinstance(layer, keras.layers.Dropout)]
    assert sorted(layer.rate for layer in layers) == rates
    assert not any(isinstance(layer, keras.layers.Dropout) for layer in plain.layers)
    assert plain.count_params() == dropped.count_params()
    dropped.set_weights(plain.get_weights())
    x = np.random.default_rng(0).random((4, 2001), dtype=np.float32)
    np.testing.assert_allclose(np.asarray(dropped(x, training=False)), np.asarray(plain(x, training=False)), rtol=1e-5, atol=1e-5)
    assert not np.allclose(np.asarray(dropped(x, training=True)), np.asarray(plain(x, training=False)))
    if model_family(name) == "resnet":
        assert [layer.name for layer in dropped.layers][-5:] == ["flatten", "flatten_dropout", "dense", "dense_dropout", "logits"]


@pytest.mark.parametrize("name", ["park_medium", "resnet10"])
def test_forward_pass_gives_finite_logits(name):
    model = build_model(name, 11, 2001)
    x = np.random.default_rng(0).random((3, 2001), dtype=np.float32)
    logits = np.asarray(model(x, training=False))
    assert logits.shape == (3, 11) and np.all(np.isfinite(logits))
    assert not np.allclose(logits[0], logits[1])  # the input reaches the output


def test_unknown_name_is_refused():
    with pytest.raises(ValueError, match="unknown model"):
        build_model("vgg16", 10, 100)
