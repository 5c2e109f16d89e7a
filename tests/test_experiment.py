"""The reduced experiment (`xrdgen experiment --quick`) end to end on the real mp40 and lab17 data.

Asserts what must hold at any scale: the counts of every stage add up exactly (nothing lost
between read, split, class list and labelled sets), both arms learn above chance on held-out
structures of unseen structure types, and every promised output file is written. Which arm wins
is the experiment's finding, not a test.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from scipy.stats import binomtest
from typer.testing import CliRunner

from xrdgen.cli import app, main
from xrdgen.experiment.run import QUICK

ROOT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "reproduce.yaml"


def _quick_command(out: Path, mp40_dir: Path, lab17_dir: Path) -> list[str]:
    return ["experiment", "--config", str(ROOT_CONFIG), "--quick", "-o", str(out),
            "--set", f"experiment.collection=[{mp40_dir}]", "--set", f"experiment.measured={lab17_dir}"]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory, mp40_dir, lab17_dir):
    out = tmp_path_factory.mktemp("experiment")
    result = CliRunner().invoke(app, _quick_command(out, mp40_dir, lab17_dir))
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


def test_counts_add_up_from_records_to_labelled_sets(quick_run, lab17_dir):
    _, results = quick_run
    facts = results["facts"]
    assert facts["records"] == QUICK["experiment.max_structures"]
    assert facts["read"] + facts["skipped"] == facts["records"]
    assert facts["statistics_part"] + facts["test_part"] == facts["read"]
    assert facts["n_classes"] == len(facts["classes"]) >= 2
    assert sorted(int(sg) for sg in facts["statistics_counts"]) == sorted(facts["classes"])
    assert min(facts["statistics_counts"].values()) >= QUICK["statistics.min_count_per_spacegroup"]
    assert set(facts["sets"]) == {"test", "randomized coordinates", "measured"}
    # every test-part structure of the class list is simulated or skipped with a reason, in each variant
    for name in ("test", "randomized coordinates"):
        assert facts["sets"][name] + facts["set_skipped"][name] == facts["test_part_in_classes"], name
    # every measured sample is in the class list, outside it, or skipped with a reason
    samples = sum(1 for p in lab17_dir.iterdir() if p.is_dir())
    assert facts["measured_total"] + len(facts["measured_skipped"]) == samples
    assert facts["sets"]["measured"] + len(facts["measured_outside_classes"]) == facts["measured_total"]
    # arm B: two patterns (the two crystallite sizes) per statistics-part structure not skipped
    assert facts["baseline_patterns"] == 2 * (facts["statistics_part"] - sum(facts["baseline_skipped"].values()))
    assert facts["baseline_patterns"] > 0


def test_both_arms_train_the_same_budget_and_learn_above_chance(quick_run):
    _, results = quick_run
    facts = results["facts"]
    chance = facts["chance"]["test"]
    steps, every, batch = QUICK["experiment.steps"], QUICK["experiment.eval_every"], QUICK["training.batch_size"]
    assert sorted((r["arm"], r["seed"]) for r in results["runs"]) == [("structures", 0), ("synthetic", 0)]
    for run in results["runs"]:
        assert run["steps"] == steps and run["batch_size"] == batch and run["patterns_seen"] == steps * batch
        assert [p["step"] for p in run["curve"]] == list(range(every, steps + 1, every))
        assert {name: s["n"] for name, s in run["sets"].items()} == facts["sets"]
        test = run["sets"]["test"]
        correct = round(test["top1"] * test["n"])
        p_value = binomtest(correct, test["n"], chance["uniform_top1"], alternative="greater").pvalue
        assert p_value < 0.01, f"arm {run['arm']}: top-1 {test['top1']:.3f} of {test['n']} vs chance (p={p_value:.3g})"
        assert test["top5"] > chance["uniform_top5"]


def test_repeating_the_command_reuses_data_and_finished_runs(quick_run, mp40_dir, lab17_dir):
    out, first = quick_run
    again = CliRunner().invoke(app, _quick_command(out, mp40_dir, lab17_dir))
    assert again.exit_code == 0, again.output + repr(again.exception)
    assert again.output.count("data: reusing") == 1 and again.output.count("reusing the finished run") == 2
    second = json.loads((out / "results.json").read_text())
    assert second["summary"] == first["summary"] and second["facts"] == first["facts"]


@pytest.mark.parametrize(
    "options, message",
    [
        (["--seeds", "0,x"], "error: --seeds '0,x': expected integers separated by commas, e.g. --seeds 0,1,2"),
        (["--seeds", "1,1"], "error: --seeds '1,1': give at least one seed, each once"),
        (["--set", "experiment.steps=30", "--set", "experiment.eval_every=20"],
         "error: default config: experiment: Value error, experiment.steps=30 must be a multiple of experiment.eval_every=20"),
        (["--set", "experiment.measured=/nonexistent/lab"],
         "error: experiment.measured: /nonexistent/lab: no such folder (set it to null to skip measured patterns)"),
    ],
)
def test_bad_options_are_one_line_errors_with_exit_status_2(options, message, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["xrdgen", "experiment", *options, "-o", str(tmp_path / "out")])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [message]
    assert not (tmp_path / "out").exists()  # nothing written before the inputs are checked
