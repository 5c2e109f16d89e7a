"""The reduced experiment (`xrdgen experiment --quick`) end to end on the real mp40 and lab17 data.

Asserts only what must hold at any scale: both arms learn above chance on held-out structures of
unseen structure types, and every promised output file is written. Which arm wins is the
experiment's finding, not a test.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from scipy.stats import binomtest
from typer.testing import CliRunner

from xrdgen.cli import app

ROOT_CONFIG = "configs/reproduce.yaml"


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory, mp40_dir, lab17_dir):
    out = tmp_path_factory.mktemp("experiment")
    config = Path(__file__).resolve().parents[1] / ROOT_CONFIG
    result = CliRunner().invoke(
        app,
        ["experiment", "--config", str(config), "--quick", "-o", str(out),
         "--set", f"experiment.collection=[{mp40_dir}]", "--set", f"experiment.measured={lab17_dir}"],
    )
    assert result.exit_code == 0, result.output + repr(result.exception)
    return out, json.loads((out / "results.json").read_text())


def test_quick_experiment_writes_every_output(quick_run):
    out, results = quick_run
    for name in ("results.json", "results.md", "learning_curves.png", "recall_per_spacegroup.png", "config.yaml",
                 "command.txt", "data/statistics.json.gz", "data/test_part.json.gz"):
        assert (out / name).stat().st_size > 0, name
    for arm in ("synthetic", "structures"):
        run_dir = out / "runs" / f"{arm}_seed0"
        for name in ("model.keras", "meta.json", "history.json", "evaluation.json"):
            assert (run_dir / name).exists(), f"{arm}: {name}"
    assert (out / "learning_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = (out / "results.md").read_text()
    assert "test part (unseen structure types)" in table and "measured (lab17" in table
    assert "--quick" in (out / "command.txt").read_text()
    facts = results["facts"]
    assert facts["records"] == 700 and facts["n_classes"] >= 2
    assert set(facts["sets"]) == {"test", "randomized coordinates", "measured"}
    # arm B trains on exactly the statistics-part structures of the class list, two sizes each
    assert facts["baseline_patterns"] % 2 == 0 and facts["baseline_patterns"] > 0


def test_both_arms_learn_above_chance_on_unseen_structure_types(quick_run):
    _, results = quick_run
    chance = results["facts"]["chance"]["test"]["uniform_top1"]
    for run in results["runs"]:
        test = run["sets"]["test"]
        assert run["steps"] == 80
        correct = round(test["top1"] * test["n"])
        p_value = binomtest(correct, test["n"], chance, alternative="greater").pvalue
        assert p_value < 0.01, f"arm {run['arm']}: top-1 {test['top1']:.3f} of {test['n']} vs chance {chance:.3f} (p={p_value:.3g})"
        assert test["top5"] > results["facts"]["chance"]["test"]["uniform_top5"]


def test_repeating_the_command_reuses_data_and_finished_runs(quick_run, mp40_dir, lab17_dir):
    out, first = quick_run
    config = str(Path(__file__).resolve().parents[1] / ROOT_CONFIG)
    again = CliRunner().invoke(
        app,
        ["experiment", "--config", config, "--quick", "-o", str(out),
         "--set", f"experiment.collection=[{mp40_dir}]", "--set", f"experiment.measured={lab17_dir}"],
    )
    assert again.exit_code == 0, again.output + repr(again.exception)
    assert "data: reusing" in again.output and again.output.count("reusing the finished run") == 2
    second = json.loads((out / "results.json").read_text())
    assert second["summary"] == first["summary"]


def test_bad_options_are_one_line_errors(tmp_path):
    runner = CliRunner()
    bad_seeds = runner.invoke(app, ["experiment", "--seeds", "0,x", "-o", str(tmp_path)])
    assert bad_seeds.exit_code != 0 and "--seeds" in str(bad_seeds.exception)
    uneven = runner.invoke(app, ["experiment", "--set", "experiment.steps=30", "--set", "experiment.eval_every=20",
                                 "--set", "experiment.measured=null", "-o", str(tmp_path)])
    assert "multiple of experiment.eval_every" in str(uneven.exception)
