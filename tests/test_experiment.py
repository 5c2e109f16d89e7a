"""The experiment: its rules for real structures (labels, limits, reference sets, drawn baseline
sizes) on real mp40 entries, and the reduced experiment (`xrdgen experiment --quick`) end to end.

Asserts what must hold at any scale: the counts of every stage add up exactly (nothing lost
between read, split, class list, limits and labelled sets), arm B's crystallite sizes are drawn,
every simulated set and both arms are in the one pattern preset, the random-split control is
reported beside the structure-type split, both arms learn above chance on held-out structures,
and every promised output file is written. Which arm wins is the experiment's finding, not a test.
"""

from __future__ import annotations

import dataclasses
import json
import sys
from collections import defaultdict
from pathlib import Path

import numpy as np
import pytest
import spglib
from scipy.stats import binomtest
from typer.testing import CliRunner

from xrdgen.cli import app, main
from xrdgen.collection.reading import read_collection
from xrdgen.config import TrainingConfig, load_config
from xrdgen.experiment.arms import run_key, smoothed
from xrdgen.experiment.prepared import RANDOM, STRUCTURE_TYPE, TEST_SET, UNFILTERED_SET, VALIDATION_SET
from xrdgen.experiment.run import QUICK
from xrdgen.experiment.testsets import (
    LABEL_FROM_COLLECTION,
    LABEL_FROM_SPGLIB,
    TOO_LARGE,
    TOO_MANY_ATOMS,
    label_of,
    randomized_sets,
    select,
    simulate,
)
from xrdgen.statistics.build import asymmetric_unit_size, build_statistics
from xrdgen.training.rundir import InputSpec
from xrdgen.training.stream import PatternStream

ROOT_CONFIG = Path(__file__).resolve().parents[1] / "configs" / "reproduce.yaml"


# ------------------------------------------------------------------------ rules, on real entries
@pytest.fixture(scope="module")
def mp40_entries(mp40_dir):
    config = load_config(ROOT_CONFIG, {"experiment.measured": None})
    return read_collection(mp40_dir / "random_split_test.csv", config, progress=False).entries[:300]


def test_labels_come_from_the_collection_where_it_has_one_else_from_spglib(mp40_entries):
    entry = mp40_entries[0]
    assert entry.spacegroup_file is not None  # mp40 CSVs carry space_group_number
    other = 225 if entry.spacegroup != 225 else 221
    disagreeing = dataclasses.replace(entry, spacegroup_file=other)
    unlabelled = dataclasses.replace(entry, spacegroup_file=None)
    assert label_of(disagreeing) == (other, LABEL_FROM_COLLECTION)
    assert label_of(unlabelled) == (entry.spacegroup, LABEL_FROM_SPGLIB)
    config = load_config(ROOT_CONFIG, {"experiment.measured": None})
    selection = select([entry, disagreeing, unlabelled], [entry.spacegroup, int(entry.spacegroup_file), other], config)
    assert selection.facts["label_source"] == {LABEL_FROM_COLLECTION: 2, LABEL_FROM_SPGLIB: 1}
    assert selection.facts["label_disagreements"] == 1 + entry.label_disagrees
    assert sorted(c.spacegroup for c in selection.within) == sorted([int(entry.spacegroup_file), other, entry.spacegroup])


def test_test_sets_keep_only_structures_the_generator_can_make_and_count_the_rest(mp40_entries):
    volumes = np.array([e.crystal.volume for e in mp40_entries])
    sizes = np.array([asymmetric_unit_size(e) for e in mp40_entries])
    max_volume, max_atoms = float(np.median(volumes)), int(np.median(sizes))
    config = load_config(
        ROOT_CONFIG,
        {
            "experiment.measured": None,
            "statistics.max_volume": max_volume,
            "statistics.max_atoms_asymmetric_unit": max_atoms,
        },
    )
    classes = sorted({label_of(e)[0] for e in mp40_entries})
    selection = select(mp40_entries, classes, config)
    facts = selection.facts
    too_large, too_many = volumes > max_volume, sizes > max_atoms
    assert facts["entries"] == facts["in_classes"] == len(mp40_entries)  # every label is a class here
    assert facts["within_limits"] == int(np.sum(~too_large & ~too_many)) == len(selection.within)
    assert facts["outside_limits"] == int(np.sum(too_large | too_many)) == len(selection.outside)
    assert facts["outside_by_limit"] == {TOO_LARGE: int(too_large.sum()), TOO_MANY_ATOMS: int(too_many.sum())}
    assert 0 < facts["within_limits"] < len(mp40_entries)
    assert all(c.volume <= max_volume for c in selection.within)
    # the asymmetric unit of an ordered structure: one atom per orbit of its conventional cell (spglib)
    ordered = [e for e in mp40_entries if e.ordered][:20]
    orbits = [
        len(
            np.unique(
                spglib.get_symmetry_dataset(
                    (e.crystal.lattice, e.crystal.frac_coords, e.crystal.numbers), symprec=config.collection.symprec
                ).crystallographic_orbits
            )
        )
        for e in ordered
    ]
    assert [asymmetric_unit_size(e) for e in ordered] == orbits
    # a class list without some labels drops those first
    fewer = select(mp40_entries, classes[: len(classes) // 2], config).facts
    assert fewer["not_in_classes"] + fewer["in_classes"] == fewer["entries"] and fewer["not_in_classes"] > 0


QUICK_GRID = {key: value for key, value in QUICK.items() if key.startswith("grid.")}


def _zero_share(x: np.ndarray) -> float:
    """Share of points exactly 0: a pure pattern's profiles end far from their peaks, so many points
    are 0; a background or noise leaves one (the minimum the pattern is shifted to)."""
    return float(np.mean(np.asarray(x) == 0.0))


@pytest.mark.parametrize("preset", ["pure", "measured"])
def test_every_consumer_follows_the_pattern_preset(preset, mp40_entries):
    """The one `preset` field decides the stream's patterns, the test and reference/randomized sets and
    arm B's set alike: pure patterns everywhere, or imperfections everywhere."""
    config = load_config(
        ROOT_CONFIG, {"preset": preset, "experiment.measured": None, "statistics.min_count_per_spacegroup": 5, **QUICK_GRID}
    )
    assert config.simulation.profile == ("gaussian" if preset == "pure" else "pseudo_voigt")
    statistics = build_statistics(mp40_entries, config, {})
    classes = [int(sg) for sg in statistics.spacegroups]
    chosen = select(mp40_entries, classes, config)
    crystals, names = chosen.within[:6], chosen.within_names[:6]
    inputs = InputSpec.from_config(config)
    fixed = [
        simulate(crystals, inputs, config, 0, name="test", names=names, classes=classes),
        simulate(crystals, inputs, config, 1, name="baseline", names=names, classes=classes, patterns_per_crystal=2),
        *randomized_sets(crystals, names, statistics, config, inputs, 2, classes, ["coordinates"])[0],
    ]
    stream_x, _ = PatternStream(statistics, config, seed=0).next_batch(6)
    for name, x in [(s.name, s.x) for s in fixed] + [("stream", stream_x)]:
        assert len(x) >= 6, name
        rows = [_zero_share(row) for row in x]
        if preset == "pure":
            assert min(rows) > 0.05 and np.mean(rows) > 0.2, f"{name}: {rows}"
        else:
            assert max(rows) < 0.01, f"{name}: {rows}"


def test_training_presets_follow_the_method():
    assert TrainingConfig(model="park_medium").resolved().epochs == 1000
    for model in ("resnet10", "resnet50", "resnet101"):
        assert TrainingConfig(model=model).resolved().epochs == 2000
    assert TrainingConfig(model="resnet101", epochs=3).resolved().epochs == 3


# ----------------------------------------------------------------------- the quick experiment
def _quick_command(out: Path, mp40_dir: Path, lab17_dir: Path) -> list[str]:
    return [
        "experiment",
        "--config",
        str(ROOT_CONFIG),
        "--quick",
        "-o",
        str(out),
        "--set",
        f"experiment.collection=[{mp40_dir}]",
        "--set",
        f"experiment.measured={lab17_dir}",
    ]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory, mp40_dir, lab17_dir):
    out = tmp_path_factory.mktemp("experiment")
    result = CliRunner().invoke(app, _quick_command(out, mp40_dir, lab17_dir))
    assert result.exit_code == 0, result.output + repr(result.exception)
    return out, json.loads((out / "results.json").read_text())


def test_quick_experiment_writes_every_output(quick_run):
    out, results = quick_run
    for name in ("results.json", "results.md", "learning_curves.png", "recall_per_spacegroup.png", "config.yaml", "command.txt"):
        assert (out / name).stat().st_size > 0, name
    for split in (STRUCTURE_TYPE, RANDOM):
        for name in ("statistics.json.gz", "test_part.json.gz", "prepared.json", "prepared.npz"):
            assert (out / "data" / split / name).stat().st_size > 0, f"{split}: {name}"
        for arm in ("synthetic", "structures"):
            run_dir = out / "runs" / split / f"{arm}_seed0"
            for name in ("model.keras", "meta.json", "history.json", "evaluation.json"):
                assert (run_dir / name).exists(), f"{split} {arm}: {name}"
    assert (out / "learning_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    table = (out / "results.md").read_text()
    assert "test part within the generator's limits" in table and "measured (lab17" in table
    assert "--quick" in (out / "command.txt").read_text()


def test_quick_experiment_runs_in_pure_with_both_arms_and_every_set_alike(quick_run):
    out, results = quick_run
    assert results["preset"] == "pure" and "Pattern preset: **pure**" in (out / "results.md").read_text()
    for run in results["runs"]:
        meta = json.loads((out / "runs" / run["split"] / f"{run['arm']}_seed0" / "meta.json").read_text())
        assert meta["preset"] == "pure", run["arm"]
    # pure patterns: the profiles are cut off far from their peaks, so many points are exactly 0
    # (a background or noise leaves none); every simulated set and arm B's training set
    for split in (STRUCTURE_TYPE, RANDOM):
        prepared = json.loads((out / "data" / split / "prepared.json").read_text())
        arrays = np.load(out / "data" / split / "prepared.npz")
        for i, s in enumerate(prepared["sets"]):
            if s["name"] == "measured":
                continue
            x = arrays[f"x{i}"]
            assert len(x) and np.mean(x == 0.0) > 0.2, f"{split} {s['name']}: {np.mean(x == 0.0):.2f} of the points are 0"


def test_counts_add_up_from_records_to_labelled_sets(quick_run, lab17_dir):
    _, results = quick_run
    samples = sum(1 for p in lab17_dir.iterdir() if p.is_dir())
    for split in (STRUCTURE_TYPE, RANDOM):
        facts = results["facts"][split]
        assert facts["records"] == QUICK["experiment.max_structures"]
        assert facts["read"] + facts["skipped"] == facts["records"]
        assert facts["statistics_part"] + facts["test_part"] == facts["read"]
        assert facts["n_classes"] == len(facts["classes"]) >= 2
        assert min(facts["statistics_counts"].values()) >= QUICK["statistics.min_count_per_spacegroup"]
        for part, total in (("test_selection", facts["test_part"]), ("baseline_selection", facts["statistics_part"])):
            sel = facts[part]
            assert sel["entries"] == total == sum(sel["label_source"].values()), part
            assert sel["not_in_classes"] + sel["in_classes"] == sel["entries"], part
            assert sel["within_limits"] + sel["outside_limits"] == sel["in_classes"], part
        test = facts["test_selection"]
        assert facts["sets"][TEST_SET] + facts["set_skipped"][TEST_SET] == test["within_limits"]
        assert facts["sets"][UNFILTERED_SET] + facts["set_skipped"][UNFILTERED_SET] == test["in_classes"]
        # arm B: two patterns per statistics-part structure of the class list within the limits, unless skipped
        assert facts["baseline_patterns"] == 2 * (
            facts["baseline_selection"]["within_limits"] - sum(facts["baseline_skipped"].values())
        )
        assert facts["measured_total"] + len(facts["measured_skipped"]) == samples
        assert facts["sets"]["measured"] + len(facts["measured_outside_classes"]) == facts["measured_total"]
    structure, control = results["facts"][STRUCTURE_TYPE], results["facts"][RANDOM]
    assert set(structure["sets"]) == {TEST_SET, UNFILTERED_SET, "reference", "randomized coordinates", "measured"}
    assert set(control["sets"]) == {TEST_SET, UNFILTERED_SET, "measured"}
    # the reference set: each test structure made ordered; the randomized set is built from it
    assert structure["references"] + structure["reference_unlabelled"] == structure["test_selection"]["within_limits"]
    for name in ("reference", "randomized coordinates"):
        assert structure["sets"][name] + structure["set_skipped"][name] == structure["test_selection"]["within_limits"], name
    # the random split puts every structure in its own group; the structure-type split groups them
    assert control["groups"] == control["read"] > structure["groups"]
    assert abs(control["test_part"] - 0.3 * control["read"]) <= 1


def test_arm_b_draws_two_crystallite_sizes_per_structure_in_the_simulation_range(quick_run):
    out, results = quick_run
    lo, hi = load_config(out / "config.yaml").simulation.crystallite_size_nm
    for split in (STRUCTURE_TYPE, RANDOM):
        baseline = json.loads((out / "data" / split / "prepared.json").read_text())["sets"][0]
        assert baseline["name"] == "baseline"
        sizes = defaultdict(list)
        for name, detail in zip(baseline["names"], baseline["details"]):
            sizes[name].append(detail["crystallite_size_nm"])
        assert len(sizes) == results["facts"][split]["baseline_patterns"] // 2
        drawn = np.array(list(sizes.values()))
        assert drawn.shape[1] == 2 and np.all((drawn >= lo) & (drawn <= hi))
        assert np.all(drawn[:, 0] != drawn[:, 1])
        # not a fixed pair: uniform draws spread over the range
        assert len(np.unique(drawn)) == drawn.size and drawn.min() < lo + 0.2 * (hi - lo) and drawn.max() > hi - 0.2 * (hi - lo)


def test_both_arms_train_the_same_budget_and_learn_above_chance(quick_run):
    _, results = quick_run
    steps, every, batch = QUICK["experiment.steps"], QUICK["experiment.eval_every"], QUICK["training.batch_size"]
    assert sorted((r["split"], r["arm"], r["seed"]) for r in results["runs"]) == sorted(
        (split, arm, 0) for split in (STRUCTURE_TYPE, RANDOM) for arm in ("structures", "synthetic")
    )
    for run in results["runs"]:
        facts = results["facts"][run["split"]]
        assert run["steps"] == steps and run["batch_size"] == batch
        assert run["patterns_seen"] == steps * batch, run["arm"]  # every batch full, arm B's passes too
        assert [p["step"] for p in run["curve"]] == list(range(every, steps + 1, every))
        assert {name: s["n"] for name, s in run["sets"].items()} == facts["sets"]
        if run["split"] != STRUCTURE_TYPE:
            continue
        test, chance = run["sets"][TEST_SET], facts["chance"][TEST_SET]
        correct = round(test["top1"] * test["n"])
        p_value = binomtest(correct, test["n"], chance["uniform_top1"], alternative="greater").pvalue
        assert p_value < 0.01, f"arm {run['arm']}: top-1 {test['top1']:.3f} of {test['n']} vs chance (p={p_value:.3g})"
        assert test["top5"] > chance["uniform_top5"]


def test_random_split_control_is_reported_beside_the_structure_type_split(quick_run):
    out, results = quick_run
    text = (out / "results.md").read_text()
    control = text.split("## Random-split control", 1)[1].split("##", 1)[0]
    rows = [line for line in control.splitlines() if line.startswith("| ") and "split" in line and "n test" not in line]
    assert [r.split("|")[1].strip() for r in rows] == 2 * ["structure-type split (unseen structure types)"] + 2 * [
        "random split (control)"
    ]
    for row in rows:
        split = STRUCTURE_TYPE if "structure-type" in row else RANDOM
        arm = "synthetic" if "synthetic" in row else "structures"
        top1 = results["summary"][split]["arms"][arm][TEST_SET]["top1"]["mean"]
        lo, hi = results["summary"][split]["arms"][arm][TEST_SET]["top1_interval"]
        assert f"{100 * top1:.1f} [{100 * lo:.1f}, {100 * hi:.1f}]" in row and lo <= top1 <= hi


def test_repeating_the_command_reuses_data_and_finished_runs(quick_run, mp40_dir, lab17_dir):
    out, first = quick_run
    again = CliRunner().invoke(app, _quick_command(out, mp40_dir, lab17_dir))
    assert again.exit_code == 0, again.output + repr(again.exception)
    assert again.output.count("reusing the finished run") == 4
    assert again.output.count("split): reusing") == 2
    second = json.loads((out / "results.json").read_text())
    assert second["summary"] == first["summary"] and second["facts"] == first["facts"]


# ------------------------------------------- validation set, plateau rule, arm A from the Ray pool
@pytest.fixture(scope="module")
def plateau_pool_run(tmp_path_factory, mp40_dir, ray_local):
    """The quick experiment on the structure-type split with a validation set, the plateau rule and arm
    A fed by a one-actor generator pool on the session's local Ray."""
    out = tmp_path_factory.mktemp("plateau_pool")
    overrides = {
        "experiment.collection": f"[{mp40_dir}]",
        "experiment.measured": "null",
        "experiment.splits": "[structure_type]",
        "experiment.validation_fraction": "0.3",
        "experiment.max_steps": "200",
        "experiment.patience": "1",
        "cluster.n_generators": "1",
        "cluster.generator_batch_size": "16",
    }
    command = ["experiment", "--config", str(ROOT_CONFIG), "--quick", "--pool", "-o", str(out)]
    command += [arg for key, value in overrides.items() for arg in ("--set", f"{key}={value}")]
    result = CliRunner().invoke(app, command)
    assert result.exit_code == 0, result.output + repr(result.exception)
    return out, json.loads((out / "results.json").read_text())


def test_validation_set_holds_other_structure_types_than_the_test_set(plateau_pool_run):
    out, results = plateau_pool_run
    facts = results["facts"][STRUCTURE_TYPE]
    assert facts["sets"][VALIDATION_SET] > 0 and facts["sets"][TEST_SET] > 0
    prepared = json.loads((out / "data" / STRUCTURE_TYPE / "prepared.json").read_text())
    names = {s["name"]: set(s["names"]) for s in prepared["sets"]}
    assert not names[VALIDATION_SET] & names[TEST_SET]
    assert facts["validation_part"] + facts["test_part"] > facts["validation_part"] > 0


def test_plateau_rule_reads_the_smoothed_validation_curve(plateau_pool_run):
    out, results = plateau_pool_run
    spec = results["config"]["experiment"]
    for run in results["runs"]:
        plateau = run["plateau"]
        assert run["curve_set"] == VALIDATION_SET
        assert spec["steps"] <= plateau["steps"] <= spec["max_steps"]
        assert len(run["curve"]) == plateau["steps"] // spec["eval_every"]
        scores = smoothed([p["test_top1"] for p in run["curve"]], spec["smoothing"])
        best = int(np.argmax(scores))
        assert plateau["best_smoothed_step"] == run["curve"][best]["step"]
        if plateau["steps"] < spec["max_steps"]:  # stopped early: `patience` evaluations without a better one
            waited = len(scores) - 1 - best  # exactly `patience` when it went on past the equal budget
            assert plateau["stopped"] == "plateau" and waited >= spec["patience"]
            assert plateau["steps"] == spec["steps"] or waited == spec["patience"]
        assert set(plateau["sets"]) == set(run["sets"])  # every set scored at the equal budget and at the end
    assert "until its smoothed validation top-1 stops improving" in (out / "results.md").read_text()


def test_the_best_validation_checkpoint_is_scored_and_the_last_model_reported_beside_it(plateau_pool_run):
    _, results = plateau_pool_run
    for run in results["runs"]:
        for scored in (run, run["plateau"]):  # at the equal budget and at the plateau
            curve = [p for p in run["curve"] if p["step"] <= (scored.get("steps") or run["steps"])]
            best = max(curve, key=lambda p: p["test_top1"])
            assert scored["scored"] == "best" and scored["best_step"] == best["step"]
            # the scored model is best.keras: its validation top-1 is the curve's best; the last model's is the curve's last
            assert scored["sets"][VALIDATION_SET]["top1"] == pytest.approx(best["test_top1"], abs=1e-9)
            assert scored["last"][VALIDATION_SET]["top1"] == pytest.approx(curve[-1]["test_top1"], abs=1e-9)


def test_a_finished_run_is_reused_only_with_the_same_effective_settings():
    from types import SimpleNamespace

    config = load_config(ROOT_CONFIG)
    data = SimpleNamespace(key="data-1", classes=[14, 62])
    key = run_key("synthetic", 0, data, config)
    changed = {
        "training.learning_rate": 0.002,
        "training.batch_size": 16,
        "training.model": "park_big",
        "preset": "measured",
        "experiment.steps": 2 * config.experiment.steps,
    }
    for name, value in changed.items():
        assert run_key("synthetic", 0, data, load_config(ROOT_CONFIG, {name: value})) != key, name
    assert run_key("synthetic", 0, SimpleNamespace(key="data-2", classes=[14, 62]), config) != key  # other data
    assert run_key("structures", 0, data, config) != key and run_key("synthetic", 1, data, config) != key
    # what belongs to other runs or to the report does not retrain
    same = {"experiment.seeds": [0, 1, 2, 3], "experiment.bootstrap": 500, "cluster.n_generators": 4}
    for name, value in same.items():
        assert run_key("synthetic", 0, data, load_config(ROOT_CONFIG, {name: value})) == key, name


def test_arm_a_from_the_generator_pool_trains_on_pool_patterns(plateau_pool_run):
    _, results = plateau_pool_run
    (run,) = [r for r in results["runs"] if r["arm"] == "synthetic"]
    stream = run["stream"]
    assert stream["generators"] and all(name.startswith("generator-") for name in stream["generators"])
    trained = run["plateau"]["patterns_seen"]
    assert stream["patterns"] >= trained  # every trained pattern came out of the pool (some wait in the queue)


@pytest.mark.parametrize(
    "options, message",
    [
        (
            ["--set", "experiment.max_steps=1200"],
            "error: default config: experiment: Value error, experiment.max_steps needs experiment.validation_fraction > 0: "
            "the plateau is judged on validation data, never on the test set",
        ),
        (["--seeds", "0,x"], "error: --seeds '0,x': expected integers separated by commas, e.g. --seeds 0,1,2"),
        (["--seeds", "1,1"], "error: --seeds '1,1': give at least one seed, each once"),
        (
            ["--set", "experiment.steps=30", "--set", "experiment.eval_every=20"],
            "error: default config: experiment: Value error, experiment.steps=30 must be a multiple of experiment.eval_every=20",
        ),
        (
            ["--set", "experiment.measured=/nonexistent/lab"],
            "error: experiment.measured: /nonexistent/lab: no such folder (set it to null to skip measured patterns)",
        ),
    ],
)
def test_bad_options_are_one_line_errors_with_exit_status_2(options, message, tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["xrdgen", "experiment", *options, "-o", str(tmp_path / "out")])
    with pytest.raises(SystemExit) as exited:
        main()
    assert exited.value.code == 2
    assert capsys.readouterr().err.strip().splitlines() == [message]
    assert not (tmp_path / "out").exists()  # nothing written before the inputs are checked
