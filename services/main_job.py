"""The main job (`make run` = `xrdgen run`): the whole pipeline on this machine through a real Ray cluster.

1. the statistics shipped in the package (`--statistics default`: mp26k + ICSD metadata, built once by
   `make default-statistics`) and their held-out test part; nothing is built at run time;
2. a private local Ray head (`ray start --head`, token authentication on, dashboard on 127.0.0.1);
3. `ray job submit -- python -m services.train ...`: generator pool -> bounded
   queue -> trainer actor; the trainer's progress lines (rate, ETA, test top-1/top-5) stream here;
4. the accuracy plot (accuracy.png) and a results summary (summary.md) in the run directory;
5. the Ray head is stopped, whatever happened (error, Ctrl-C).

Running it again resumes the same run directory from its last checkpoint.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from services.local_cluster import local_head
from xrdgen.config import Config
from xrdgen.errors import UserError
from xrdgen.pipeline import resolve_statistics

ROOT = Path(__file__).resolve().parents[1]
RUN_CONFIG = ROOT / "configs" / "run.yaml"


def _pct(value) -> str:
    return "n/a" if value is None else f"{100 * value:.1f} %"


def summary_markdown(run_dir: Path) -> str:
    """summary.md: the headline numbers, the accuracy plot and the per-epoch table."""
    summary = json.loads((run_dir / "summary.json").read_text())
    history_file = run_dir / "history.json"
    history = json.loads(history_file.read_text()) if history_file.exists() else []
    lines = [
        "# xrdgen run: results",
        "",
        f"- model: {summary['model']}, {summary['classes']} space-group classes (chance top-1 "
        f"{_pct(1 / summary['classes'])}, top-5 {_pct(min(1.0, 5 / summary['classes']))})",
        f"- optimizer steps: {summary['step']} (this job: from step {summary['start_step']}), "
        f"{summary['minutes']:.1f} min of training job",
        f"- held-out test structures (structure-type split of the shipped default, mp26k): "
        f"top-1 {_pct(summary['test_top1'])}, top-5 {_pct(summary['test_top5'])}",
        f"- generator actors replaced during the run: {summary['generator_replacements']}",
        f"- trainer actor started again after it died: {summary.get('trainer_restarts', 0)} time(s)"
        + (f", last resumed at step {summary['resumed_at_step']}" if summary.get("trainer_restarts") else ""),
        "",
        "![accuracy](accuracy.png)",
        "",
        "| epoch | step | lr | train acc | test top-1 | test top-5 | patterns/s |",
        "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for h in history:
        lines.append(
            f"| {h['epoch']}{' (partial)' if h.get('partial') else ''} | {h['step']} | {h['learning_rate']:.1e} | "
            f"{h['train_accuracy']:.3f} | {_pct(h.get('test_top1'))} | {_pct(h.get('test_top5'))} | {h['patterns_per_s']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def run_main_job(config: Config, echo=print) -> Path:
    """Steps 1-5 of the module docstring; returns the run directory."""
    started = time.monotonic()
    run_dir = Path(config.training.output_dir).expanduser().resolve()
    run_dir.mkdir(parents=True, exist_ok=True)
    config = config.model_copy(update={"training": config.training.model_copy(update={"output_dir": run_dir})})
    job_config = run_dir / "config.yaml"
    job_config.write_text(config.to_yaml())

    stats_path, test_path = resolve_statistics("default")
    echo(f"statistics: {stats_path} (shipped default), held-out test part {test_path.name}")

    echo("starting a private local Ray head (token authentication on) ...")
    with local_head(num_cpus=os.cpu_count()) as head:
        echo(f"Ray dashboard: {head.dashboard_url}  (sign in with the token of `ray get-auth-token`)")
        # No --working-dir here: on this machine the job imports the installed (editable) project in
        # place, so compiled Numba kernels are reused from its cache instead of being recompiled in a
        # fresh copy by the driver and every generator (about a minute on 2 cores). On a cluster,
        # `--working-dir .` ships the code (see README).
        entrypoint = [
            "python",
            "-m",
            "services.train",
            "--config",
            str(job_config),
            "--statistics",
            str(stats_path),
            "--test",
            str(test_path),
        ]
        echo(f"submitting: ray job submit --address {head.dashboard_url} -- {' '.join(entrypoint)}")
        status = head.submit(entrypoint)
        echo("stopping the Ray head ...")
    if status != 0:
        raise UserError(f"the training job failed (exit {status}); its log is above")
    (run_dir / "summary.md").write_text(summary_markdown(run_dir))
    echo((run_dir / "summary.md").read_text())
    echo(
        f"results in {run_dir}: summary.md, accuracy.png, model.keras, history.json, checkpoints/, tensorboard/ "
        f"({(time.monotonic() - started) / 60:.1f} min in all)"
    )
    return run_dir
