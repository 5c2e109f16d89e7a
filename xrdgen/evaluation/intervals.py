"""95 % intervals of accuracies by the bootstrap over groups of patterns that are not independent evidence.

Patterns of one group (one prototype in a structure-type split, one mineral among measured RRUFF
patterns) share what makes a model right or wrong, so the bootstrap resamples *groups* with
replacement (Davison & Hinkley 1997, the cluster bootstrap); the accuracy of a resample is

    acc* = Σ_g c_g · k_g / Σ_g c_g · n_g,

with k_g the correct rows of group g, n_g its rows and c_g how often the resample drew it. The 95 %
interval is the 2.5th and 97.5th percentile of acc*; quantities evaluated on the same resamples
(two arms, or top-1 and top-5) are paired, so a difference's interval is that of acc*_A − acc*_B.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

CONFIDENCE = 0.95
RESAMPLES = 2000


def group_bootstrap(
    correct: dict[str, np.ndarray], groups: Sequence[str], resamples: int, seed: int = 0
) -> dict[str, np.ndarray]:
    """{arm: accuracies of `resamples` group resamples}; `correct[arm]` is per row (0..1, mean over seeds)."""
    names, index = np.unique(np.asarray(groups), return_inverse=True)
    sizes = np.bincount(index, minlength=len(names)).astype(np.float64)
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(names), size=(resamples, len(names)))
    counts = np.stack([np.bincount(row, minlength=len(names)) for row in draws]).astype(np.float64)
    total = counts @ sizes
    return {
        arm: counts @ np.bincount(index, weights=np.asarray(c, np.float64), minlength=len(names)) / total
        for arm, c in correct.items()
    }


def interval(samples: np.ndarray) -> tuple[float, float]:
    tail = 100 * (1 - CONFIDENCE) / 2
    lo, hi = np.percentile(samples, [tail, 100 - tail])
    return float(lo), float(hi)
