"""`xrdgen predict`, `xrdgen evaluate` and `xrdgen calibrate` with a small model really trained on simulated patterns.

The model: a tiny 1D CNN saved in the run-directory format (xrdgen.training.rundir), trained for a
few epochs on patterns of the 17 lab17 structures simulated by pymatgen (an independent simulator)
with random peak widths, background and noise. It is small, but trained: its accuracy on the
*measured* lab17 patterns is asserted above chance, and its accuracy on the project's simulation of
the same structures checks that simulator against pymatgen's on the way. Its temperature is fitted
on the generator's crystals of the lab17 space groups (statistics of the 17 structures); all 113
RRUFF patterns of rruff_dev are scored by one `xrdgen evaluate`, most of them outside its class list.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from conftest import SHARED_DATA, shared_data
from typer.testing import CliRunner

from xrdgen.cli import app
from xrdgen.collection.reading import read_collection
from xrdgen.config import Config, GridConfig, load_config
from xrdgen.errors import UserError
from xrdgen.evaluation.metrics import evaluate
from xrdgen.geometry import crystal_system
from xrdgen.measured.cif_label import structure_label
from xrdgen.measured.readers import read_pattern
from xrdgen.statistics.build import build_statistics
from xrdgen.training.rundir import load_model_run

GRID = GridConfig(step=0.05)  # coarser than the default: a small, quick model; the readers must honour it
CU_KA1 = 1.54056
RRUFF_DEV = SHARED_DATA / "rruff_dev"


def _lab17_structures(lab17_dir: Path):
    from pymatgen.core import Structure

    folders = sorted(p for p in lab17_dir.iterdir() if p.is_dir())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        structures = [Structure.from_file(f / "structure.cif") for f in folders]
    labels = [structure_label(f / "structure.cif", 0.1).spacegroup for f in folders]
    return folders, structures, labels


def _training_patterns(structures, labels, classes, per_structure: int, rng):
    """pymatgen peaks, Gaussian profiles of random width, a decaying background and noise; max 1."""
    from pymatgen.analysis.diffraction.xrd import XRDCalculator

    calculator = XRDCalculator(wavelength=CU_KA1)
    grid = GRID.two_theta()
    xs, ys = [], []
    for structure, label in zip(structures, labels):
        peaks = calculator.get_pattern(structure, two_theta_range=(GRID.two_theta_min, GRID.two_theta_max))
        position, height = np.array(peaks.x), np.array(peaks.y)
        for _ in range(per_structure):
            sigma = rng.uniform(0.08, 0.5) / 2.3548
            x = (height[:, None] * np.exp(-0.5 * ((grid[None] - position[:, None]) / sigma) ** 2)).sum(0)
            x = x / x.max() + rng.uniform(0, 0.4) * np.exp(-(grid - grid[0]) / rng.uniform(10, 60)) + rng.uniform(0, 0.2)
            x = x + rng.normal(0, rng.uniform(0, 0.03), grid.size)
            x = (x - x.min()) / np.ptp(x)
            xs.append(x.astype(np.float32))
            ys.append(classes.index(label))
    return np.stack(xs), np.array(ys)


@pytest.fixture(scope="module")
def trained_run(lab17_dir, tmp_path_factory):
    """A run directory (model.keras + meta.json as the Trainer writes it) of a tiny trained CNN."""
    import keras

    folders, structures, labels = _lab17_structures(lab17_dir)
    classes = sorted(set(labels))
    rng = np.random.default_rng(7)
    x, y = _training_patterns(structures, labels, classes, 48, rng)
    keras.utils.set_random_seed(7)
    model = keras.Sequential(
        [
            keras.Input((GRID.n_points,)),
            keras.layers.Reshape((GRID.n_points, 1)),
            keras.layers.Conv1D(16, 15, strides=2, activation="relu"),
            keras.layers.MaxPooling1D(3),
            keras.layers.Conv1D(32, 9, activation="relu"),
            keras.layers.MaxPooling1D(3),
            keras.layers.Conv1D(32, 5, activation="relu"),
            keras.layers.GlobalMaxPooling1D(),
            keras.layers.Dense(len(classes)),  # logits, as the contract says
        ]
    )
    model.compile(keras.optimizers.Adam(3e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    history = model.fit(x, y, batch_size=32, epochs=12, verbose=0, shuffle=True)
    assert history.history["accuracy"][-1] > 0.9  # it did learn the simulated patterns

    run = tmp_path_factory.mktemp("run")
    model.save(run / "model.keras")
    config = Config(grid=GRID)
    meta = {  # written by hand in the documented format, not through the code under test
        "version": 2,
        "spacegroups": classes,
        "model": "tiny_cnn",
        "input": {
            "grid": {"two_theta_min": GRID.two_theta_min, "two_theta_max": GRID.two_theta_max, "step": GRID.step},
            "wavelength": CU_KA1,
            "preprocessing": {"sqrt_scale": False},
        },
        "n_classes": len(classes),
        "config": config.model_dump(mode="json"),
    }
    (run / "meta.json").write_text(json.dumps(meta))
    return run, dict(zip([f.name for f in folders], labels)), classes


def _invoke(*args, env=None):
    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=False, env=env)


def test_predict_every_lab17_pattern_and_skip_a_bad_file(trained_run, lab17_dir, tmp_path):
    run, truth, classes = trained_run
    files = sorted(lab17_dir.glob("*/pattern.csv"))
    bad = tmp_path / "bad.xy"
    bad.write_text("not a pattern\nat all\n")  # the readers' own messages are test_measured's
    out = tmp_path / "predictions.json"
    plots = tmp_path / "plots"
    result = _invoke("predict", run, *files[:8], bad, *files[8:], "--top-k", 3, "--json", out, "--plot", plots)
    assert result.exit_code == 1, result.output  # some file failed, the others were predicted
    assert f"skipped: {bad}: " in result.output
    # no temperature in this run's meta.json: it still predicts, with T = 1, and says so
    assert "T = 1 (none stored, uncalibrated: run `xrdgen calibrate`)" in result.output

    payload = json.loads(out.read_text())
    assert payload["temperature"] == 1.0 and payload["confidence_threshold"] == Config().evaluation.confidence_threshold
    assert [f["file"] for f in payload["failed"]] == [str(bad)] and payload["failed"][0]["error"].startswith(f"{bad}: ")
    predictions = payload["predictions"]
    assert [p["file"] for p in predictions] == [str(f) for f in files]
    ranks = []
    for p in predictions:
        probabilities = [row["probability"] for row in p["top_k"]]
        assert len(p["top_k"]) == 3 and probabilities == sorted(probabilities, reverse=True)
        assert 0 < sum(probabilities) <= 1 + 1e-6
        assert all(row["spacegroup"] in classes for row in p["top_k"])
        assert 0.4 < p["covered_fraction"] <= 1 and p["wavelength_source"] == "assumed (model's)"
        assert Path(p["plot"]).stat().st_size > 5000
        sgs = [row["spacegroup"] for row in p["top_k"]]
        truth_sg = truth[Path(p["file"]).parent.name]
        ranks.append(sgs.index(truth_sg) if truth_sg in sgs else 99)
    assert len(list(plots.glob("*.png"))) == 17
    # trained on simulations only, yet it reads real measurements far above chance (3/15 for top-3)
    assert np.mean(np.array(ranks) < 3) >= 0.4, ranks
    # the table printed names each file and its best space group
    first = predictions[0]
    assert first["file"] in result.output and first["top_k"][0]["symbol"] in result.output


def test_predict_wavelength_option_and_xrdml(trained_run, lab17_dir, tmp_path):
    """An XRDML file saying Cu Kα1 predicts what the CSV does; a wrong --wavelength changes the input."""
    from test_measured import write_xrdml  # pytest puts tests/ on sys.path (no __init__.py)

    run, truth, classes = trained_run
    reference = np.loadtxt(lab17_dir / "PbSe" / "pattern.csv", delimiter=",")
    xrdml = tmp_path / "PbSe.xrdml"
    write_xrdml(xrdml, reference[:, 0], reference[:, 1], CU_KA1, listed=False)
    out_csv, out_xml, out_mo = tmp_path / "csv.json", tmp_path / "xml.json", tmp_path / "mo.json"
    assert _invoke("predict", run, lab17_dir / "PbSe" / "pattern.csv", "--json", out_csv).exit_code == 0
    assert _invoke("predict", run, xrdml, "--json", out_xml).exit_code == 0
    assert _invoke("predict", run, xrdml, "--json", out_mo, "--wavelength", 0.7093).exit_code == 0
    csv_p, xml_p, mo_p = (json.loads(p.read_text())["predictions"][0] for p in (out_csv, out_xml, out_mo))
    assert xml_p["wavelength_source"] == "file" and mo_p["wavelength_source"] == "command line"
    assert [r["spacegroup"] for r in xml_p["top_k"]] == [r["spacegroup"] for r in csv_p["top_k"]]
    np.testing.assert_allclose([r["probability"] for r in xml_p["top_k"]], [r["probability"] for r in csv_p["top_k"]], rtol=1e-4)
    assert mo_p["covered_range"][1] > 170  # Mo 2θ up to 80° is Cu 2θ beyond 170°: conversion applied
    assert mo_p["measured_range"] == xml_p["measured_range"] == pytest.approx([reference[0, 0], reference[-1, 0]], abs=1e-4)
    assert xml_p["covered_range"] == pytest.approx(xml_p["measured_range"]) and xml_p["grid_range"] == [5.0, 90.0]
    # the printed line: the file's range, the same at the model's wavelength, and the share of the grid covered
    mo = _invoke("predict", run, xrdml, "--wavelength", 0.7093)
    lo, hi = mo_p["covered_range"]
    assert (
        f"λ 0.7093 Å, command line; 2θ {reference[0, 0]:.1f}–{reference[-1, 0]:.1f}° measured = {lo:.1f}–{hi:.1f}° at the model's 1.5406 Å"
        in mo.output
    )
    assert f"covering {mo_p['covered_fraction']:.0%} of the model's 5–90° grid" in mo.output


def test_evaluate_lab17_measured(trained_run, lab17_dir, tmp_path):
    run, truth, classes = trained_run
    out = tmp_path / "report"
    result = _invoke("evaluate", run, lab17_dir, "--out", out)
    assert result.exit_code == 0, result.output
    summary = json.loads((out / "summary.json").read_text())
    (measured,) = summary["sets"]
    assert measured["n"] == 17 and measured["n_outside_class_list"] == 0 and not measured["skipped"]
    top_k = [measured["top_k_accuracy"][str(k)] for k in range(1, 11)]
    assert all(a <= b for a, b in zip(top_k, top_k[1:]))
    assert top_k[2] >= 0.4  # as predict: far above the 0.2 of chance
    per_sg = measured["per_spacegroup"]
    assert {int(k): v["count"] for k, v in per_sg.items()} == {sg: list(truth.values()).count(sg) for sg in set(truth.values())}
    assert sum(v["correct"] for v in per_sg.values()) == round(top_k[0] * 17)
    confusion = np.array(measured["crystal_system_confusion"])
    assert confusion.sum() == 17
    systems = measured["crystal_systems"]
    for system in systems:  # row sums: the true crystal systems of the 17 CIFs
        assert confusion[systems.index(system)].sum() == sum(crystal_system(sg) == system for sg in truth.values())
    for figure in summary["figures"].values():
        assert Path(figure).stat().st_size > 10000
    assert {s["name"] for s in summary["samples"]} == set(truth)


def test_evaluate_metrics_against_brute_force():
    rng = np.random.default_rng(3)
    classes = sorted(rng.choice(np.arange(1, 231), 40, replace=False).tolist())
    labels = rng.choice(classes + [1, 2, 229], 500)  # a few labels outside the class list
    logits = rng.normal(size=(500, 40))
    probabilities = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    ev = evaluate(probabilities, labels, classes)
    for k in range(1, 11):
        hits = sum(label in [classes[j] for j in np.argsort(-row)[:k]] for row, label in zip(probabilities, labels))
        assert ev.top_k_accuracy[k - 1] == pytest.approx(hits / 500)
    assert ev.n_outside_classes == sum(label not in classes for label in labels)
    top1 = [classes[int(np.argmax(row))] for row in probabilities]
    for sg, row in ev.per_spacegroup.items():
        mask = labels == sg
        assert row["count"] == mask.sum()
        assert row["correct"] == sum(t == sg for t, m in zip(top1, mask) if m)
    assert np.trace(ev.system_confusion) == sum(crystal_system(a) == crystal_system(b) for a, b in zip(labels, top1))
    assert [crystal_system(n) for n in (1, 2, 3, 15, 16, 74, 75, 142, 143, 167, 168, 194, 195, 230)] == [
        "triclinic",
        "triclinic",
        "monoclinic",
        "monoclinic",
        "orthorhombic",
        "orthorhombic",
        "tetragonal",
        "tetragonal",
        "trigonal",
        "trigonal",
        "hexagonal",
        "hexagonal",
        "cubic",
        "cubic",
    ]


def test_evaluate_simulated_and_randomized(trained_run, lab17_dir, tmp_path):
    """The lab17 structures simulated by the project's simulator, unmodified and with coordinates re-drawn."""
    run, truth, classes = trained_run
    out = tmp_path / "simulated"
    result = _invoke("evaluate", run, lab17_dir, "--simulate", "--out", out, "--seed", 1, "--randomize", "coordinates")
    assert result.exit_code == 0, result.output
    sets = json.loads((out / "summary.json").read_text())["sets"]
    assert [s["name"] for s in sets] == ["unmodified", "randomized coordinates"]
    unmodified, randomized = sets
    assert unmodified["name"] == "unmodified" and unmodified["n"] + len(unmodified["skipped"]) == 17
    assert unmodified["n"] >= 15
    # trained on pymatgen's patterns of these very crystals: B's simulation of them must be recognised
    assert unmodified["top_k_accuracy"]["1"] >= 0.7, unmodified["top_k_accuracy"]
    assert randomized["n"] >= 10 and randomized["n"] + len(randomized["skipped"]) == 17
    assert set(randomized["per_spacegroup"]) <= set(unmodified["per_spacegroup"])  # labels kept


def test_cli_errors_are_one_line(trained_run, tmp_path):
    """A bad model directory is one UserError line; through the real entry point, a batch of only bad files."""
    run, _, _ = trained_run
    missing = CliRunner().invoke(app, ["predict", "--model", str(tmp_path / "nope"), "x.xy"])
    assert isinstance(missing.exception, UserError)
    assert str(missing.exception) == f"{tmp_path / 'nope'}: no such model run directory"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    exe = [sys.executable, "-c", "from xrdgen.cli import main; main()"]
    only_bad = subprocess.run(exe + ["predict", str(run), str(empty)], capture_output=True, text=True, env=env)
    assert only_bad.returncode == 1 and f"skipped: {empty}: empty file" in only_bad.stderr
    assert "Traceback" not in only_bad.stderr
    bad_wavelength = CliRunner().invoke(app, ["predict", str(run), str(empty), "-w", "9"])
    assert str(bad_wavelength.exception) == "--wavelength: wavelength 9 Å given is outside 0.05–5 Å"


@pytest.mark.parametrize("drop", ["input", "wavelength"])
def test_meta_without_input_spec_is_one_line_exit_2(trained_run, lab17_dir, tmp_path, drop):
    """A hand-written meta.json without the input spec (or without its wavelength) stops predict with
    exit status 2 and one line naming the file, instead of guessing a wavelength."""
    run, _, _ = trained_run
    old = tmp_path / "old_run"
    old.mkdir()
    (old / "model.keras").symlink_to(run / "model.keras")
    meta = json.loads((run / "meta.json").read_text())
    if drop == "input":
        del meta["input"]
        expected = f"error: {old / 'meta.json'}: no input spec (grid, wavelength, preprocessing)"
    else:
        del meta["input"]["wavelength"]
        expected = f"error: {old / 'meta.json'}: bad input spec (missing 'wavelength')"
    (old / "meta.json").write_text(json.dumps(meta))
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "from xrdgen.cli import main; main()",
            "predict",
            str(old),
            str(lab17_dir / "PbSe" / "pattern.csv"),
        ],
        capture_output=True,
        text=True,
        env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"},
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(expected), done.stderr


# ------------------------------------------------------------------------------ calibrated confidence
@pytest.fixture(scope="module")
def lab17_statistics(lab17_dir, trained_run, tmp_path_factory):
    """Statistics of the lab17 structures, every space group kept: the tiny model's class list but for
    the disordered MOF's (statistics take ordered structures only)."""
    config = load_config(None, {"statistics.min_count_per_spacegroup": 1})
    entries = read_collection(lab17_dir, config, progress=False).entries
    statistics = build_statistics(entries, config.statistics)
    assert set(trained_run[2]) - {int(sg) for sg in statistics.spacegroups} == {217}
    return statistics.save(tmp_path_factory.mktemp("lab17_stats") / "statistics.json")


@pytest.fixture(scope="module")
def calibrated_run(trained_run, lab17_statistics, tmp_path_factory):
    """A copy of the tiny run whose temperature `xrdgen calibrate` fitted on 48 fresh generator patterns."""
    run = tmp_path_factory.mktemp("calibrated")
    (run / "model.keras").symlink_to(trained_run[0] / "model.keras")
    shutil.copy(trained_run[0] / "meta.json", run / "meta.json")
    result = _invoke("calibrate", run, lab17_statistics, "--patterns", 48)
    assert result.exit_code == 0, result.output
    return run, result.output


def test_calibrate_stores_the_temperature_and_load_reads_it_back(calibrated_run):
    run, output = calibrated_run
    calibration = json.loads((run / "meta.json").read_text())["calibration"]
    print({k: calibration[k] for k in ("temperature", "nll_before", "nll_after", "ece_before", "ece_after", "accuracy")})
    assert calibration["patterns"] == 48 and "PatternStream" in calibration["fitted_on"]
    assert calibration["nll_after"] <= calibration["nll_before"]  # T = 1 was a candidate: the fit cannot be worse
    trained = load_model_run(run)
    assert trained.temperature == calibration["temperature"] and 0.05 <= trained.temperature <= 20
    assert trained.temperature_source.startswith("fitted on 48 held-out synthetic patterns")
    assert f"temperature T = {calibration['temperature']:.4g}" in output


def test_predict_prints_calibrated_probabilities_and_the_crystal_system(calibrated_run, lab17_dir, tmp_path):
    run, _ = calibrated_run
    trained = load_model_run(run)
    file = lab17_dir / "Al2O3" / "pattern.csv"
    z = trained.model.predict(trained.model_input(read_pattern(file)).x[None], verbose=0)[0].astype(np.float64)
    p = np.exp((z - z.max()) / trained.temperature)
    p /= p.sum()  # the calibrated probabilities by hand: softmax(z / T)
    systems = {}
    for sg, prob in zip(trained.spacegroups, p):
        systems[crystal_system(sg)] = systems.get(crystal_system(sg), 0.0) + prob
    best = max(systems, key=systems.get)

    out = tmp_path / "uncertain.json"
    result = _invoke("predict", run, file, "--json", out, "--top-k", 3, "--threshold", 1.0)
    assert result.exit_code == 0, result.output
    entry = json.loads(out.read_text())["predictions"][0]
    np.testing.assert_allclose([r["probability"] for r in entry["top_k"]], np.sort(p)[::-1][:3], rtol=1e-5)
    assert entry["crystal_system"]["name"] == best and entry["crystal_system"]["probability"] == pytest.approx(
        systems[best], rel=1e-5
    )
    assert f"T = {trained.temperature:.4g} (fitted on 48 held-out synthetic patterns" in result.output
    assert "calibrated p" in result.output and f"{entry['top_k'][0]['probability']:.4f}" in result.output
    runner_up = sorted(systems, key=systems.get)[-2]
    assert (
        f"crystal system: {best} (summed probability {systems[best]:.4f}; then {runner_up} {systems[runner_up]:.4f}"
        in result.output
    )
    # every top-1 probability is below a threshold of 1: uncertain, the answer falls back to the crystal system
    assert entry["uncertain"] and entry["answer"] == f"crystal system {best}" and "UNCERTAIN" in result.output
    confident = tmp_path / "confident.json"
    result = _invoke("predict", run, file, "--json", confident, "--threshold", 0.0)
    entry = json.loads(confident.read_text())["predictions"][0]
    assert not entry["uncertain"] and entry["answer"].startswith(f"space group {entry['top_k'][0]['spacegroup']} ")
    assert "UNCERTAIN" not in result.output


def test_evaluate_reports_the_ece_before_and_after_and_a_reliability_diagram(calibrated_run, lab17_dir, tmp_path):
    run, _ = calibrated_run
    temperature = load_model_run(run).temperature
    result = _invoke("evaluate", run, lab17_dir, "--out", tmp_path / "report")
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    calibration = summary["sets"][0]["calibration"]
    print({k: v for k, v in calibration.items() if not k.startswith("bins")})
    assert summary["temperature"]["value"] == calibration["temperature"] == temperature
    assert sum(calibration["bins_before"]["count"]) == sum(calibration["bins_after"]["count"]) == 17
    assert 0 <= calibration["ece_before"] <= 1 and 0 <= calibration["ece_after"] <= 1
    assert Path(summary["figures"]["reliability"]).stat().st_size > 10000
    assert (
        f"ECE {100 * calibration['ece_before']:.1f}% uncalibrated -> {100 * calibration['ece_after']:.1f}% at T = "
        in result.output
    )


def test_evaluate_scores_all_113_rruff_patterns_in_one_command(trained_run, tmp_path):
    """The DIF files label the patterns; labels outside the class list are counted and named, not dropped."""
    shared_data("rruff_dev")
    run, _, classes = trained_run
    result = _invoke("evaluate", run, RRUFF_DEV, "--out", tmp_path / "rruff")
    assert result.exit_code == 0, result.output
    summary = json.loads((tmp_path / "rruff" / "summary.json").read_text())
    labels = {
        Path(item["file"]).name.split("_")[0]: item["sg_number"] for item in json.loads((RRUFF_DEV / "labels.json").read_text())
    }
    (scored,) = summary["sets"]
    assert summary["patterns_scored"] == scored["n_scored"] == scored["n"] == 113 == len(labels) and not scored["skipped"]
    assert {s["name"]: s["spacegroup"] for s in summary["samples"]} == labels  # the DIF labels, as labels.json has them
    outside = {o["name"]: o["spacegroup"] for o in scored["outside_class_list"]}
    assert outside == {name: sg for name, sg in labels.items() if sg not in classes}
    assert scored["n_outside_class_list"] == len(outside) and "outside the model's class list" in result.output
    assert sum(v["count"] for v in scored["per_spacegroup"].values()) == 113
    assert "scored 113 measured patterns" in result.output
    # every wavelength is the DIF file's: Cu Kα but for zinc R070497, whose peaks (16.5°, 17.7°, 19.5°) are Mo Kα's
    wavelengths = {s["name"]: s["wavelength"] for s in summary["samples"] if s["wavelength_source"] == "file"}
    assert len(wavelengths) == 113 and wavelengths.pop("R070497") == pytest.approx(0.7098)
    assert all(1.5405 <= w <= 1.5420 for w in wavelengths.values())
    # 95 % intervals: patterns of one mineral resampled together (76 minerals), each interval around its estimate
    minerals = {item["mineral"] for item in json.loads((RRUFF_DEV / "labels.json").read_text())}
    assert scored["intervals_resample"] == f"{len(minerals)} minerals" and "bootstrap over 76 minerals" in result.output
    estimates = {"top1": scored["top_k_accuracy"]["1"], "top5": scored["top_k_accuracy"]["5"]}
    estimates["crystal_system"] = scored["crystal_system_accuracy_summed_probability"]
    for name, value in estimates.items():
        lo, hi = scored["intervals_95"][name]
        assert lo <= value <= hi and hi - lo > 0.0, name


# ------------------------------------------------------------------------------------ shipped model
def _entry_point(*args, env=None):
    """The real `xrdgen` entry point in a subprocess: exit status and stderr as a user sees them."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **(env or {})}
    exe = [sys.executable, "-c", "from xrdgen.cli import main; main()"]
    return subprocess.run(exe + [str(a) for a in args], capture_output=True, text=True, env=env)


def test_ship_a_run_and_predict_without_a_model(trained_run, calibrated_run, lab17_dir, tmp_path):
    """`xrdgen model ship` copies a calibrated run without optimizer state; `predict FILE...` then answers
    from it as `--model RUN` does (float32 storage: the same probabilities; float16: the same ranking)."""
    run, _ = calibrated_run
    files = sorted(lab17_dir.glob("*/pattern.csv"))
    shipped, half = tmp_path / "pretrained", tmp_path / "pretrained16"
    result = _invoke("model", "ship", run, "--to", shipped)
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in shipped.iterdir()) == ["meta.json", "model.json", "weights.npz"]  # no model.keras, no optimizer
    size = sum(p.stat().st_size for p in shipped.iterdir())
    assert size < 25e6 and f"{size / 1e6:.2f} MB" in result.output
    meta, run_meta = json.loads((shipped / "meta.json").read_text()), json.loads((run / "meta.json").read_text())
    for key in ("spacegroups", "input", "model", "config", "calibration"):
        assert meta[key] == run_meta[key]
    import keras

    parameters = keras.models.load_model(run / "model.keras", compile=False).count_params()
    assert meta["shipped"]["parameters"] == parameters and meta["shipped"]["weights_dtype"] == "float32"
    assert _invoke("model", "ship", run, "--to", half, "--float16").exit_code == 0
    with np.load(half / "weights.npz") as stored:
        assert {stored[name].dtype for name in stored.files} == {np.dtype(np.float16)}
    assert (half / "weights.npz").stat().st_size < 0.6 * (shipped / "weights.npz").stat().st_size

    by_run, by_shipped, by_half = tmp_path / "run.json", tmp_path / "shipped.json", tmp_path / "half.json"
    assert _invoke("predict", "--model", run, *files, "--json", by_run, "-k", 3).exit_code == 0
    result = _invoke("predict", *files, "--json", by_shipped, "-k", 3, env={"XRDGEN_PRETRAINED": str(shipped)})
    assert result.exit_code == 0, result.output
    assert f"model: shipped with xrdgen (tiny_cnn, {len(meta['spacegroups'])} space groups" in result.output
    assert _invoke("predict", *files, "--json", by_half, "-k", 3, env={"XRDGEN_PRETRAINED": str(half)}).exit_code == 0
    from_run, from_shipped, from_half = (json.loads(p.read_text()) for p in (by_run, by_shipped, by_half))
    assert from_shipped["temperature"] == from_run["temperature"] == meta["calibration"]["temperature"]
    for a, b, c in zip(from_run["predictions"], from_shipped["predictions"], from_half["predictions"]):
        assert [r["spacegroup"] for r in a["top_k"]] == [r["spacegroup"] for r in b["top_k"]]
        np.testing.assert_allclose([r["probability"] for r in b["top_k"]], [r["probability"] for r in a["top_k"]], rtol=1e-5)
        assert c["top_k"][0]["spacegroup"] == a["top_k"][0]["spacegroup"]
        np.testing.assert_allclose([r["probability"] for r in c["top_k"]], [r["probability"] for r in a["top_k"]], atol=0.02)
    loaded = load_model_run(half)  # float16 storage, float32 model
    assert {str(w.dtype) for w in loaded.model.weights} == {"float32"}

    report = tmp_path / "report"
    result = _invoke("evaluate", "default", lab17_dir, "--out", report, env={"XRDGEN_PRETRAINED": str(shipped)})
    assert result.exit_code == 0, result.output
    summary = json.loads((report / "summary.json").read_text())
    assert summary["sets"][0]["n"] == 17 and summary["shipped"]["parameters"] == parameters


def test_ship_refuses_runs_without_calibration_or_model_and_predict_without_a_shipped_model(
    trained_run, calibrated_run, lab17_dir, tmp_path
):
    uncalibrated, _, _ = trained_run
    done = _entry_point("model", "ship", uncalibrated, "--to", tmp_path / "a")
    assert done.returncode == 2 and done.stderr.strip() == (
        f"error: {uncalibrated}: no calibration in meta.json; fit it first with `xrdgen calibrate {uncalibrated} STATS`"
    )
    unfinished = tmp_path / "unfinished"
    unfinished.mkdir()
    shutil.copy(calibrated_run[0] / "meta.json", unfinished / "meta.json")
    done = _entry_point("model", "ship", unfinished, "--to", tmp_path / "b")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert f"{unfinished}: no model.keras (the run has not finished)" in done.stderr
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()

    nothing = tmp_path / "nothing_shipped"
    done = _entry_point("predict", lab17_dir / "PbSe" / "pattern.csv", env={"XRDGEN_PRETRAINED": str(nothing)})
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 2 and len(lines) == 1 and "Traceback" not in done.stderr
    assert lines[0].startswith(f"error: no model is shipped in {nothing} yet: give a trained run directory with --model RUN_DIR")


def test_shipped_facts_count_the_stages_a_run_started_from(tmp_path, monkeypatch):
    """A fine-tuned model has seen its start run's patterns too (training.init_from, followed back)."""
    from xrdgen.training.pretrained import _earlier_stages

    monkeypatch.chdir(tmp_path)  # init_from is written relative to where the run was started
    for name, start in (("pure", None), ("measured", "pure"), ("longer", "measured")):
        Path(name).mkdir()
        Path(name, "meta.json").write_text(json.dumps({"config": {"training": {"init_from": start}}}))
    meta = json.loads(Path("longer", "meta.json").read_text())
    assert [stage.path.name for stage in _earlier_stages(meta)] == ["measured", "pure"]
    Path("pure", "meta.json").write_text(json.dumps({"config": {"training": {"init_from": "longer"}}}))  # a cycle
    assert len(_earlier_stages(meta)) == 10
