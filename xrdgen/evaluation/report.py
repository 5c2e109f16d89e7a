"""An evaluation report folder: summary.json and the figures (top-k, recall, crystal systems, reliability).

Apart from metrics.py so that the figures (plots.py, which read `Evaluation`s) and the numbers do
not import each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Optional

from xrdgen.evaluation.metrics import Evaluation
from xrdgen.evaluation.plots import plot_recall_vs_samples, plot_reliability, plot_system_confusion, plot_top_k
from xrdgen.jsonio import write_json


def write_report(evaluations: Sequence[Evaluation], out_dir: Path | str, extra: Optional[dict] = None) -> dict:
    """summary.json plus the PNGs: top-k curve of all sets; recall, confusion and reliability diagram of the first."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    first = evaluations[0]
    figures = {
        "top_k": str(plot_top_k(evaluations, out_dir / "top_k_accuracy.png")),
        "recall_vs_samples": str(plot_recall_vs_samples(first, out_dir / "recall_vs_samples.png")),
        "crystal_systems": str(plot_system_confusion(first, out_dir / "crystal_system_confusion.png")),
    }
    if first.calibration:
        figures["reliability"] = str(plot_reliability(first, out_dir / "reliability.png"))
    summary = {"sets": [ev.to_dict() for ev in evaluations], "figures": figures, **(extra or {})}
    write_json(out_dir / "summary.json", summary)
    return summary
