"""The typed config: defaults match the method, bad values fail with one line naming the field."""

import inspect

import pytest
import yaml

from services.batch_feed import QueueFeed
from xrdgen.config import Config, load_config, parse_overrides
from xrdgen.errors import UserError


def test_default_grid_is_the_methods_8501_points():
    grid = Config().grid
    assert grid.n_points == 8501
    tt = grid.two_theta()
    assert tt[0] == pytest.approx(5.0) and tt[-1] == pytest.approx(90.0)
    assert tt[1] - tt[0] == pytest.approx(0.01)


def test_training_presets_fill_unset_fields():
    park = Config().training.resolved()
    assert (park.batch_size, park.learning_rate, park.batches_per_epoch) == (870, 1e-3, 150)
    resnet = load_config(overrides={"training.model": "resnet50", "training.batch_size": 7}).training.resolved()
    assert (resnet.batch_size, resnet.learning_rate, resnet.lr_halving_epochs) == (7, 1e-4, 500)


def test_yaml_roundtrip_and_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    config = load_config(overrides={"seed": 7, "grid.step": 0.02})
    path.write_text(config.to_yaml())
    again = load_config(path)
    assert again == config and again.grid.n_points == 4251


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("grid:\n  step: -1\n", "grid.step"),
        ("training:\n  model: vgg\n", "training.model"),
        ("simulation:\n  crystallite_size_nm: [100, 20]\n", "crystallite_size_nm"),
        ("nonsense: 1\n", "nonsense"),
        ("grid: [1, 2\n", "not valid YAML"),
    ],
)
def test_invalid_values_give_one_line_naming_the_field(tmp_path, text, fragment):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(UserError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message and fragment in message and str(path) in message


def test_overrides_are_parsed_as_yaml_scalars():
    assert parse_overrides(["training.epochs=3", "grid.step=0.02", "simulation.kalpha2=true", "experiment.seeds=[0, 1]"]) == {
        "training.epochs": 3,
        "grid.step": 0.02,
        "simulation.kalpha2": True,
        "experiment.seeds": [0, 1],
    }
    assert parse_overrides(["experiment.measured=null", "a=b=c"]) == {"experiment.measured": None, "a": "b=c"}
    with pytest.raises(UserError, match=r"^--set training\.epochs: expected KEY=VALUE"):
        parse_overrides(["training.epochs"])


def test_max_volume_has_one_source_the_statistics_section():
    assert Config().generation.max_volume == Config().statistics.max_volume
    config = load_config(overrides={"statistics.max_volume": 1500.0})
    assert config.generation.max_volume == 1500.0
    assert load_config(overrides={"statistics.max_volume": 900.0, "generation.max_volume": 900.0}).generation.max_volume == 900.0
    with pytest.raises(UserError) as info:
        load_config(overrides={"generation.max_volume": 1500.0})
    assert "generation.max_volume=1500.0 differs from statistics.max_volume=7000.0" in str(info.value)
    assert "\n" not in str(info.value)
    again = Config(**yaml.safe_load(config.to_yaml()))
    assert again == config and again.generation.max_volume == 1500.0


def test_experiment_steps_must_be_whole_evaluation_periods():
    with pytest.raises(UserError, match="experiment.steps=30 must be a multiple of experiment.eval_every=20"):
        load_config(overrides={"experiment.steps": 30, "experiment.eval_every": 20})
    assert load_config(overrides={"experiment.steps": 40, "experiment.eval_every": 20}).experiment.steps == 40


def test_the_queue_feed_takes_its_prefetch_depth_from_the_config():
    """No second default beside cluster.prefetch_batches: the feed must be told its depth."""
    parameter = inspect.signature(QueueFeed).parameters["prefetch_batches"]
    assert parameter.default is inspect.Parameter.empty
