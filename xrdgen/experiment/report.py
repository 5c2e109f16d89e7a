"""The report of the experiment: spread over seeds, the Markdown table and the two figures.

Every number is a mean over training seeds with its sample standard deviation (ddof 1), beside the
chance levels of the same set (uniform guessing, and always answering the most frequent classes).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from xrdgen.config import Config
from xrdgen.experiment.arms import ARMS
from xrdgen.experiment.data import MEASURED_SET, TEST_SET, ExperimentData
from xrdgen.plotting import pyplot, save_figure

SET_TITLES = {
    TEST_SET: "test part (unseen structure types)",
    "randomized coordinates": "test part, coordinates re-drawn",
    "randomized lattice": "test part, lattice re-drawn",
    "randomized both": "test part, both re-drawn",
    MEASURED_SET: "measured (lab17, in class list)",
}
COLOURS = {"synthetic": "tab:blue", "structures": "tab:orange"}


def summarize(runs: list[dict], data: ExperimentData) -> dict:
    """Mean, standard deviation (ddof 1), min and max over seeds of every (arm, set, metric)."""
    table = {}
    for arm in ARMS:
        arm_runs = [r for r in runs if r["arm"] == arm]
        for s in data.sets:
            for metric in ("top1", "top5"):
                values = [r["sets"][s.name][metric] for r in arm_runs if s.name in r["sets"]]
                if values:
                    table.setdefault(arm, {}).setdefault(s.name, {})[metric] = _spread(values)
        if arm_runs:
            table.setdefault(arm, {})["seconds"] = _spread([r["seconds"] for r in arm_runs])
    return table


def _spread(values: list[float]) -> dict:
    v = np.asarray(values, dtype=np.float64)
    return {"mean": float(v.mean()), "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
            "min": float(v.min()), "max": float(v.max()), "values": [float(x) for x in v]}


def markdown_table(summary: dict, data: ExperimentData, config: Config) -> str:
    """The results table as Markdown: one row per evaluation set, mean ± std over seeds in %."""
    spec = config.experiment
    batch = config.training.resolved().batch_size
    lines = [
        f"Classes: {data.facts['n_classes']} space groups with >= {data.facts['min_count_per_spacegroup']} statistics-part "
        f"structures; {spec.steps} gradient steps of {batch} patterns per arm; seeds {', '.join(map(str, spec.seeds))} "
        f"(mean ± std over {len(spec.seeds)} seed{'s' if len(spec.seeds) > 1 else ''}, in %).",
        "",
        "| evaluation set | n | A synthetic top-1 | B structures top-1 | A synthetic top-5 | B structures top-5 | chance top-1 (uniform / majority) | chance top-5 (uniform / majority) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in data.sets:
        chance = data.facts["chance"][s.name]
        cells = []
        for metric in ("top1", "top5"):
            for arm in ARMS:
                value = summary.get(arm, {}).get(s.name, {}).get(metric)
                cells.append(f"{100 * value['mean']:.1f} ± {100 * value['std']:.1f}" if value else "–")
        lines.append(
            f"| {SET_TITLES.get(s.name, s.name)} | {len(s.spacegroups)} | " + " | ".join(cells)
            + f" | {100 * chance['uniform_top1']:.1f} / {100 * chance['majority_top1']:.1f}"
            + f" | {100 * chance['uniform_top5']:.1f} / {100 * chance['majority_top5']:.1f} |"
        )
    seconds = " ; ".join(
        f"{ARMS[arm]} {summary[arm]['seconds']['mean'] / 60:.1f} min" for arm in ARMS if "seconds" in summary.get(arm, {})
    )
    lines += ["", f"Training wall time per run (mean over seeds, this machine): {seconds}."]
    return "\n".join(lines) + "\n"


def plot_learning_curves(runs: list[dict], data: ExperimentData, path: Path) -> Path:
    """Held-out top-1 and top-5 against patterns seen: mean over seeds, band = min..max."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), sharex=True)
    chance = data.facts["chance"][TEST_SET]
    for ax, metric, title in zip(axes, ("test_top1", "test_top5"), ("top-1", "top-5")):
        for arm in ARMS:
            curves = [r["curve"] for r in runs if r["arm"] == arm]
            if not curves:
                continue
            length = min(len(c) for c in curves)
            x = np.array([p["patterns"] for p in curves[0][:length]])
            y = np.array([[p[metric] for p in c[:length]] for c in curves], dtype=np.float64) * 100
            ax.plot(x, y.mean(axis=0), marker="o", ms=3, color=COLOURS[arm], label=f"{ARMS[arm]} ({len(curves)} seed{'s' if len(curves) > 1 else ''})")
            if len(curves) > 1:
                ax.fill_between(x, y.min(axis=0), y.max(axis=0), color=COLOURS[arm], alpha=0.2, lw=0)
        key = "top1" if metric == "test_top1" else "top5"
        ax.axhline(100 * chance[f"majority_{key}"], color="grey", ls="--", lw=1, label="always the most frequent classes")
        ax.axhline(100 * chance[f"uniform_{key}"], color="grey", ls=":", lw=1, label="uniform guess")
        ax.set_xlabel("training patterns seen")
        ax.set_ylabel(f"{title} accuracy on the test part (%)")
        ax.set_ylim(0, 100)
        ax.grid(alpha=0.3)
        ax.set_title(f"{title}: {len(data.sets[0].spacegroups)} test structures of unseen structure types", fontsize=9)
    axes[0].legend(fontsize=7)
    return save_figure(fig, path)


def plot_recall(runs: list[dict], data: ExperimentData, path: Path, set_name: str = TEST_SET) -> Path:
    """Per-space-group top-1 recall on the test part, both arms (mean over seeds, bar = min..max)."""
    plt = pyplot()
    counts = {}
    for r in runs:
        for sg, v in r["sets"].get(set_name, {}).get("per_spacegroup", {}).items():
            counts[int(sg)] = v["count"]
    groups = sorted(counts)
    fig, ax = plt.subplots(figsize=(max(6, 0.55 * len(groups) + 2), 4))
    width = 0.4
    for offset, arm in zip((-width / 2, width / 2), ARMS):
        arm_runs = [r for r in runs if r["arm"] == arm]
        if not arm_runs:
            continue
        recall = np.array([[r["sets"][set_name]["per_spacegroup"][str(sg)]["recall"] for sg in groups] for r in arm_runs]) * 100
        mean = recall.mean(axis=0)
        error = np.vstack([mean - recall.min(axis=0), recall.max(axis=0) - mean])
        ax.bar(np.arange(len(groups)) + offset, mean, width, yerr=error if len(arm_runs) > 1 else None,
               color=COLOURS[arm], label=ARMS[arm], capsize=2)
    ax.set_xticks(np.arange(len(groups)), [f"{sg}\n(n={counts[sg]})" for sg in groups], fontsize=7)
    ax.set_xlabel("space group (test structures)")
    ax.set_ylabel("recall, top-1 (%)")
    ax.set_ylim(0, 105)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(f"per-space-group recall on the {SET_TITLES.get(set_name, set_name)}", fontsize=9)
    return save_figure(fig, path)
