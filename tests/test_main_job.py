"""`make run`'s code (`services/main_job.py`): a private Ray head, the training job, summary, Ray stopped.

The real path end to end, shortened: the shipped default statistics and their whole held-out test
part (109 classes, 7,449 patterns evaluated after each epoch), a coarse grid, and two epochs of five
batches instead of four minutes. About 2.5 minutes on 2 busy cores, most of it starting Ray and the
actors and simulating the test part. (Resuming from a checkpoint is the Trainer's, tested in
test_training.py and test_services.py.)
"""

from __future__ import annotations

import json

import psutil
import pytest

from services.main_job import RUN_CONFIG, run_main_job
from xrdgen.config import load_config

SHORT = {
    "grid.step": 0.05,  # 1,701 points instead of 8,501: the same path, a fifth of the work per pattern
    "training.batches_per_epoch": 5,
    "training.epochs": 2,
    "training.max_minutes": 3.0,  # a guard: the epochs end the run long before
    "evaluation.calibration_patterns": 128,
}


def _children() -> set[int]:
    return {p.pid for p in psutil.Process().children(recursive=True)}


@pytest.mark.slow
def test_main_job_trains_summarises_and_stops_its_ray_head(tmp_path):
    before = _children()
    lines: list[str] = []
    run_dir = tmp_path / "run"
    config = load_config(RUN_CONFIG, {**SHORT, "training.output_dir": str(run_dir)})
    assert run_main_job(config, echo=lines.append) == run_dir

    output = "\n".join(lines)
    assert "submitting: ray job submit --address http://127.0.0.1:" in output and "stopping the Ray head" in output
    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["classes"] == 109 and summary["start_step"] == 0 and summary["step"] == 10 and summary["epochs"] == 2
    assert 0.0 <= summary["test_top1"] <= summary["test_top5"] <= 1.0
    history = json.loads((run_dir / "history.json").read_text())
    assert [h["step"] for h in history] == [5, 10] and all("test_top1" in h for h in history)
    report = (run_dir / "summary.md").read_text()
    assert "109 space-group classes" in report and "optimizer steps: 10" in report and report in output
    assert (run_dir / "accuracy.png").stat().st_size > 5000 and (run_dir / "model.keras").exists()
    assert json.loads((run_dir / "meta.json").read_text())["calibration"]["temperature"] > 0
    assert _children() <= before, "the private Ray head (or something it started) is still running"
