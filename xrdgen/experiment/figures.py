"""The experiment's figures: learning curves on a log axis of patterns with the fitted power laws, and
per-space-group recall of the arms (bars, or a scatter of A against B for many classes)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from xrdgen.experiment.arms import ARMS
from xrdgen.experiment.prepared import RANDOM, STRUCTURE_TYPE, TEST_SET, ExperimentData
from xrdgen.plotting import pyplot, save_figure

SPLIT_TITLES = {STRUCTURE_TYPE: "structure-type split (unseen structure types)", RANDOM: "random split (control)"}
COLOURS = {"synthetic": "tab:blue", "structures": "tab:orange", "synthetic_icsd": "tab:green"}
MAX_BARS = 30  # more space groups than this: recall of A against B as a scatter, not bars


def plot_learning_curves(runs: list[dict], data: ExperimentData, path: Path, fits: dict | None = None) -> Path:
    """Held-out top-1 and top-5 against patterns seen (log axis, so the trend of A against B shows) on
    one split, on the curve set (validation, else test): mean over seeds, band = min..max; the fitted
    power laws of the top-1 error (dashed, `inference.power_law`) extended to ten times the patterns."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharex=True)
    curve_set = data.curve_set
    chance = data.facts["chance"][curve_set.name]
    runs = [r for r in runs if r["split"] == data.split]
    for ax, metric, title in zip(axes, ("test_top1", "test_top5"), ("top-1", "top-5")):
        for arm in ARMS:
            curves = [r["curve"] for r in runs if r["arm"] == arm]
            if not curves:
                continue
            length = min(len(c) for c in curves)  # seeds stopped at different plateaus: the common part
            x = np.array([p["patterns"] for p in curves[0][:length]])
            y = np.array([[p[metric] for p in c[:length]] for c in curves], dtype=np.float64) * 100
            label = f"{ARMS[arm]} ({len(curves)} seed{'s' if len(curves) > 1 else ''})"
            ax.plot(x, y.mean(axis=0), marker="o", ms=3, color=COLOURS[arm], label=label)
            if len(curves) > 1:
                ax.fill_between(x, y.min(axis=0), y.max(axis=0), color=COLOURS[arm], alpha=0.2, lw=0)
            fit = (fits or {}).get(arm)
            if metric == "test_top1" and fit is not None:
                n = np.geomspace(fit["from_patterns"], 10 * x[-1], 50)
                ax.plot(
                    n, 100 * (1 - fit["a"] * n ** -fit["b"]), ls="--", lw=1, color=COLOURS[arm], label=f"{ARMS[arm]}: power law"
                )
        if metric == "test_top1":
            ax.axhline(
                100 * chance.get("test_majority", np.nan), color="grey", ls="--", lw=1, label="always the set's majority class"
            )
        ax.axhline(100 * chance[f"uniform_{title.replace('-', '')}"], color="grey", ls=":", lw=1, label="uniform guess")
        ax.set_xscale("log")
        ax.set_xlabel("training patterns seen (log)")
        ax.set_ylabel(f"{title} accuracy on the {curve_set.name} set (%)")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3, which="both")
        ax.set_title(f"{title}: {len(curve_set.spacegroups)} {curve_set.name} structures, {SPLIT_TITLES[data.split]}", fontsize=9)
    axes[0].legend(fontsize=7)
    return save_figure(fig, path)


def plot_recall(runs: list[dict], data: ExperimentData, path: Path, set_name: str = TEST_SET) -> Path:
    """Per-space-group top-1 recall on one split's test set, both arms (mean over seeds, bar = min..max)."""
    plt = pyplot()
    runs = [r for r in runs if r["split"] == data.split]
    counts = {}
    for r in runs:
        for sg, v in r["sets"].get(set_name, {}).get("per_spacegroup", {}).items():
            counts[int(sg)] = v["count"]
    groups = sorted(counts)
    if len(groups) > MAX_BARS:
        return plot_recall_scatter(runs, groups, counts, data, path, set_name)
    fig, ax = plt.subplots(figsize=(max(6, 0.55 * len(groups) + 2), 4))
    width = 0.4
    for offset, arm in zip((-width / 2, width / 2), ("synthetic", "structures")):
        arm_runs = [r for r in runs if r["arm"] == arm]
        if not arm_runs:
            continue
        recall = np.array([[r["sets"][set_name]["per_spacegroup"][str(sg)]["recall"] for sg in groups] for r in arm_runs]) * 100
        mean = recall.mean(axis=0)
        error = np.vstack([mean - recall.min(axis=0), recall.max(axis=0) - mean])
        ax.bar(
            np.arange(len(groups)) + offset,
            mean,
            width,
            yerr=error if len(arm_runs) > 1 else None,
            color=COLOURS[arm],
            label=ARMS[arm],
            capsize=2,
        )
    ax.set_xticks(np.arange(len(groups)), [f"{sg}\n(n={counts[sg]})" for sg in groups], fontsize=7)
    ax.set_xlabel("space group (test structures)")
    ax.set_ylabel("recall, top-1 (%)")
    ax.set_ylim(0, 105)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"per-space-group recall on the {set_name} set, {SPLIT_TITLES[data.split]}", fontsize=9)
    return save_figure(fig, path)


def plot_recall_scatter(
    runs: list[dict], groups: list[int], counts: dict, data: ExperimentData, path: Path, set_name: str
) -> Path:
    """Many classes: one point per space group, A's recall against B's (mean over seeds), area ~ test count."""
    plt = pyplot()
    recall = {}
    for arm in ("synthetic", "structures"):
        arm_runs = [r for r in runs if r["arm"] == arm]
        recall[arm] = (
            np.array([[r["sets"][set_name]["per_spacegroup"][str(sg)]["recall"] for sg in groups] for r in arm_runs]).mean(axis=0)
            * 100
        )
    a, b = recall["synthetic"], recall["structures"]
    sizes = np.array([counts[sg] for sg in groups], dtype=np.float64)
    fig, ax = plt.subplots(figsize=(6, 6))
    ax.scatter(b, a, s=10 + 190 * sizes / sizes.max(), alpha=0.5, color="tab:purple", lw=0)
    for sg, x, y, n in zip(groups, b, a, sizes):
        if n >= np.quantile(sizes, 0.85) or abs(x - y) >= 40:
            ax.annotate(str(sg), (x, y), fontsize=6, alpha=0.8)
    ax.plot([0, 100], [0, 100], color="grey", lw=1, ls="--")
    ax.set_xlim(-2, 102)
    ax.set_ylim(-2, 102)
    ax.set_xlabel(f"recall, {ARMS['structures']} (%)")
    ax.set_ylabel(f"recall, {ARMS['synthetic']} (%)")
    above = int(np.sum(a > b))
    ax.set_title(
        f"per-space-group top-1 recall, {len(groups)} groups, {SPLIT_TITLES[data.split]}\n"
        f"A better in {above}, B better in {int(np.sum(b > a))}; point area ~ test structures",
        fontsize=9,
    )
    ax.grid(alpha=0.3)
    return save_figure(fig, path)
