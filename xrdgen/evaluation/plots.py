"""The figures of an evaluation report, and a measured pattern as the model sees it."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from xrdgen.evaluation.metrics import K_MAX, SYSTEM_NAMES, Evaluation
from xrdgen.geometry import crystal_system
from xrdgen.measured.pattern import MeasuredPattern
from xrdgen.measured.preprocess import ModelInput
from xrdgen.plotting import pyplot, save_figure


def plot_top_k(evaluations: Sequence[Evaluation], path: Path | str) -> Path:
    """Top-k accuracy against k for each evaluated set, one line each."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(5.5, 4))
    for ev in evaluations:
        ks = np.arange(1, len(ev.top_k_accuracy) + 1)
        ax.plot(ks, np.array(ev.top_k_accuracy) * 100, marker="o", label=f"{ev.name} (n={ev.n})")
    ax.set_xlabel("k")
    ax.set_ylabel("top-k accuracy (%)")
    ax.set_ylim(0, 100)
    ax.set_xticks(range(1, K_MAX + 1))
    ax.grid(alpha=0.3)
    ax.legend()
    return save_figure(fig, path)


def plot_recall_vs_samples(evaluation: Evaluation, path: Path | str) -> Path:
    """Per-space-group top-1 recall against its number of samples (the method's Figures S7/S8), by crystal system."""
    plt = pyplot()
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 4), gridspec_kw={"width_ratios": [1, 1.6]})
    groups = sorted(evaluation.per_spacegroup)
    counts = np.array([evaluation.per_spacegroup[g]["count"] for g in groups])
    recalls = np.array([evaluation.per_spacegroup[g]["recall"] for g in groups]) * 100
    colours = plt.get_cmap("tab10")
    for i, system in enumerate(SYSTEM_NAMES):
        mask = np.array([crystal_system(g) == system for g in groups], dtype=bool)
        if mask.any():
            left.scatter(counts[mask], recalls[mask], s=18, color=colours(i), label=system)
            right.bar(np.array(groups)[mask], recalls[mask], width=1.0, color=colours(i))
    if counts.max() > 20:
        left.set_xscale("log")
    left.set_xlabel("samples of the space group")
    left.set_ylabel("recall (top-1, %)")
    left.set_ylim(-3, 103)
    left.legend(fontsize=7)
    right.set_xlabel("space group number")
    right.set_ylabel("recall (top-1, %)")
    right.set_xlim(0, 231)
    right.set_ylim(0, 100)
    fig.suptitle(f"{evaluation.name}: per-space-group recall")
    return save_figure(fig, path)


def plot_system_confusion(evaluation: Evaluation, path: Path | str) -> Path:
    """Crystal-system confusion, rows normalised to the true system's count, counts annotated."""
    plt = pyplot()
    counts = evaluation.system_confusion
    shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(6, 5))
    image = ax.imshow(shares, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(SYSTEM_NAMES)):
        for j in range(len(SYSTEM_NAMES)):
            if counts[i, j]:
                ax.text(
                    j,
                    i,
                    str(counts[i, j]),
                    ha="center",
                    va="center",
                    color="white" if shares[i, j] > 0.5 else "black",
                    fontsize=8,
                )
    ax.set_xticks(range(len(SYSTEM_NAMES)), SYSTEM_NAMES, rotation=45, ha="right")
    ax.set_yticks(range(len(SYSTEM_NAMES)), SYSTEM_NAMES)
    ax.set_xlabel("predicted (top-1)")
    ax.set_ylabel("true")
    fig.colorbar(image, ax=ax, label="share of the true system")
    ax.set_title(f"{evaluation.name}: crystal systems")
    return save_figure(fig, path)


def plot_model_input(model_input: ModelInput, pattern: MeasuredPattern, path: Path | str, title: str = "") -> Path:
    """The measured pattern as the model sees it (on its grid), the uncovered part shaded."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 3))
    ax.plot(model_input.two_theta, model_input.x, lw=0.7, color="k")
    lo, hi = model_input.covered_range
    for a, b in ((model_input.two_theta[0], lo), (hi, model_input.two_theta[-1])):
        if b > a:
            ax.axvspan(a, b, color="tab:red", alpha=0.12, lw=0)
    ax.set_xlim(model_input.two_theta[0], model_input.two_theta[-1])
    ax.set_xlabel(f"2θ (°) at λ = {model_input.wavelength:.5g} Å → model grid")
    ax.set_ylabel("model input")
    ax.set_title(
        title
        or f"{'/'.join(Path(pattern.source).parts[-2:])}: covered {model_input.covered_fraction:.0%} of the grid (shaded: filled)",
        fontsize=9,
    )
    return save_figure(fig, path)


def plot_reliability(evaluation: Evaluation, path: Path | str) -> Path:
    """Reliability diagram (Guo et al. 2017, Fig. 1) before and after temperature scaling.

    Per equal-width bin of top-1 confidence: the bin's accuracy (blue bar) and its mean confidence
    (red hatched outline); a calibrated model has both on the diagonal. Bin counts above the bars.
    """
    calibration = evaluation.calibration
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(10, 4.2), sharey=True)
    for ax, stage, label in zip(axes, ("before", "after"), ("uncalibrated (T = 1)", f"T = {calibration['temperature']:.3g}")):
        bins = calibration[f"bins_{stage}"]
        edges = np.array(bins["edges"])
        width = np.diff(edges)
        filled = [i for i, c in enumerate(bins["count"]) if c]
        accuracy = np.array([bins["accuracy"][i] for i in filled])
        confidence = np.array([bins["confidence"][i] for i in filled])
        ax.bar(
            edges[filled], accuracy, width=width[filled], align="edge", color="tab:blue", edgecolor="k", lw=0.5, label="accuracy"
        )
        ax.bar(
            edges[filled],
            confidence,
            width=width[filled],
            align="edge",
            fill=False,
            edgecolor="tab:red",
            hatch="//",
            lw=0.8,
            label="mean confidence",
        )
        for i in filled:
            ax.text(edges[i] + width[i] / 2, 1.01, str(bins["count"][i]), ha="center", va="bottom", fontsize=6)
        ax.plot([0, 1], [0, 1], "k--", lw=0.8)
        ax.set_xlim(0, 1)
        ax.set_ylim(0, 1.08)
        ax.set_xlabel("confidence (top-1 probability)")
        ax.set_title(f"{label}: ECE {100 * calibration[f'ece_{stage}']:.1f}%", fontsize=9)
    axes[0].set_ylabel("accuracy (top-1)")
    axes[0].legend(fontsize=7, loc="upper left")
    fig.suptitle(
        f"{evaluation.name}: reliability ({calibration['n']} patterns; T {calibration['temperature_source']})", fontsize=9
    )
    return save_figure(fig, path)
