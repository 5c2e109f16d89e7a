"""The typed config: defaults match the method, bad values fail with one line naming the field."""

import inspect
from pathlib import Path

import pytest
import yaml

from services.batch_feed import QueueFeed
from xrdgen.config import (
    ABLATION_GROUPS,
    IMPERFECTIONS,
    PATTERN_PRESETS,
    SAMPLE_EFFECTS,
    AugmentationConfig,
    Config,
    SimulationConfig,
    config_from_dict,
    load_config,
    parse_overrides,
)
from xrdgen.errors import UserError

ROOT = Path(__file__).resolve().parents[1]


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


@pytest.mark.parametrize("name, value", [("max_volume", 1500.0), ("max_atoms_asymmetric_unit", 12)])
def test_generator_limits_have_one_source_the_statistics_section(name, value):
    assert getattr(Config().generation, name) == getattr(Config().statistics, name)
    config = load_config(overrides={f"statistics.{name}": value})
    assert getattr(config.generation, name) == value
    both = load_config(overrides={f"statistics.{name}": value, f"generation.{name}": value})
    assert getattr(both.generation, name) == value
    with pytest.raises(UserError) as info:
        load_config(overrides={f"generation.{name}": value})
    assert f"generation.{name}={value} differs from statistics.{name}={getattr(Config().statistics, name)}" in str(info.value)
    assert "\n" not in str(info.value)
    again = Config(**yaml.safe_load(config.to_yaml()))
    assert again == config and getattr(again.generation, name) == value


def test_section_defaults_are_the_default_preset():
    """A section made on its own (tests, tools) behaves as inside the default config: the pure preset."""
    config = Config()
    assert config.preset == "pure"
    assert config.simulation == SimulationConfig() and config.augmentation == AugmentationConfig()
    for section, values in PATTERN_PRESETS["pure"].items():
        default = {"simulation": SimulationConfig(), "augmentation": AugmentationConfig()}[section]
        assert {key: getattr(default, key) for key in values} == values, section


def test_every_effect_switch_is_in_one_effect_list_and_one_ablation_group():
    switches = [name for name, field in AugmentationConfig.model_fields.items() if field.annotation is bool]
    assert sorted(IMPERFECTIONS + SAMPLE_EFFECTS + ("sqrt_scale",)) == sorted(switches)
    assert sorted(effect for group in ABLATION_GROUPS.values() for effect in group) == sorted(SAMPLE_EFFECTS)
    assert ABLATION_GROUPS["peak_shift"] == ("zero_shift", "sample_displacement")
    measured = Config(preset="measured").augmentation
    assert all(getattr(measured, name) for name in IMPERFECTIONS + SAMPLE_EFFECTS) and not measured.sqrt_scale


def test_a_stored_config_with_old_field_names_reads_as_the_new_ones():
    """A run's meta.json written before fields were renamed or folded loads, with the same values."""
    stored = Config().model_dump(mode="json")
    stored["statistics"]["max_wyckoff_sites"] = stored["statistics"].pop("max_atoms_asymmetric_unit")
    stored["statistics"]["max_wyckoff_sites"] = stored["generation"]["max_atoms_asymmetric_unit"] = 40
    stored["augmentation"]["crystallite_size_nm"] = stored["augmentation"].pop("small_crystallite_size_nm")
    stored["augmentation"]["crystallite_size_nm"] = [5.0, 50.0]
    stored["simulation"].update(debye_waller=False, debye_waller_b=1.0)  # off: it had no effect
    stored["experiment"]["dedupe_ids"] = False
    config = config_from_dict(stored, source="run/meta.json")
    assert config.statistics.max_atoms_asymmetric_unit == config.generation.max_atoms_asymmetric_unit == 40
    assert config.augmentation.small_crystallite_size_nm == (5.0, 50.0)
    assert config_from_dict(stored, {"statistics.max_atoms_asymmetric_unit": 12}).generation.max_atoms_asymmetric_unit == 12
    assert config_from_dict({}, {"statistics.max_wyckoff_sites": 12}).statistics.max_atoms_asymmetric_unit == 12


@pytest.mark.parametrize(
    "stored, fragment",
    [
        (
            {"simulation": {"debye_waller": True, "debye_waller_b": 2.0}},
            "simulation.debye_waller was removed; use augmentation.debye_waller: true with augmentation.debye_waller_b: [B, B]",
        ),
        ({"experiment": {"dedupe_ids": True}}, "experiment.dedupe_ids was removed; use collection.id_column: material_id"),
        (
            {"statistics": {"max_wyckoff_sites": 50, "max_atoms_asymmetric_unit": 60}},
            "statistics.max_wyckoff_sites is the old name of statistics.max_atoms_asymmetric_unit",
        ),
    ],
)
def test_an_old_field_that_cannot_be_mapped_fails_with_one_line_saying_what_to_use(stored, fragment):
    with pytest.raises(UserError) as info:
        config_from_dict(stored, source="run/meta.json")
    assert str(info.value).startswith(f"run/meta.json: {fragment}") and "\n" not in str(info.value)


def test_shipped_configs_read_and_stored_result_configs_read_or_say_what_changed():
    for path in sorted((ROOT / "configs").glob("*.yaml")):
        load_config(path)
    for path in sorted((ROOT / "docs" / "results").glob("*_config.yaml")):
        try:
            load_config(path)
        except UserError as exc:
            assert "was removed; use " in str(exc) and "\n" not in str(exc), str(exc)


def test_experiment_steps_must_be_whole_evaluation_periods():
    with pytest.raises(UserError, match="experiment.steps=30 must be a multiple of experiment.eval_every=20"):
        load_config(overrides={"experiment.steps": 30, "experiment.eval_every": 20})
    assert load_config(overrides={"experiment.steps": 40, "experiment.eval_every": 20}).experiment.steps == 40


def test_the_queue_feed_takes_its_prefetch_depth_from_the_config():
    """No second default beside cluster.prefetch_batches: the feed must be told its depth."""
    parameter = inspect.signature(QueueFeed).parameters["prefetch_batches"]
    assert parameter.default is inspect.Parameter.empty
