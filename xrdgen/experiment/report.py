"""The report of the experiment: spread over seeds, the Markdown tables and the two figures.

Every number is a mean over training seeds with its sample standard deviation (ddof 1), beside the
chance levels of the same set (uniform guessing, and always answering the most frequent classes).
The random-split control is a table of its own: the same two arms on the test set of each split,
side by side, so what unseen structure types cost each arm is the difference between the rows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from xrdgen.config import Config
from xrdgen.experiment.arms import ARMS
from xrdgen.experiment.data import MEASURED_SET, RANDOM, STRUCTURE_TYPE, TEST_SET, UNFILTERED_SET, ExperimentData
from xrdgen.experiment.testsets import REFERENCE_SET, TOO_LARGE, TOO_MANY_ATOMS
from xrdgen.plotting import pyplot, save_figure

SET_TITLES = {
    TEST_SET: "test part within the generator's limits",
    UNFILTERED_SET: "test part, unfiltered",
    REFERENCE_SET: "reference (test part made ordered, labels recomputed)",
    "randomized coordinates": "reference, coordinates re-drawn",
    "randomized lattice": "reference, lattice re-drawn",
    "randomized both": "reference, both re-drawn",
    MEASURED_SET: "measured patterns in the class list",
    "validation": "validation (other held-out structure types; curves and plateau rule only)",
}
SPLIT_TITLES = {STRUCTURE_TYPE: "structure-type split (unseen structure types)", RANDOM: "random split (control)"}
COLOURS = {"synthetic": "tab:blue", "structures": "tab:orange"}
MAX_BARS = 30  # more space groups than this: recall of A against B as a scatter, not bars


def summarize(runs: list[dict], data: dict[str, ExperimentData]) -> dict:
    """{split: {arm: {set: {metric: spread}}, "seconds": spread}}: mean, std (ddof 1), min, max over seeds."""
    table: dict = {}
    for split, split_data in data.items():
        for arm in ARMS:
            arm_runs = [r for r in runs if r["arm"] == arm and r["split"] == split]
            if not arm_runs:
                continue
            cell = table.setdefault(split, {}).setdefault(arm, {})
            for s in split_data.sets:
                for metric in ("top1", "top5"):
                    values = [r["sets"][s.name][metric] for r in arm_runs if s.name in r["sets"]]
                    if values:
                        cell.setdefault(s.name, {})[metric] = _spread(values)
            cell["seconds"] = _spread([r["seconds"] for r in arm_runs])
            plateaus = [r["plateau"] for r in arm_runs if r.get("plateau")]
            if plateaus:
                cell["plateau"] = {
                    s.name: {m: _spread([p["sets"][s.name][m] for p in plateaus]) for m in ("top1", "top5")}
                    for s in split_data.sets
                    if all(s.name in p["sets"] for p in plateaus)
                }
                for key in ("steps", "best_step", "patterns_seen", "seconds"):
                    cell["plateau"][key] = _spread([p[key] for p in plateaus])
                cell["plateau"]["stopped"] = [p["stopped"] for p in plateaus]
    return table


def _spread(values: list[float]) -> dict:
    v = np.asarray(values, dtype=np.float64)
    return {
        "mean": float(v.mean()),
        "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
        "min": float(v.min()),
        "max": float(v.max()),
        "values": [float(x) for x in v],
    }


def _cell(value: dict | None) -> str:
    return f"{100 * value['mean']:.1f} ± {100 * value['std']:.1f}" if value else "–"


def markdown_report(summary: dict, data: dict[str, ExperimentData], config: Config, preset: str) -> str:
    """The whole results text: set-up, one table per split, the random-split control, the counts."""
    spec = config.experiment
    batch = config.training.resolved().batch_size
    lines = [
        f"Pattern preset: **{preset}** (synthetic stream, arm B's training set and every simulated test set alike). "
        f"{spec.steps} gradient steps of {batch} patterns per arm; seeds {', '.join(map(str, spec.seeds))} "
        f"(mean ± std over {len(spec.seeds)} seed{'s' if len(spec.seeds) > 1 else ''}, in %).",
        "",
    ]
    for split, split_data in data.items():
        lines += [
            f"## {SPLIT_TITLES[split]}",
            "",
            split_table(summary.get(split, {}), split_data, spec.measured, config.statistics.min_structures_per_class),
            "",
        ]
    if any("plateau" in arm for split in summary.values() for arm in split.values()):
        lines += [
            f"## Each arm until its validation top-1 stops improving (patience {spec.patience} evaluations, "
            f"at most {spec.max_steps} steps; the last model is scored)",
            "",
            plateau_table(summary, data),
            "",
        ]
    if len(data) > 1:
        lines += ["## Random-split control", "", control_table(summary, data), ""]
    lines += ["## Counts", ""] + [line for split_data in data.values() for line in count_lines(split_data)]
    seconds = " ; ".join(
        f"{split} {ARMS[arm]} {summary[split][arm]['seconds']['mean'] / 60:.1f} min"
        for split in summary
        for arm in ARMS
        if arm in summary[split]
    )
    lines += ["", f"Training wall time per run (mean over seeds, this machine): {seconds}."]
    return "\n".join(lines) + "\n"


def split_table(summary: dict, data: ExperimentData, measured: str | None = None, min_structures: int = 10) -> str:
    """One row per evaluation set of one split: both arms' top-1 and top-5 beside chance."""
    facts = data.facts
    titles = {**SET_TITLES, MEASURED_SET: f"measured ({Path(measured).name}, in the class list)"} if measured else SET_TITLES
    lines = [
        f"{facts['n_classes']} classes (space groups with >= {facts['min_count_per_spacegroup']} "
        + (
            f"entries in {Path(facts['metadata']).name} and >= {min_structures} ordered statistics-part structures)."
            if facts.get("metadata")
            else "statistics-part structures)."
        ),
        "",
        "| evaluation set | n | A synthetic top-1 | B structures top-1 | A synthetic top-5 | B structures top-5 | chance top-1 (uniform / majority) | chance top-5 (uniform / majority) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in data.sets:
        chance = facts["chance"][s.name]
        cells = [_cell(summary.get(arm, {}).get(s.name, {}).get(metric)) for metric in ("top1", "top5") for arm in ARMS]
        lines.append(
            f"| {titles.get(s.name, s.name)} | {len(s.spacegroups)} | "
            + " | ".join(cells)
            + f" | {100 * chance['uniform_top1']:.1f} / {100 * chance['majority_top1']:.1f}"
            + f" | {100 * chance['uniform_top5']:.1f} / {100 * chance['majority_top5']:.1f} |"
        )
    return "\n".join(lines)


def plateau_table(summary: dict, data: dict[str, ExperimentData]) -> str:
    """Per split and arm: where the run stopped and its test-set accuracy there."""
    lines = [
        "| split | arm | stopped (per seed) | steps | best validation step | patterns seen | test top-1 | test top-5 |",
        "|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for split in data:
        for arm, title in ARMS.items():
            p = summary.get(split, {}).get(arm, {}).get("plateau")
            if not p:
                continue
            lines.append(
                f"| {SPLIT_TITLES[split]} | {title} | {', '.join(p['stopped'])} | {p['steps']['mean']:.0f} | "
                f"{p['best_step']['mean']:.0f} | {p['patterns_seen']['mean']:,.0f} | {_cell(p.get(TEST_SET, {}).get('top1'))} | "
                f"{_cell(p.get(TEST_SET, {}).get('top5'))} |"
            )
    return "\n".join(lines)


def control_table(summary: dict, data: dict[str, ExperimentData]) -> str:
    """Test set of each split (within the limits), both arms side by side."""
    lines = [
        "| split | n test | classes | A synthetic top-1 | B structures top-1 | A synthetic top-5 | B structures top-5 |",
        "|---|---:|---:|---:|---:|---:|---:|",
    ]
    for split, split_data in data.items():
        cells = [
            _cell(summary.get(split, {}).get(arm, {}).get(TEST_SET, {}).get(metric))
            for metric in ("top1", "top5")
            for arm in ARMS
        ]
        lines.append(
            f"| {SPLIT_TITLES[split]} | {split_data.facts['sets'][TEST_SET]} | {split_data.facts['n_classes']} | "
            + " | ".join(cells)
            + " |"
        )
    return "\n".join(lines)


def count_lines(data: ExperimentData) -> list[str]:
    """Where the structures went: labels, limits, arm B's set, the reference set."""
    f = data.facts
    lines = []
    for part, sel in (("test part", f["test_selection"]), ("statistics part (arm B)", f["baseline_selection"])):
        lines.append(
            f"- {data.split} split, {part}: {sel['entries']} structures; labels from the collection "
            f"{sel['label_source']['collection']}, from spglib {sel['label_source']['spglib']}, collection ≠ spglib "
            f"{sel['label_disagreements']}; in the class list {sel['in_classes']}, within the generator's limits "
            f"{sel['within_limits']}, outside {sel['outside_limits']} (volume {sel['outside_by_limit'][TOO_LARGE]}, "
            f"asymmetric unit {sel['outside_by_limit'][TOO_MANY_ATOMS]})."
        )
    lines.append(f"- {data.split} split, arm B: {f['baseline_patterns']} patterns; skipped {f['baseline_skipped'] or 'none'}.")
    if "references" in f:
        lines.append(
            f"- {data.split} split, reference set: {f['references']} ordered test structures, {f['reference_unlabelled']} "
            f"without a space group once ordered, {f['reference_label_changed']} whose label changed on ordering."
        )
    return lines


def plot_learning_curves(runs: list[dict], data: ExperimentData, path: Path) -> Path:
    """Held-out top-1 and top-5 against patterns seen (log axis, so the trend of A against B shows) on
    one split, on the curve set (validation, else test): mean over seeds, band = min..max."""
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
            ax.plot(
                x,
                y.mean(axis=0),
                marker="o",
                ms=3,
                color=COLOURS[arm],
                label=f"{ARMS[arm]} ({len(curves)} seed{'s' if len(curves) > 1 else ''})",
            )
            if len(curves) > 1:
                ax.fill_between(x, y.min(axis=0), y.max(axis=0), color=COLOURS[arm], alpha=0.2, lw=0)
        key = "top1" if metric == "test_top1" else "top5"
        ax.axhline(100 * chance[f"majority_{key}"], color="grey", ls="--", lw=1, label="always the most frequent classes")
        ax.axhline(100 * chance[f"uniform_{key}"], color="grey", ls=":", lw=1, label="uniform guess")
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
    for offset, arm in zip((-width / 2, width / 2), ARMS):
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
    ax.set_title(f"per-space-group recall on the {SET_TITLES.get(set_name, set_name)}, {SPLIT_TITLES[data.split]}", fontsize=9)
    return save_figure(fig, path)


def plot_recall_scatter(
    runs: list[dict], groups: list[int], counts: dict, data: ExperimentData, path: Path, set_name: str
) -> Path:
    """Many classes: one point per space group, A's recall against B's (mean over seeds), area ~ test count."""
    plt = pyplot()
    recall = {}
    for arm in ARMS:
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
