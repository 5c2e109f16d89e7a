"""The whole experiment (package docstring): prepare the data, train both arms per split and seed, report."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from xrdgen.config import Config
from xrdgen.errors import UserError
from xrdgen.experiment.arms import StreamOpener, local_stream, train_arm
from xrdgen.experiment.data import STRUCTURE_TYPE, prepare_data
from xrdgen.experiment.figures import plot_learning_curves, plot_recall
from xrdgen.experiment.report import markdown_report, summarize
from xrdgen.jsonio import write_json

# `--quick`: the same pipeline on a short, coarse grid, a seeded random 700 of the records (8 classes
# of >= 20 statistics-part structures), both splits and 80 steps of 32 patterns per arm: a few
# minutes of CPU.
QUICK = {
    "experiment.max_structures": 700,
    "experiment.seeds": [0],
    "experiment.steps": 80,
    "experiment.eval_every": 40,
    "experiment.randomizations": ["coordinates"],
    "statistics.min_count_per_spacegroup": 20,
    "grid.two_theta_min": 10.0,
    "grid.two_theta_max": 60.0,
    "grid.step": 0.05,
    "training.batch_size": 32,
}


def run(
    config: Config,
    out: Path | str,
    command: str = "",
    log: Callable[[str], None] = print,
    progress: bool = True,
    open_stream: StreamOpener = local_stream,
) -> dict:
    """Prepare (or reuse) the data, train every (split, seed, arm), write the report; returns results.json's dict.

    `open_stream`: where arm A's patterns come from (`xrdgen.experiment.arms.StreamOpener`)."""
    out = Path(out)
    spec = config.experiment
    if spec.measured is not None and not Path(spec.measured).is_dir():
        raise UserError(f"experiment.measured: {spec.measured}: no such folder (set it to null to skip measured patterns)")
    preset = config.preset
    log(f"pattern preset: {preset} (synthetic stream, arm B and every simulated test set)")
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(config.to_yaml())
    (out / "command.txt").write_text(command + "\n")
    started = time.monotonic()
    data = prepare_data(config, out, log=log, progress=progress)
    prepared = time.monotonic() - started
    runs = [
        train_arm(arm, seed, data[split], config, out, log=log, open_stream=open_stream)
        for split in spec.splits
        for seed in spec.seeds
        for arm in spec.arms
    ]
    summary = summarize(runs, data, config)
    main = data[STRUCTURE_TYPE] if STRUCTURE_TYPE in data else next(iter(data.values()))
    fits = summary.get(main.split, {}).get("fits")
    figures = {
        "learning_curves": str(plot_learning_curves(runs, main, out / "learning_curves.png", fits)),
        "recall_per_spacegroup": str(plot_recall(runs, main, out / "recall_per_spacegroup.png")),
    }
    results = {
        "preset": preset,
        "splits": list(spec.splits),
        "facts": {split: d.facts for split, d in data.items()},
        "summary": summary,
        "runs": runs,
        "figures": figures,
        "seeds": spec.seeds,
        "command": command,
        "seconds_data": prepared,
        "seconds_total": time.monotonic() - started,
        "config": config.model_dump(mode="json"),
    }
    write_json(out / "results.json", results)
    text = markdown_report(summary, data, config, preset)
    (out / "results.md").write_text(
        f"# Synthetic crystals (A) vs the collection's own structures (B)\n\n{text}\nRerun: `{command}`\n"
    )
    log(text)
    return results
