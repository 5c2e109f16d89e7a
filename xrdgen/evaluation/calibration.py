"""Calibrated confidence: temperature scaling and the expected calibration error.

Temperature scaling (Guo, Pleiss, Sun, Weinberger, "On Calibration of Modern Neural Networks",
ICML 2017): one scalar T > 0 for the whole model turns its logits z into

    p_i = softmax(z / T)_i = exp(z_i / T) / Σ_j exp(z_j / T),

T fitted by minimising the negative log-likelihood of held-out patterns,

    NLL(T) = −(1/N) Σ_n log softmax(z_n / T)_{y_n}.

T > 1 softens an over-confident network, T < 1 sharpens an under-confident one. z/T keeps the order
of the logits, so top-k predictions and accuracies do not change, only the probabilities. NLL is
convex in β = 1/T (mean of logsumexp(β z) − β z_y: convex plus linear), hence unimodal in log T: scipy's bounded Brent
search (`minimize_scalar` on log T, T in [0.05, 20]) finds the global minimum and T stays positive.

The held-out patterns a run's T is fitted on are xrdgen/training/calibrate.py's.

Expected calibration error (Naeini et al. 2015; Guo et al. 2017, eq. 3) over M = 15 equal-width bins
of the top-1 confidence c_n = max_i p_ni, bin m holding c_n in ((m−1)/M, m/M] (c = 0 in the first):

    ECE = Σ_m |B_m|/N · |acc(B_m) − conf(B_m)|,

acc the share of B_m whose top-1 class is the true one, conf the mean c_n in B_m. A pattern whose
true space group is outside the model's class list counts as wrong.

(The crystal-system probability P(s) = Σ_{i in s} p_i that `predict` falls back to is metrics.py's.)
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize_scalar

N_BINS = 15
TEMPERATURE_BOUNDS = (0.05, 20.0)


def log_softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """log softmax(z / T) per row, shifted by the row maximum so that exp never overflows."""
    z = np.asarray(logits, dtype=np.float64) / float(temperature)
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """softmax(z / T) per row (module docstring)."""
    return np.exp(log_softmax(logits, temperature))


def negative_log_likelihood(logits: np.ndarray, labels: np.ndarray, temperature: float = 1.0) -> float:
    """NLL(T) = −mean_n log softmax(z_n / T)_{y_n}; `labels` are indices into the class list."""
    labels = np.asarray(labels, dtype=np.int64)
    return float(-np.mean(log_softmax(logits, temperature)[np.arange(len(labels)), labels]))


@dataclass(frozen=True)
class TemperatureFit:
    """The fitted T and the held-out NLL before (T = 1) and after."""

    temperature: float
    nll_before: float
    nll_after: float
    n: int


def fit_temperature(logits: np.ndarray, labels: np.ndarray) -> TemperatureFit:
    """T minimising NLL(T) on held-out (logits, class indices), by Brent's method on log T."""
    logits = np.asarray(logits, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    if logits.ndim != 2 or len(logits) == 0 or len(labels) != len(logits):
        raise ValueError(f"need (n, classes) logits with n labels, n > 0; got {logits.shape} and {labels.shape}")
    if labels.min() < 0 or labels.max() >= logits.shape[1]:
        raise ValueError("labels must be indices into the class list")
    lo, hi = (math.log(t) for t in TEMPERATURE_BOUNDS)
    result = minimize_scalar(
        lambda s: negative_log_likelihood(logits, labels, math.exp(s)), bounds=(lo, hi), method="bounded", options={"xatol": 1e-5}
    )
    temperature = float(math.exp(result.x))
    return TemperatureFit(
        temperature, negative_log_likelihood(logits, labels), negative_log_likelihood(logits, labels, temperature), len(labels)
    )


def reliability_bins(confidence: np.ndarray, correct: np.ndarray, n_bins: int = N_BINS) -> dict:
    """Per equal-width confidence bin: count, mean confidence and accuracy (None where empty)."""
    confidence = np.asarray(confidence, dtype=np.float64)
    correct = np.asarray(correct, dtype=bool)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, n_bins - 1)  # c in (e_{m-1}, e_m]
    counts = np.bincount(index, minlength=n_bins)
    conf_sum = np.bincount(index, weights=confidence, minlength=n_bins)
    acc_sum = np.bincount(index, weights=correct.astype(np.float64), minlength=n_bins)
    return {
        "edges": edges.tolist(),
        "count": counts.tolist(),
        "confidence": [float(c / n) if n else None for c, n in zip(conf_sum, counts)],
        "accuracy": [float(a / n) if n else None for a, n in zip(acc_sum, counts)],
    }


def expected_calibration_error(confidence: np.ndarray, correct: np.ndarray, n_bins: int = N_BINS) -> float:
    """ECE = Σ_m |B_m|/N · |acc(B_m) − conf(B_m)| over `n_bins` equal-width bins (module docstring)."""
    bins = reliability_bins(confidence, correct, n_bins)
    n = sum(bins["count"])
    if n == 0:
        return math.nan
    return float(sum(c / n * abs(a - f) for c, a, f in zip(bins["count"], bins["accuracy"], bins["confidence"]) if c))


def calibration_summary(
    logits: np.ndarray, labels: Sequence[int], spacegroups: Sequence[int], temperature: float, source: str
) -> dict:
    """ECE, NLL and reliability bins of labelled logits before (T = 1) and after scaling by `temperature`.

    `labels` are space groups; those outside the class list count as wrong in the ECE and are left
    out of the NLL (which they have no term in), `nll_n` says over how many patterns it was taken.
    """
    logits = np.asarray(logits, dtype=np.float64)
    index_of = {int(sg): i for i, sg in enumerate(spacegroups)}
    true_index = np.array([index_of.get(int(sg), -1) for sg in labels], dtype=np.int64)
    inside = true_index >= 0
    summary = {
        "temperature": float(temperature),
        "temperature_source": source,
        "n": int(len(true_index)),
        "nll_n": int(inside.sum()),
    }
    for name, t in (("before", 1.0), ("after", float(temperature))):
        probabilities = softmax(logits, t)
        correct = probabilities.argmax(axis=1) == true_index
        confidence = probabilities.max(axis=1)
        summary[f"ece_{name}"] = expected_calibration_error(confidence, correct)
        summary[f"nll_{name}"] = negative_log_likelihood(logits[inside], true_index[inside], t) if inside.any() else None
        summary[f"mean_confidence_{name}"] = float(confidence.mean()) if len(confidence) else None
        summary[f"bins_{name}"] = reliability_bins(confidence, correct)
    summary["accuracy"] = float(np.mean(logits.argmax(axis=1) == true_index)) if len(true_index) else None
    return summary
