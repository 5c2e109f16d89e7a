"""Space groups of measured pattern files: read -> the model's input -> one batched model call -> ranking.

The one path from files to answers, used by `xrdgen predict` (which prints and plots them) and
timed by benchmarks/bench_predict.py. Every file is read and preprocessed first (a bad file is one
failure line, the others go on), then the model sees all inputs in one batched call: a model call
per file would pay Keras' per-call overhead once per pattern.

Each answer holds what a user needs to judge it (xrdgen/measured/preprocess.py):
- the wavelength and where it came from ("command line", "file" or "assumed (model's)");
- the measured 2θ range as in the file, the same range at the model's wavelength, the model's grid,
  and the share of the grid the measurement covers;
- the top-k space groups with calibrated probabilities softmax(z / T), and the crystal systems'
  probabilities P(s) = Σ_{i in s} p_i (xrdgen/evaluation/metrics.py) with the most probable one;
- `uncertain` when the top-1 probability is below the threshold: the answer is then the crystal system.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from xrdgen.errors import UserError
from xrdgen.evaluation.metrics import SYSTEM_NAMES, system_probabilities, top_k
from xrdgen.measured.pattern import MeasuredPattern
from xrdgen.measured.preprocess import ModelInput
from xrdgen.measured.readers import read_pattern
from xrdgen.training.rundir import TrainedModel


@dataclass
class Predictions:
    """The answers in file order, the files that failed, and what each answer was computed from."""

    entries: list[dict] = field(default_factory=list)
    failures: list[dict] = field(default_factory=list)  # {"file", "error"}: one line each
    patterns: list[MeasuredPattern] = field(default_factory=list)  # aligned with entries
    inputs: list[ModelInput] = field(default_factory=list)  # aligned with entries


def predict_files(
    trained: TrainedModel,
    files: Sequence[Path | str],
    k: int = 5,
    threshold: float = 0.5,
    wavelength: Optional[float] = None,
    fill: str = "edge",
    batch_size: int = 256,
) -> Predictions:
    """Read and preprocess every file, predict all of them in one batched call, rank (module docstring)."""
    out = Predictions()
    for path in files:
        try:
            pattern = read_pattern(path)
            model_input = trained.model_input(pattern, wavelength=wavelength, fill=fill)
        except UserError as exc:
            out.failures.append({"file": str(path), "error": str(exc)})
            continue
        out.patterns.append(pattern)
        out.inputs.append(model_input)
    if not out.inputs:
        return out

    probabilities = trained.probabilities(np.stack([m.x for m in out.inputs]), batch_size=batch_size)
    systems = system_probabilities(probabilities, trained.spacegroups)
    ranked_all = top_k(probabilities, trained.spacegroups, min(k, len(trained.spacegroups)))
    grid = trained.spec.grid
    for pattern, model_input, ranked, system_row in zip(out.patterns, out.inputs, ranked_all, systems):
        best = int(np.argmax(system_row))
        uncertain = ranked[0]["probability"] < threshold
        out.entries.append(
            {
                "file": pattern.source,
                "wavelength": model_input.wavelength,
                "wavelength_source": model_input.wavelength_source,
                "measured_range": [round(float(pattern.two_theta[0]), 4), round(float(pattern.two_theta[-1]), 4)],
                "covered_range": [round(v, 4) for v in model_input.covered_range],
                "model_wavelength": trained.spec.wavelength,
                "grid_range": [grid.two_theta_min, grid.two_theta_max],
                "covered_fraction": round(model_input.covered_fraction, 4),
                "notes": list(model_input.notes),
                "top_k": ranked,
                "crystal_system": {"name": SYSTEM_NAMES[best], "probability": float(system_row[best])},
                "crystal_systems": {name: float(p) for name, p in zip(SYSTEM_NAMES, system_row)},
                "uncertain": bool(uncertain),
                "answer": f"crystal system {SYSTEM_NAMES[best]}"
                if uncertain
                else f"space group {ranked[0]['spacegroup']} ({ranked[0]['symbol']})",
            }
        )
    return out
