"""How sure the comparison is, and what it decides: intervals over prototype groups, power-law fits of
the learning curves, and the decision rule written in the config before the run.

Intervals (`xrdgen.evaluation.intervals`). Structures of one prototype group (one structure type)
are not independent evidence: a model that knows rock salt gets all its variants right. So the
bootstrap resamples prototype groups; for a difference A − B both arms are evaluated on the same
resamples (paired), so what the groups share cancels. The interval covers the test set's sampling,
not the training seeds' spread (reported beside it).

Learning curves. The validation error of each arm is fitted by a power law in the patterns seen,

    err(n) = a · n^(−b)   (a line in log err against log n, least squares over the last three doublings of n),

and two fits cross at n* = (a_A / a_B)^(1 / (b_A − b_B)) when A's error falls faster (b_A > b_B).

Decision rule (experiment.min_gain_per_doubling = g):
- *supported*: A's scored model beats B's on the test set with the paired 95 % interval of A − B above 0;
- *refuted at this scale*: B ≥ A on the test set and A's smoothed validation top-1 gained less than g
  over its last doubling of patterns (A has stopped improving and is behind);
- *inconclusive* otherwise, with the predicted crossing n*.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Optional

import numpy as np


def power_law(patterns: Sequence[float], top1: Sequence[float]) -> Optional[dict]:
    """err = a · n^(−b) fitted to the last three doublings of a curve (module docstring), or None with too few points."""
    n = np.asarray(patterns, dtype=np.float64)
    err = 1.0 - np.asarray(top1, dtype=np.float64)
    keep = (n >= n.max() / 8) & (err > 0)  # the last three doublings of patterns
    if keep.sum() < 3:
        return None
    slope, intercept = np.polyfit(np.log(n[keep]), np.log(err[keep]), 1)
    return {"a": float(np.exp(intercept)), "b": float(-slope), "from_patterns": float(n[keep].min())}


def crossing(fit_a: Optional[dict], fit_b: Optional[dict]) -> Optional[float]:
    """Patterns n* where the two fitted error curves meet, or None when they do not meet ahead."""
    if fit_a is None or fit_b is None or fit_a["b"] <= fit_b["b"]:
        return None
    return float((fit_a["a"] / fit_b["a"]) ** (1.0 / (fit_a["b"] - fit_b["b"])))


def gain_over_last_doubling(patterns: Sequence[float], values: Sequence[float]) -> Optional[float]:
    """values(N) − values(N / 2) for the last N, interpolated linearly in log n; None when the curve is shorter."""
    n = np.asarray(patterns, dtype=np.float64)
    v = np.asarray(values, dtype=np.float64)
    if len(n) < 2 or n[-1] / 2 < n[0]:
        return None
    return float(v[-1] - np.interp(np.log(n[-1] / 2), np.log(n), v))


def verdict(difference: tuple[float, float], a_top1: float, b_top1: float, gain: Optional[float], min_gain: float) -> str:
    """The decision rule of the module docstring, in words."""
    if difference[0] > 0:
        return "supported"
    if b_top1 >= a_top1 and gain is not None and gain < min_gain:
        return "refuted at this scale"
    return "inconclusive"
