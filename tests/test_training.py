"""The trainer on real simulated patterns of MP-40 structures (the project's simulator, collection reader and split).

One module-scoped data set keeps the cost down: the structures of one MP-40 CSV, split by structure
type, the most frequent space groups of the statistics part as class list, patterns on a short grid
(10-70° at 0.02°, 3,001 points) with sqrt input scaling, as the method trains.
"""

from __future__ import annotations

import collections
import dataclasses
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from xrdgen.cli import app
from xrdgen.collection.reading import read_collection
from xrdgen.collection.split import split_by_structure_type
from xrdgen.config import load_config
from xrdgen.errors import UserError
from xrdgen.statistics.build import build_statistics
from xrdgen.training.datasets import epoch_batches, simulate_set
from xrdgen.training.rundir import InputSpec, load_model_run
from xrdgen.training.trainer import Trainer, learning_rate_schedule

N_CLASSES = 12
SHORT_GRID = {"grid.two_theta_min": 10.0, "grid.two_theta_max": 70.0, "grid.step": 0.02}


def make_config(**overrides):
    return load_config(None, {**SHORT_GRID, "augmentation.sqrt_scale": True, **overrides})


@pytest.fixture(scope="module")
def mp40(mp40_dir):
    """Statistics/test parts of one MP-40 CSV and their simulated patterns (baseline and test sets)."""
    config = make_config()
    report = read_collection(mp40_dir / "random_split_test.csv", config, progress=False)
    stats_part, test_part = split_by_structure_type(report.entries, 0.3, 0)
    counts = collections.Counter(e.spacegroup for e in stats_part)
    spacegroups = sorted(sg for sg, _ in counts.most_common(N_CLASSES))
    crystals = lambda entries: [dataclasses.replace(e.crystal, spacegroup=int(e.spacegroup)) for e in entries]  # noqa: E731
    train_crystals, test_crystals = crystals(stats_part), crystals(test_part)
    train = simulate_pattern_set(train_crystals, spacegroups, config, seed=1, crystallite_sizes_nm=(20.0, 100.0))
    test = simulate_pattern_set(test_crystals, spacegroups, config, seed=2, patterns_per_crystal=2)
    # the training labels: index into the class list
    train.y, test.y = train.class_indices(spacegroups), test.class_indices(spacegroups)
    return dict(config=config, spacegroups=spacegroups, train=train, test=test, train_crystals=train_crystals)


def simulate_pattern_set(crystals, spacegroups, config, seed, **how):
    return simulate_set(crystals, InputSpec.from_config(config), config.simulation, seed, classes=spacegroups, **how)


def batches_of(pattern_set, batch_size, seed=0):
    return epoch_batches(pattern_set.x, pattern_set.y, batch_size, seed)


def tensorboard_scalars(folder: Path) -> dict:
    """tag -> [(step, value)] read back from the event files, keeping only scalar-plugin records."""
    import tensorflow as tf

    scalars = collections.defaultdict(list)
    for path in sorted(folder.glob("events.out.tfevents.*")):
        for event in tf.compat.v1.train.summary_iterator(str(path)):
            for value in event.summary.value:
                if value.metadata.plugin_data.plugin_name == "scalars":
                    scalars[value.tag].append((event.step, float(tf.make_ndarray(value.tensor))))
    return scalars


# ------------------------------------------------------------------------------------ pure parts
def test_learning_rate_halves_every_n_epochs():
    schedule = learning_rate_schedule(1e-4, batches_per_epoch=10, halving_epochs=500)  # a function of the step
    steps = [10 * epoch for epoch in (0, 499, 500, 999, 1000, 1500)] + [10 * 500 - 1]
    assert [float(schedule(step)) for step in steps] == pytest.approx([1e-4, 1e-4, 5e-5, 5e-5, 2.5e-5, 1.25e-5, 1e-4])
    assert learning_rate_schedule(1e-3, 10, None) == 1e-3


def test_pattern_sets_are_labelled_scaled_and_counted(mp40):
    config, spacegroups, train = mp40["config"], mp40["spacegroups"], mp40["train"]
    crystals = mp40["train_crystals"]
    in_list = [c for c in crystals if c.spacegroup in spacegroups]
    assert len(train) == 2 * len(in_list)  # two crystallite sizes per statistics-part structure
    assert train.skipped_summary() == {"not in class list": len(crystals) - len(in_list)}
    assert [spacegroups[i] for i in train.y[::2]] == [c.spacegroup for c in in_list]
    assert train.spacegroups[::2].tolist() == [c.spacegroup for c in in_list]
    with pytest.raises(ValueError, match="not in the class list"):
        train.class_indices(spacegroups[1:])
    assert train.x.shape == (len(train), config.grid.n_points) and train.x.dtype == np.float32
    assert np.allclose(train.x.max(axis=1), 1.0)
    # sqrt scaling: the same crystals at the same sizes without it give the squares.
    plain = simulate_pattern_set(
        in_list[:20], spacegroups, make_config(**{"augmentation.sqrt_scale": False}), seed=1, crystallite_sizes_nm=(20.0, 100.0)
    )
    assert np.allclose(train.x[:40] ** 2, plain.x, atol=1e-5)
    # the two sizes differ: 20 nm peaks are broader than 100 nm peaks, so more points are lit.
    assert np.mean((train.x[0::2] > 0.05).sum(1) > (train.x[1::2] > 0.05).sum(1)) > 0.9


# ------------------------------------------------------------------------------------- training
def test_training_steps_resume_with_same_step_and_schedule(mp40, tmp_path):
    import keras

    config = make_config(
        **{
            "training.model": "park_medium",
            "training.batch_size": 32,
            "training.batches_per_epoch": 3,
            "training.lr_halving_epochs": 1,
        }
    )
    test = (mp40["test"].x[:64], mp40["test"].y[:64])
    run = tmp_path / "run"
    first = Trainer(config, mp40["spacegroups"], run_dir=run, test_set=test)
    history = first.fit(batches_of(mp40["train"], 32), epochs=2, batches_per_epoch=3)
    assert first.step == 6 and [h["epoch"] for h in history] == [1, 2]
    assert [h["learning_rate"] for h in history] == pytest.approx([1e-3, 5e-4])
    for name in ("model.keras", "meta.json", "history.json", "accuracy.png"):
        assert (run / name).is_file(), name
    assert list((run / "tensorboard").iterdir()) and list((run / "checkpoints").glob("step_000000006.keras"))
    meta = json.loads((run / "meta.json").read_text())
    assert meta["spacegroups"] == mp40["spacegroups"] and meta["model"] == "park_medium"
    # the input spec: grid, wavelength (Cu Kα1 by default) and scaling, as written into meta.json
    assert meta["input"] == {
        "grid": {"two_theta_min": 10.0, "two_theta_max": 70.0, "step": 0.02},
        "wavelength": config.simulation.wavelength_kalpha1,
        "preprocessing": {"sqrt_scale": True},
    }
    assert set(history[-1]["test_recall"]) <= set(mp40["spacegroups"])
    # Keras' TensorBoard callback writes the epoch's held-out scores (0-based epochs, "epoch_" tags).
    scalars = tensorboard_scalars(run / "tensorboard" / "train")
    assert scalars["epoch_test_top5"] == [(h["epoch"] - 1, pytest.approx(h["test_top5"])) for h in history]
    # best.keras is the model of the best held-out top-1 so far.
    best = max(history, key=lambda h: h["test_top1"])
    assert (run / "best.keras").is_file() and best["test_top1"] >= history[0]["test_top1"]

    resumed = Trainer(config, mp40["spacegroups"], run_dir=run, test_set=test)
    assert resumed.step == 6
    assert resumed.learning_rate == pytest.approx(first.learning_rate)
    for a, b in zip(first.model.optimizer.variables, resumed.model.optimizer.variables):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))
    for a, b in zip(first.model.weights, resumed.model.weights):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(a), keras.ops.convert_to_numpy(b))
    history = resumed.fit(batches_of(mp40["train"], 32, seed=1), epochs=4, batches_per_epoch=3)
    assert resumed.step == 12
    assert [h["epoch"] for h in history] == [1, 2, 3, 4] and [h["step"] for h in history] == [3, 6, 9, 12]
    assert [h["learning_rate"] for h in history] == pytest.approx([1e-3, 5e-4, 2.5e-4, 1.25e-4])
    assert all(np.isfinite(h["train_loss"]) for h in history)

    # The epoch's test metrics equal top-k and recall counted directly from the model's logits.
    logits = resumed.model.predict(test[0], verbose=0)
    ranks = np.array([list(np.argsort(-row)).index(label) for row, label in zip(logits, test[1])])
    assert history[-1]["test_top1"] == pytest.approx(np.mean(ranks < 1))
    assert history[-1]["test_top5"] == pytest.approx(np.mean(ranks < 5))
    for index in np.unique(test[1]):
        recall = np.mean(logits[test[1] == index].argmax(1) == index)
        assert history[-1]["test_recall"][mp40["spacegroups"][index]] == pytest.approx(recall)

    trained = load_model_run(run)
    np.testing.assert_allclose(
        trained.model.predict(test[0][:8], verbose=0), resumed.model.predict(test[0][:8], verbose=0), atol=1e-5
    )
    assert trained.spacegroups == mp40["spacegroups"] and trained.spec == InputSpec.from_config(config)


def test_input_spec_round_trips_a_non_default_wavelength_and_grid(mp40, tmp_path):
    """Whatever the config's wavelength, grid and scaling, the run directory gives them back."""
    config = make_config(**{"training.model": "park_medium", "simulation.anode": "Mo", "augmentation.sqrt_scale": False})
    trainer = Trainer(config, mp40["spacegroups"], run_dir=tmp_path / "mo")
    trainer.finish()
    trained = load_model_run(tmp_path / "mo")
    assert trained.spec == InputSpec(config.grid, 0.70930, False) == InputSpec.from_config(config)
    assert trained.spec.wavelength != make_config().simulation.wavelength_kalpha1  # not the Cu default


def test_run_without_input_spec_is_one_line_error(mp40, tmp_path):
    """A meta.json from before the input spec: resuming and loading name the file in one line."""
    config = make_config(**{"training.model": "park_medium"})
    run = tmp_path / "old"
    Trainer(config, mp40["spacegroups"], run_dir=run).finish()
    meta = json.loads((run / "meta.json").read_text())
    del meta["input"]
    (run / "meta.json").write_text(json.dumps(meta))
    for attempt in (lambda: load_model_run(run), lambda: Trainer(config, mp40["spacegroups"], run_dir=run)):
        with pytest.raises(UserError) as error:
            attempt()
        assert str(error.value).startswith(f"{run / 'meta.json'}: no input spec") and "\n" not in str(error.value)


def test_resnet10_trains_on_real_patterns(mp40, tmp_path):
    import keras

    config = make_config(**{"training.model": "resnet10", "training.batch_size": 16})
    trainer = Trainer(config, mp40["spacegroups"], run_dir=tmp_path / "resnet")
    before = keras.ops.convert_to_numpy(trainer.model.get_layer("logits").kernel).copy()
    history = trainer.fit(batches_of(mp40["train"], 16), epochs=1, batches_per_epoch=3)
    after = keras.ops.convert_to_numpy(trainer.model.get_layer("logits").kernel)
    assert trainer.step == 3 and np.isfinite(history[0]["train_loss"])
    assert history[0]["learning_rate"] == pytest.approx(1e-4)  # the ResNet preset
    assert not np.allclose(before, after)


def test_max_minutes_stops_mid_epoch_and_resume_drops_partial_entry(mp40, tmp_path):
    config = make_config(**{"training.model": "park_medium", "training.batch_size": 16})
    run = tmp_path / "budget"
    trainer = Trainer(config, mp40["spacegroups"], run_dir=run)
    history = trainer.fit(batches_of(mp40["train"], 16), epochs=3, batches_per_epoch=50, max_minutes=1e-4)
    assert trainer.step < 50 and history[-1].get("partial") is True
    assert (run / "model.keras").is_file()
    resumed = Trainer(config, mp40["spacegroups"], run_dir=run)
    assert resumed.step == trainer.step and resumed.history == []


def test_run_directory_refuses_a_different_class_list(mp40, tmp_path):
    config = make_config(**{"training.model": "park_medium"})
    Trainer(config, mp40["spacegroups"], run_dir=tmp_path / "run")
    with pytest.raises(UserError, match="different spacegroups"):
        Trainer(config, mp40["spacegroups"][:-1], run_dir=tmp_path / "run")
    measured = make_config(**{"training.model": "park_medium", "preset": "measured"})
    with pytest.raises(UserError, match="different preset"):  # a pure run is not resumed on measured patterns
        Trainer(measured, mp40["spacegroups"], run_dir=tmp_path / "run")


def test_a_run_can_start_from_another_runs_model_and_refuses_one_that_does_not_fit(mp40, tmp_path):
    config = make_config(**{"training.model": "park_medium", "training.batch_size": 16})
    first = Trainer(config, mp40["spacegroups"], run_dir=tmp_path / "pure")
    first.fit(batches_of(mp40["train"], 16), epochs=1, batches_per_epoch=3)
    measured = make_config(
        **{"training.model": "park_medium", "preset": "measured", "training.init_from": str(tmp_path / "pure")}
    )
    second = Trainer(measured, mp40["spacegroups"], run_dir=tmp_path / "measured")
    for a, b in zip(first.model.get_weights(), second.model.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert second.step == 0  # a new run with a fresh optimiser, not a resumed one
    with pytest.raises(UserError, match="this run needs the same class list"):
        Trainer(measured, mp40["spacegroups"][:-1], run_dir=tmp_path / "fewer")


def test_training_steps_under_jax_backend(mp40, tmp_path):
    """The Trainer (park_medium) and a ResNet-10 step run under KERAS_BACKEND=jax (no tf. in model code)."""
    import jax  # noqa: F401  (a test dependency: missing, the test fails instead of skipping)

    data = tmp_path / "batch.npz"
    np.savez(data, x=mp40["train"].x[:16], y=mp40["train"].y[:16])
    script = textwrap.dedent(
        f"""
        import json, numpy as np, keras
        assert keras.backend.backend() == "jax"
        from xrdgen.config import load_config
        from xrdgen.training.trainer import Trainer
        config = load_config(None, {{**{SHORT_GRID!r}, "training.model": "park_medium"}})
        d = np.load({str(data)!r})
        trainer = Trainer(config, {mp40["spacegroups"]!r}, run_dir={str(tmp_path / "jax")!r}, test_set=(d["x"], d["y"]))
        history = trainer.fit(iter([(d["x"], d["y"])] * 2), epochs=1, batches_per_epoch=2)
        from models import build_model
        resnet = build_model("resnet10", {N_CLASSES}, d["x"].shape[1])
        resnet.compile(optimizer="adam", loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        resnet_loss = float(resnet.train_on_batch(d["x"][:8], d["y"][:8]))
        print(json.dumps(dict(step=trainer.step, loss=history[0]["train_loss"], resnet_loss=resnet_loss,
                              resnet_params=resnet.count_params(),
                              backend=json.load(open({str(tmp_path / "jax" / "meta.json")!r}))["devices"]["backend"])))
        """
    )
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["step"] == 2 and np.isfinite(result["loss"]) and result["backend"] == "jax"
    from models import build_model

    assert np.isfinite(result["resnet_loss"])
    assert result["resnet_params"] == build_model("resnet10", N_CLASSES, mp40["train"].x.shape[1]).count_params()


def test_tiny_baseline_run_beats_chance_on_held_out_structures(mp40, tmp_path):
    """A real learning signal: held-out top-5 above the chance level 5/K of the class list.

    The test structures share no structure type with the training structures (A's split). The
    margin is statistical (one-sided binomial test against 5/K), not a number tuned to pass.
    """
    from scipy.stats import binomtest

    config = make_config(**{"training.model": "park_medium", "training.baseline": True, "training.batch_size": 64})
    train, test = mp40["train"], mp40["test"]
    trainer = Trainer(config, mp40["spacegroups"], run_dir=tmp_path / "baseline", test_set=(test.x, test.y))
    assert any("dropout" in layer.name for layer in trainer.model.layers)  # baseline mode: dropout on
    history = trainer.fit(batches_of(train, 64), epochs=6, batches_per_epoch=int(np.ceil(len(train) / 64)))
    top5 = history[-1]["test_top5"]
    chance = 5 / len(mp40["spacegroups"])
    prior_top5 = np.isin(test.y, np.argsort(-np.bincount(train.y, minlength=N_CLASSES))[:5]).mean()
    print(f"held-out top-5 {top5:.3f} on {len(test)} patterns; chance {chance:.3f}; most-frequent-5 baseline {prior_top5:.3f}")
    successes = int(round(top5 * len(test)))
    assert binomtest(successes, len(test), chance, alternative="greater").pvalue < 1e-3
    assert history[-1]["train_loss"] < history[0]["train_loss"]


def test_cli_train_bad_statistics_file_is_one_line(tmp_path):
    bad = tmp_path / "stats.json"
    bad.write_text("{not json")
    done = subprocess.run(
        [str(Path(sys.executable).parent / "xrdgen"), "train", str(bad), "--set", f"training.output_dir={tmp_path / 'run'}"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"error: {bad}: not a readable JSON statistics file (JSONDecodeError)"]


def test_cli_train_ends_with_a_calibrated_model(mp40_dir, tmp_path):
    """`xrdgen train` on the stream fits the temperature on fresh stream patterns and stores it in meta.json."""
    sets = {
        **SHORT_GRID,
        "statistics.min_count_per_spacegroup": 8,
        "statistics.max_atoms_asymmetric_unit": 12,
        "statistics.max_volume": 1500.0,
        "training.model": "park_medium",
        "training.batch_size": 8,
        "training.batches_per_epoch": 2,
        "training.epochs": 1,
        "evaluation.calibration_patterns": 24,
        "training.output_dir": str(tmp_path / "run"),
    }
    config = load_config(None, sets)
    entries = read_collection(mp40_dir / "random_split_test.csv", config, progress=False).entries[:300]
    statistics = build_statistics(entries, config.statistics).save(tmp_path / "statistics.json")
    args = ["train", str(statistics)] + [a for key, value in sets.items() for a in ("--set", f"{key}={value}")]
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    calibration = json.loads((tmp_path / "run" / "meta.json").read_text())["calibration"]
    assert calibration["patterns"] == 24 and calibration["statistics"] == str(statistics)
    assert calibration["nll_after"] <= calibration["nll_before"]
    assert load_model_run(tmp_path / "run").temperature == calibration["temperature"]
    assert f"temperature T = {calibration['temperature']:.4g}" in result.output


def test_crystal_system_head_trains_jointly_and_the_saved_model_has_one_output(mp40, tmp_path):
    import keras

    from xrdgen.geometry import CRYSTAL_SYSTEMS, crystal_system

    weight = 0.5
    config = make_config(**{"training.model": "park_medium", "training.batch_size": 16, "training.crystal_system_weight": weight})
    run = tmp_path / "heads"
    trainer = Trainer(config, mp40["spacegroups"], run_dir=run)
    assert len(trainer.model.outputs) == 2 and trainer.model.get_layer("crystal_system").units == len(CRYSTAL_SYSTEMS)
    trainer.fit(batches_of(mp40["train"], 16), epochs=1, batches_per_epoch=3)
    # the loss is CE(space group) + w * CE(crystal system), the system label derived from the space group
    x, y = mp40["train"].x[:32], mp40["train"].y[:32]
    names = [name for name, _, _ in CRYSTAL_SYSTEMS]
    systems = np.array([names.index(crystal_system(mp40["spacegroups"][i])) for i in y])
    sg_logits, system_logits = trainer.model.predict(x, verbose=0)
    ce = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    expected = float(ce(y, sg_logits)) + weight * float(ce(systems, system_logits))
    assert trainer.model.evaluate(x, (y, systems), verbose=0, return_dict=True)["loss"] == pytest.approx(expected, rel=1e-4)
    saved = load_model_run(run)  # model.keras: the space-group head alone
    assert saved.model.output_shape == (None, len(mp40["spacegroups"]))
    np.testing.assert_allclose(saved.model.predict(x, verbose=0), sg_logits, atol=1e-5)
    resumed = Trainer(config, mp40["spacegroups"], run_dir=run)  # checkpoints keep both heads
    assert resumed.step == 3 and len(resumed.model.outputs) == 2
