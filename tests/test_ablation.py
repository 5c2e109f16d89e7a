"""`xrdgen ablation --quick`: one model per effect group on the measured RRUFF patterns, equal budget.

Why these checks: an ablation is only worth its table if each variant differs from "none" in its own
effects and nothing else, every measured pattern is counted (none dropped for being outside the class
list), and a rerun does not silently retrain (or silently reuse a differently configured run).
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import SHARED_DATA, shared_data
from typer.testing import CliRunner

from xrdgen.cli import app
from xrdgen.config import ABLATION_GROUPS, ABLATION_VARIANTS, SAMPLE_EFFECTS

ROOT = Path(__file__).resolve().parents[1]
RRUFF_DEV = SHARED_DATA / "rruff_dev"
CONFIG = ROOT / "configs" / "ablation_rruff.yaml"
VARIANTS = ["none", "peak_shift", "all"]  # the `--quick` variants: a group of two flags, and every flag


def _command(out: Path) -> list[str]:
    return ["ablation", "--config", str(CONFIG), "--quick", "--set", f"ablation.measured={RRUFF_DEV}", "-o", str(out)]


def _flat(data: dict, prefix: str = "") -> dict:
    out = {}
    for key, value in data.items():
        out.update(_flat(value, f"{prefix}{key}.") if isinstance(value, dict) else {f"{prefix}{key}": value})
    return out


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    shared_data("rruff_dev")
    out = tmp_path_factory.mktemp("ablation")
    result = CliRunner().invoke(app, _command(out), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return out, result.output


def test_groups_cover_every_effect_once():
    flags = [flag for group in ABLATION_GROUPS.values() for flag in group]
    assert sorted(flags) == sorted(SAMPLE_EFFECTS) and len(ABLATION_VARIANTS) == 9


def test_each_variant_differs_from_none_in_exactly_its_effects(quick_run):
    out, _ = quick_run
    configs = {v: _flat(json.loads((out / "runs" / v / "meta.json").read_text())["config"]) for v in VARIANTS}
    for variant in VARIANTS:
        differing = {key for key, value in configs[variant].items() if configs["none"][key] != value}
        expected = set(SAMPLE_EFFECTS) if variant == "all" else set(ABLATION_GROUPS.get(variant, ()))
        assert differing == {f"augmentation.{flag}" for flag in expected}, variant
    assert not any(configs["none"][f"augmentation.{flag}"] for flag in SAMPLE_EFFECTS)
    assert all(configs["none"][f"augmentation.{name}"] for name in ("background", "additive_noise", "impurity"))


def test_every_measured_pattern_is_counted_and_the_table_has_a_row_per_variant(quick_run):
    out, output = quick_run
    results = json.loads((out / "ablation.json").read_text())
    labels = [item["sg_number"] for item in json.loads((RRUFF_DEV / "labels.json").read_text())]
    classes = {int(sg) for sg in json.loads((out / "runs" / "none" / "meta.json").read_text())["spacegroups"]}
    assert results["measured"]["n"] == len(results["names"]) == len(labels) == 113
    assert results["measured"]["n_outside_class_list"] == sum(sg not in classes for sg in labels) > 0
    for variant in VARIANTS:
        row = results["summary"][variant]
        assert row["top1"]["n"] == row["top5"]["n"] == row["system"]["n"] == 113
        assert all(len(v) == 113 for v in results["variants"][variant]["correct"].values())
        assert row["top1"]["ci95"][0] <= row["top1"]["accuracy"] <= row["top1"]["ci95"][1]
        assert results["variants"][variant]["steps"] == 4 and results["variants"][variant]["patterns"] == 32
    assert results["summary"]["none"]["vs_none"]["top1"] == {"only_variant": 0, "only_none": 0, "p": 1.0}
    table = [line for line in (out / "ablation.md").read_text().splitlines() if line.startswith("| ")]
    assert [line.split("|")[1].strip() for line in table[1:]] == [
        "pure_start",
        *VARIANTS,
    ]  # header, the shared start, one row per variant
    for name in ("ablation.png", "config.yaml", "command.txt", "runs/all/model.keras"):
        assert (out / name).stat().st_size > 0, name
    assert "calibration" in json.loads((out / "runs" / "all" / "meta.json").read_text())  # a usable, calibrated model
    assert "patterns/s" in output and "ETA" in output


def test_rerun_reuses_finished_variants_and_retrains_a_changed_one(quick_run):
    out, _ = quick_run
    before = {v: (out / "runs" / v / "model.keras").stat().st_mtime_ns for v in VARIANTS}
    summary = json.loads((out / "ablation.json").read_text())["summary"]
    again = CliRunner().invoke(app, _command(out), catch_exceptions=False)
    assert again.exit_code == 0, again.output
    assert all(f"{v}: reusing the finished run" in again.output for v in VARIANTS)
    assert {v: (out / "runs" / v / "model.keras").stat().st_mtime_ns for v in VARIANTS} == before
    assert json.loads((out / "ablation.json").read_text())["summary"] == summary
    # a different config of one variant (its key) is trained again, not reused
    changed = CliRunner().invoke(
        app, _command(out) + ["--set", "ablation.variants=[none]", "--set", "seed=1"], catch_exceptions=False
    )
    assert changed.exit_code == 0 and "none: reusing" not in changed.output


def test_unknown_variant_is_one_line_with_status_2(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", "from xrdgen.cli import main; main()", *_command(tmp_path)]
        + ["--set", "ablation.variants=[none, sample_height]"],
        capture_output=True,
        text=True,
        cwd=ROOT,
    )
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "sample_height" in lines[0] and "ablation" in lines[0], done.stderr
    assert not (tmp_path / "runs").exists()


def test_every_variant_starts_from_the_one_shared_pure_start(quick_run):
    out, _ = quick_run
    start = json.loads((out / "runs" / "pure_start" / "meta.json").read_text())
    assert start["preset"] == "pure"
    flat = _flat(start["config"])
    assert not any(flat[f"augmentation.{flag}"] for flag in SAMPLE_EFFECTS) and flat["simulation.profile"] == "gaussian"
    for variant in VARIANTS:
        facts = json.loads((out / "runs" / variant / "ablation_variant.json").read_text())
        assert facts["key"]["pure_start_steps"] == 2 and facts["steps"] == 4  # the equal budget after the shared start
    table = (out / "ablation.md").read_text()
    assert "| pure_start | the shared start alone: 2 steps on pure patterns" in table  # the reference row
