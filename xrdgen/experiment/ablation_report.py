"""The ablation's report: the Markdown table with its budget and noise reading, and the bar figure."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from xrdgen.config import Config
from xrdgen.plotting import pyplot, save_figure
from xrdgen.training.datasets import LabelledSet

METRICS = {"top1": "top-1", "top5": "top-5", "system": "crystal system"}


def _p(p: float) -> str:
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def _cell(entry: dict) -> str:
    lo, hi = entry["ci95"]
    return f"{100 * entry['accuracy']:.1f} % [{100 * lo:.0f}–{100 * hi:.0f}]"


def markdown(summary: dict, facts: dict[str, dict], measured: LabelledSet, n_outside: int, config: Config, command: str) -> str:
    """The report: one row per variant, the budget, and what differences the set can resolve."""
    lines = [
        f"# Sample and instrument effects: ablation on {measured.name}",
        "",
        f"{len(measured)} measured patterns scored ({len(measured.skipped)} skipped); {n_outside} have a space group outside "
        "the class list and count as wrong in top-1 and top-5. Crystal system: the most probable by summed calibrated probability. "
        "Brackets: 95 % Wilson interval; p: exact McNemar test against `none` (top-1 / crystal system).",
        "",
        "| variant | effects on | top-1 | top-5 | crystal system | p top-1 | p system |",
        "|---|---|---|---|---|---|---|",
    ]
    for variant, row in summary.items():
        on = ", ".join(facts[variant]["effects_on"]) or "(preset imperfections only)"
        if variant == "pure_start":
            on = f"the shared start alone: {facts[variant]['steps']} steps on pure patterns, no measured-preset training"
        p1, ps = ("–", "–") if variant == "none" else (_p(row["vs_none"][m]["p"]) for m in ("top1", "system"))
        lines.append(f"| {variant} | {on} | {_cell(row['top1'])} | {_cell(row['top5'])} | {_cell(row['system'])} | {p1} | {ps} |")
    first = next(f for v, f in facts.items() if v != "pure_start")
    noise = 100 * 1.959964 * math.sqrt(0.25 / max(len(measured), 1))  # widest 95 % half-width, at 50 %
    tests = len(summary) - 1
    minutes = [f["seconds"] / 60 for v, f in facts.items() if v != "pure_start"]
    lines += [
        "",
        f"Budget per variant: {first['steps']} steps of {first['batch_size']} patterns ({first['patterns']:,} synthetic patterns), "
        f"{config.training.model}, seed {config.seed}, statistics {first['key']['statistics']}"
        + (
            f", every variant starting from one model trained {config.ablation.pure_start_steps} steps on pure patterns; "
            if config.ablation.pure_start_steps
            else "; "
        )
        + f"{min(minutes):.1f}–{max(minutes):.1f} min per variant (training and calibration), {sum(minutes):.0f} min in all.",
        "",
        f"Reading: with {len(measured)} patterns a 95 % interval is up to ±{noise:.0f} points wide, so a top-1 difference under "
        f"~±{noise:.0f} points from `none` is noise unless McNemar's p (which pairs the patterns) is small; with {tests} variant(s) "
        f"compared to `none`, one p < 0.05 may be chance alone (Bonferroni: p < {0.05 / max(tests, 1):.3g}).",
        "",
        f"Rerun: `{command}`",
    ]
    return "\n".join(lines) + "\n"


def plot(summary: dict, path: Path, subject: str) -> Path:
    """Bars per variant and metric with their 95 % Wilson intervals."""
    plt = pyplot()
    variants = list(summary)
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(variants)), 4.0))
    width = 0.8 / len(METRICS)
    for i, (metric, title) in enumerate(METRICS.items()):
        acc = np.array([100 * summary[v][metric]["accuracy"] for v in variants])
        ci = np.array([[100 * x for x in summary[v][metric]["ci95"]] for v in variants])
        x = np.arange(len(variants)) + (i - (len(METRICS) - 1) / 2) * width
        ax.bar(x, acc, width, yerr=[acc - ci[:, 0], ci[:, 1] - acc], capsize=2, label=title)
    ax.set_xticks(np.arange(len(variants)), variants, rotation=30, ha="right")
    ax.set_ylabel("accuracy on measured patterns (%)")
    ax.set_ylim(0, 100)
    ax.legend(fontsize=8)
    ax.set_title(f"Effect ablation on {subject} (bars: 95 % Wilson intervals)", fontsize=10)
    return save_figure(fig, path)
