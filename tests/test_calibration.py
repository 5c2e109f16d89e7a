"""Calibrated confidence: the expected calibration error, temperature scaling, crystal-system probabilities.

The maths is checked on constructed data whose answer is known: an ECE worked out by hand, and the
logits of a model that is over-confident by construction (z = 5·true logits, labels drawn from the
true probabilities), where temperature scaling must find T ≈ 5 and the ECE on other held-out rows
must drop. The round trip through a real run directory and `xrdgen calibrate` is test_predict's.
"""

from __future__ import annotations

import numpy as np
import pytest

from xrdgen.errors import UserError
from xrdgen.evaluation.calibration import (
    expected_calibration_error,
    fit_temperature,
    negative_log_likelihood,
    reliability_bins,
    softmax,
)
from xrdgen.evaluation.metrics import SYSTEM_NAMES, evaluate, system_probabilities
from xrdgen.training.rundir import NO_TEMPERATURE, RunDirectory, read_meta, temperature_of, write_calibration


def test_ece_equals_the_hand_value():
    """15 bins of width 1/15; worked out by hand:
    bin (0, 1/15]:      {0.05 wrong}                 1/8 · |0 − 0.05|       = 0.00625
    bin (8/15, 9/15]:   {0.58 ✓, 0.58 ✓, 0.58 ✗}      3/8 · |2/3 − 0.58|     = 0.0325
    bin (9/15, 10/15]:  {0.62 ✓}                      1/8 · |1 − 0.62|       = 0.0475
    bin (14/15, 1]:     {0.95 ✓, 0.95 ✗, 1.0 ✓}       3/8 · |2/3 − 0.9666…|  = 0.1125
    ECE = 0.19875"""
    confidence = np.array([0.05, 0.58, 0.58, 0.58, 0.62, 0.95, 0.95, 1.0])
    correct = np.array([False, True, True, False, True, True, False, True])
    assert expected_calibration_error(confidence, correct) == pytest.approx(0.19875, abs=1e-12)
    bins = reliability_bins(confidence, correct)
    assert bins["count"] == [1, 0, 0, 0, 0, 0, 0, 0, 3, 1, 0, 0, 0, 0, 3]
    assert bins["accuracy"][14] == pytest.approx(2 / 3) and bins["confidence"][14] == pytest.approx(2.9 / 3)
    assert bins["accuracy"][1] is None  # empty bins have no accuracy, and no weight
    # a perfectly calibrated bin contributes nothing; confidence 0 lands in the first bin
    assert expected_calibration_error(np.array([0.0, 0.75, 0.75, 0.75, 0.75]), np.array([False, True, True, True, False])) == 0.0
    # with 2 bins: (0, 0.5] holds 0.05 (wrong), (0.5, 1] the rest
    two = expected_calibration_error(confidence, correct, n_bins=2)
    assert two == pytest.approx(1 / 8 * 0.05 + 7 / 8 * abs(5 / 7 - np.mean(confidence[1:])))


def _overconfident(rng, n, classes=12, scale=5.0):
    """True logits z (calibrated by construction: y ~ softmax(z)) and the network's scale·z."""
    z = rng.normal(0.0, 1.6, size=(n, classes))
    p = softmax(z)
    y = np.array([rng.choice(classes, p=row) for row in p])
    return scale * z, y, z


def test_temperature_scaling_repairs_an_overconfident_model():
    rng = np.random.default_rng(11)
    logits, labels, true_logits = _overconfident(rng, 6000)
    fit_rows, held = slice(0, 3000), slice(3000, None)
    fit = fit_temperature(logits[fit_rows], labels[fit_rows])
    assert fit.temperature == pytest.approx(5.0, rel=0.1)  # the scale the logits were blown up by
    assert fit.nll_after <= fit.nll_before
    assert fit.nll_before == pytest.approx(negative_log_likelihood(logits[fit_rows], labels[fit_rows]))

    def ece(temperature):
        p = softmax(logits[held], temperature)
        return expected_calibration_error(p.max(1), p.argmax(1) == labels[held])

    before, after = ece(1.0), ece(fit.temperature)
    truth = expected_calibration_error(softmax(true_logits[held]).max(1), softmax(true_logits[held]).argmax(1) == labels[held])
    print(f"held-out ECE {before:.3f} -> {after:.3f} (true probabilities: {truth:.3f}); T = {fit.temperature:.3f}")
    assert after < before / 3 and after < truth + 0.02
    assert negative_log_likelihood(logits[held], labels[held], fit.temperature) < negative_log_likelihood(
        logits[held], labels[held]
    )
    # dividing by T keeps the ranking: the accuracy of every k is unchanged
    np.testing.assert_array_equal(np.argsort(-logits[held], 1), np.argsort(-logits[held] / fit.temperature, 1))


def test_an_underconfident_model_is_sharpened_and_the_fit_is_the_nll_minimum():
    rng = np.random.default_rng(12)
    logits, labels, _ = _overconfident(rng, 3000, scale=0.4)
    fit = fit_temperature(logits, labels)
    assert fit.temperature == pytest.approx(0.4, rel=0.1) and fit.nll_after < fit.nll_before
    grid = np.exp(np.linspace(np.log(0.05), np.log(20), 400))
    assert fit.nll_after <= min(negative_log_likelihood(logits, labels, t) for t in grid) + 1e-7


def test_fit_temperature_rejects_what_it_cannot_fit():
    with pytest.raises(ValueError, match="n > 0"):
        fit_temperature(np.zeros((0, 3)), np.zeros(0))
    with pytest.raises(ValueError, match="indices"):
        fit_temperature(np.zeros((2, 3)), np.array([0, 3]))


def test_crystal_system_probability_is_the_sum_over_its_space_groups():
    classes = [2, 14, 15, 62, 139, 166, 194, 225, 227]
    rng = np.random.default_rng(5)
    p = softmax(rng.normal(size=(50, len(classes))))
    systems = system_probabilities(p, classes)
    np.testing.assert_allclose(systems.sum(1), 1.0)
    monoclinic = SYSTEM_NAMES.index("monoclinic")
    np.testing.assert_allclose(systems[:, monoclinic], p[:, 1] + p[:, 2])
    np.testing.assert_allclose(systems[:, SYSTEM_NAMES.index("cubic")], p[:, 7] + p[:, 8])
    # two monoclinic groups at 0.3 each beat a single cubic one at 0.4 by system, not by space group
    row = np.array([[0.0, 0.3, 0.3, 0.0, 0.0, 0.0, 0.0, 0.4, 0.0]])
    ev = evaluate(row, [14], classes)
    assert ev.top_k_accuracy[0] == 0.0 and ev.system_confusion.trace() == 0 and ev.system_accuracy_summed == 1.0


def test_evaluation_names_and_separates_labels_outside_the_class_list():
    classes = [14, 62, 225]
    p = np.array([[0.7, 0.2, 0.1], [0.1, 0.8, 0.1], [0.2, 0.2, 0.6], [0.5, 0.3, 0.2]])
    ev = evaluate(p, [14, 62, 221, 2], classes, names=["a", "b", "c", "d"])
    d = ev.to_dict()
    assert d["n"] == d["n_scored"] == 4 and d["n_outside_class_list"] == 2
    assert d["outside_class_list"] == [{"name": "c", "spacegroup": 221}, {"name": "d", "spacegroup": 2}]
    assert d["top_k_accuracy"]["1"] == 0.5 and d["top_k_accuracy_in_class_list"]["1"] == 1.0


def test_temperature_round_trips_through_meta_json(tmp_path):
    RunDirectory(tmp_path).write_meta({"spacegroups": [14, 62], "input": {"grid": {}}})
    assert temperature_of(read_meta(tmp_path), tmp_path / "meta.json") == (1.0, NO_TEMPERATURE)  # none stored: T = 1, said
    write_calibration(tmp_path, {"temperature": 2.718281828, "fitted_on": "64 held-out synthetic patterns"})
    meta = read_meta(tmp_path)
    assert meta["spacegroups"] == [14, 62] and meta["input"] == {"grid": {}}  # the rest of meta.json untouched
    assert temperature_of(meta, tmp_path / "meta.json") == (2.718281828, "fitted on 64 held-out synthetic patterns")
    for bad in ({"temperature": -1.0}, {"temperature": "hot"}, {"fitted_on": "x"}):
        with pytest.raises(UserError) as error:
            temperature_of({"calibration": bad}, tmp_path / "meta.json")
        assert str(error.value).startswith(f"{tmp_path / 'meta.json'}: bad calibration entry") and "\n" not in str(error.value)


def test_temperature_on_measured_patterns_is_cross_validated(tmp_path):
    """A real (tiny) Keras model whose logits are 5x too confident, on labelled inputs: the stored T is the
    fit on every pattern (≈ 5), and the cross-validated ECE scales each fold with the T of the others."""
    import keras

    from xrdgen.config import GridConfig
    from xrdgen.training.calibrate import calibrate_on_measured
    from xrdgen.training.datasets import LabelledSet
    from xrdgen.training.rundir import InputSpec, TrainedModel

    rng = np.random.default_rng(13)
    logits, labels, _ = _overconfident(rng, 600)
    classes = list(range(1, logits.shape[1] + 1))  # space groups 1..12
    grid = GridConfig(two_theta_min=5.0, two_theta_max=5.0 + 0.01 * (logits.shape[1] - 1), step=0.01)
    model = keras.Sequential([keras.Input((logits.shape[1],)), keras.layers.Identity()])  # inputs are the logits
    trained = TrainedModel(model, classes, InputSpec(grid, 1.54056, False), "identity", {}, tmp_path)
    measured = LabelledSet("measured", logits.astype(np.float32), np.asarray(classes)[labels], [str(i) for i in range(600)])
    result = calibrate_on_measured(trained, measured, folds=5, seed=0)
    assert result["temperature"] == pytest.approx(fit_temperature(logits, labels).temperature, rel=1e-6)
    assert result["temperature"] == pytest.approx(5.0, rel=0.15) and not result["at_bound"]
    assert result["ece_cross_validated"] < result["ece_before"] / 2  # scaled by the other folds' T: calibrated too
    assert result["folds"] == 5 and "5-fold" in result["fitted_on"] and result["patterns"] == 600
