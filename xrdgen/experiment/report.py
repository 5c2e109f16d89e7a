"""The report of the experiment: intervals, the decision, the Markdown tables and the figures.

Every accuracy is the mean over training seeds (± the seeds' standard deviation when there are
several) with a 95 % interval from the bootstrap over prototype groups (`inference`), beside the
chance levels of the same set: uniform guessing, always arm A's most probable class (its prior's
mode), always arm B's most frequent training class, and always the set's own most frequent class.
Balanced accuracy (the mean per-class recall) is given beside top-1, because a class-imbalanced test
set rewards a model that favours the frequent classes. The paired A − B difference, the power-law
fits of the validation curves and the decision rule's verdict head the report.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import numpy as np

from xrdgen.config import Config
from xrdgen.evaluation.intervals import group_bootstrap, interval
from xrdgen.evaluation.metrics import SYSTEM_NAMES
from xrdgen.experiment.arms import ARMS, smoothed
from xrdgen.experiment.figures import SPLIT_TITLES
from xrdgen.experiment.inference import crossing, gain_over_last_doubling, power_law, verdict
from xrdgen.experiment.prepared import MEASURED_SET, STRUCTURE_TYPE, TEST_SET, UNFILTERED_SET, VALIDATION_SET, ExperimentData
from xrdgen.experiment.testsets import REFERENCE_SET, TOO_LARGE, TOO_MANY_ATOMS
from xrdgen.geometry import crystal_system

SET_TITLES = {
    TEST_SET: "test part within the generator's limits",
    UNFILTERED_SET: "test part, unfiltered",
    REFERENCE_SET: "reference (test part made ordered, labels recomputed)",
    "randomized coordinates": "reference, coordinates re-drawn",
    "randomized lattice": "reference, lattice re-drawn",
    "randomized both": "reference, both re-drawn",
    MEASURED_SET: "measured patterns in the class list",
    VALIDATION_SET: "validation (other held-out structure types; curves and model choice only)",
}
SHORT = {"synthetic": "A", "structures": "B", "synthetic_icsd": "A'"}
PAIRS = (("synthetic", "structures"), ("synthetic_icsd", "structures"), ("synthetic", "synthetic_icsd"))


def _spread(values: list[float]) -> dict:
    v = np.asarray(values, dtype=np.float64)
    return {
        "mean": float(v.mean()),
        "std": float(v.std(ddof=1)) if len(v) > 1 else 0.0,
        "min": float(v.min()),
        "max": float(v.max()),
        "values": [float(x) for x in v],
    }


def _correct(runs: list[dict], set_name: str, labels: np.ndarray, key: str = "sets") -> np.ndarray:
    """Per row, the share of the runs (seeds) whose top-1 answer is right."""
    return np.mean([np.asarray(r[key][set_name]["predicted"]) == labels for r in runs], axis=0)


def summarize(runs: list[dict], data: dict[str, ExperimentData], config: Config) -> dict:
    """{split: {"arms": {arm: {set: metrics}}, "paired": {...}, "fits": {...}, "decision": {...}}} (module docstring)."""
    spec = config.experiment
    table: dict = {}
    for split, split_data in data.items():
        by_arm = {arm: [r for r in runs if r["arm"] == arm and r["split"] == split] for arm in spec.arms}
        by_arm = {arm: arm_runs for arm, arm_runs in by_arm.items() if arm_runs}
        groups_of = split_data.facts.get("row_groups", {})
        cell: dict = {"arms": {}, "paired": {}, "fits": {}, "gain_last_doubling": {}}
        for s in split_data.sets:
            groups = [groups_of.get(name, f"alone:{name}") for name in s.names]
            correct = {
                arm: _correct(arm_runs, s.name, s.spacegroups)
                for arm, arm_runs in by_arm.items()
                if s.name in arm_runs[0]["sets"]
            }
            if not correct:
                continue
            boot = group_bootstrap(correct, groups, spec.bootstrap, seed=config.seed)
            for arm, arm_runs in by_arm.items():
                if arm not in correct:
                    continue
                metrics = {m: _spread([r["sets"][s.name][m] for r in arm_runs]) for m in ("top1", "top5", "balanced")}
                metrics["last_top1"] = _spread([r["last"][s.name]["top1"] for r in arm_runs if "last" in r])
                metrics["top1_interval"] = interval(boot[arm])
                metrics["per_spacegroup_mean"] = {
                    sg: {
                        "count": v["count"],
                        "correct": float(np.mean([r["sets"][s.name]["per_spacegroup"][sg]["correct"] for r in arm_runs])),
                    }
                    for sg, v in arm_runs[0]["sets"][s.name]["per_spacegroup"].items()
                }
                cell["arms"].setdefault(arm, {})[s.name] = metrics
            for a, b in PAIRS:
                if a in correct and b in correct:
                    cell["paired"].setdefault(f"{a}-{b}", {})[s.name] = {
                        "difference": float(np.mean(correct[a]) - np.mean(correct[b])),
                        "interval": interval(boot[a] - boot[b]),
                    }
        for arm, arm_runs in by_arm.items():
            cell["arms"][arm]["seconds"] = _spread([r["seconds"] for r in arm_runs])
            cell["arms"][arm]["patterns_seen"] = _spread([r["curve"][-1]["patterns"] for r in arm_runs])
            cell["arms"][arm]["scored"] = sorted({r.get("scored", "last") for r in arm_runs})
            curve = _mean_curve(arm_runs)
            cell["fits"][arm] = power_law(curve["patterns"], curve["top1"])
            cell["gain_last_doubling"][arm] = gain_over_last_doubling(curve["patterns"], smoothed(curve["top1"], spec.smoothing))
            plateaus = [r["plateau"] for r in arm_runs if r.get("plateau")]
            if plateaus:
                cell["arms"][arm]["plateau"] = {
                    "stopped": [p["stopped"] for p in plateaus],
                    **{k: _spread([p[k] for p in plateaus]) for k in ("steps", "patterns_seen", "seconds")},
                    "test_top1": _spread([p["sets"][TEST_SET]["top1"] for p in plateaus if TEST_SET in p["sets"]]),
                }
        if "synthetic" in by_arm and "structures" in by_arm and TEST_SET in cell["arms"]["synthetic"]:
            a, b = cell["arms"]["synthetic"][TEST_SET]["top1"]["mean"], cell["arms"]["structures"][TEST_SET]["top1"]["mean"]
            paired = cell["paired"]["synthetic-structures"][TEST_SET]
            gain = cell["gain_last_doubling"]["synthetic"]
            cell["decision"] = {
                "a_top1": a,
                "b_top1": b,
                "difference": paired["difference"],
                "interval": paired["interval"],
                "a_gain_last_doubling": gain,
                "min_gain_per_doubling": spec.min_gain_per_doubling,
                "crossing_patterns": crossing(cell["fits"]["synthetic"], cell["fits"]["structures"]),
                "verdict": verdict(paired["interval"], a, b, gain, spec.min_gain_per_doubling),
            }
        table[split] = cell
    return table


def _mean_curve(arm_runs: list[dict]) -> dict:
    """The curve-set top-1 against patterns, mean over seeds on the points all seeds reached."""
    length = min(len(r["curve"]) for r in arm_runs)
    return {
        "patterns": [arm_runs[0]["curve"][i]["patterns"] for i in range(length)],
        "top1": [float(np.mean([r["curve"][i]["test_top1"] or 0.0 for r in arm_runs])) for i in range(length)],
    }


def _pct(value: float) -> str:
    return f"{100 * value:.1f}"


def _with_interval(metrics: dict) -> str:
    lo, hi = metrics["top1_interval"]
    spread = f" ± {_pct(metrics['top1']['std'])}" if len(metrics["top1"]["values"]) > 1 else ""
    return f"{_pct(metrics['top1']['mean'])}{spread} [{_pct(lo)}, {_pct(hi)}]"


def decision_text(decision: dict, fits: dict) -> list[str]:
    """The verdict paragraph of the structure-type split."""
    lo, hi = decision["interval"]
    gain = decision["a_gain_last_doubling"]
    cross = decision["crossing_patterns"]
    fit_line = "; ".join(f"{SHORT[arm]}: err = {f['a']:.3g} · n^(−{f['b']:.3f})" for arm, f in fits.items() if f is not None)
    return [
        "Rule (fixed in the config before the run): *supported* when A beats B on the test set with the paired 95 % "
        "interval of A − B (bootstrap over prototype groups) above 0; *refuted at this scale* when B ≥ A and A's smoothed "
        f"validation top-1 gained less than {_pct(decision['min_gain_per_doubling'])} points over its last doubling of "
        "patterns; *inconclusive* otherwise, with the predicted crossing of the fitted learning curves.",
        "",
        f"- test top-1: A {_pct(decision['a_top1'])} %, B {_pct(decision['b_top1'])} %; A − B "
        f"{_pct(decision['difference'])} points, 95 % interval [{_pct(lo)}, {_pct(hi)}]",
        "- A's gain over its last doubling of patterns (smoothed validation top-1): "
        + ("curve too short" if gain is None else f"{_pct(gain)} points"),
        f"- power laws of the validation error (second half of each curve): {fit_line or 'too few points'}; "
        + (
            f"predicted crossing at {cross:,.0f} patterns"
            if cross
            else "no crossing ahead (A's error does not fall faster than B's)"
        ),
        "",
        f"**Verdict: {decision['verdict']}.**",
    ]


def markdown_report(summary: dict, data: dict[str, ExperimentData], config: Config, preset: str) -> str:
    """The whole results text: the decision, one table per split, the chance levels, the random-split control, the counts."""
    spec = config.experiment
    lines = [
        f"Pattern preset: **{preset}** (synthetic stream, arm B's training set and every simulated test set alike). "
        f"{spec.steps} gradient steps per arm of {config.training.resolved().batch_size} patterns per replica; seeds "
        f"{', '.join(map(str, spec.seeds))}. Accuracies in %, with 95 % intervals from {spec.bootstrap} bootstrap "
        "resamples of the test set's prototype groups; the scored model is the checkpoint of the best validation top-1 "
        "(the last model's top-1 beside it).",
        "",
    ]
    main = summary.get(STRUCTURE_TYPE, {})
    if "decision" in main:
        lines += ["## Decision", ""] + decision_text(main["decision"], main["fits"]) + [""]
    for split, split_data in data.items():
        cell = summary.get(split, {})
        lines += [
            f"## {SPLIT_TITLES[split]}",
            "",
            split_table(cell, split_data, spec.measured),
            "",
            paired_table(cell, split_data),
            "",
        ]
        lines += [chance_table(split_data), ""]
        if split == STRUCTURE_TYPE:
            lines += [system_table(cell, split_data), ""]
    plateau = plateau_lines(summary)
    if plateau:
        lines += [
            f"## Each arm until its smoothed validation top-1 stops improving (running mean of {spec.smoothing}, "
            f"patience {spec.patience} evaluations, at most {spec.max_steps} steps)",
            "",
            *plateau,
            "",
        ]
    if len(data) > 1:
        lines += ["## Random-split control", "", control_table(summary, data), ""]
    lines += ["## Counts", ""] + [line for split_data in data.values() for line in count_lines(split_data)]
    seconds = " ; ".join(
        f"{split} {ARMS[arm]} {cell['arms'][arm]['seconds']['mean'] / 60:.1f} min, "
        f"{cell['arms'][arm]['patterns_seen']['mean']:,.0f} patterns"
        for split, cell in summary.items()
        for arm in cell["arms"]
    )
    lines += ["", f"Training wall time per run (mean over seeds, 2 cores): {seconds}."]
    return "\n".join(lines) + "\n"


def split_table(cell: dict, data: ExperimentData, measured: str | None = None) -> str:
    """One row per evaluation set and arm: top-1 with its interval, balanced accuracy, top-5, the last model."""
    facts = data.facts
    titles = {**SET_TITLES, MEASURED_SET: f"measured ({Path(measured).name}, in the class list)"} if measured else SET_TITLES
    lines = [
        f"{facts['n_classes']} classes (space groups with >= {facts['min_count_per_spacegroup']} statistics-part structures).",
        "",
        "| evaluation set | arm | n | top-1 [95 % interval] | balanced accuracy | top-5 | top-1, last model |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for s in data.sets:
        for arm, sets in cell.get("arms", {}).items():
            m = sets.get(s.name)
            if m is None:
                continue
            lines.append(
                f"| {titles.get(s.name, s.name)} | {ARMS[arm]} | {len(s)} | {_with_interval(m)} | {_pct(m['balanced']['mean'])} | "
                f"{_pct(m['top5']['mean'])} | {_pct(m['last_top1']['mean']) if m['last_top1']['values'] else '–'} |"
            )
    return "\n".join(lines)


def paired_table(cell: dict, data: ExperimentData) -> str:
    """Paired differences of top-1 on every set, with their intervals."""
    lines = ["| evaluation set | difference | top-1 points [95 % interval] |", "|---|---|---:|"]
    for pair, sets in cell.get("paired", {}).items():
        a, b = pair.split("-")
        for s in data.sets:
            d = sets.get(s.name)
            if d is not None:
                lo, hi = d["interval"]
                lines.append(
                    f"| {SET_TITLES.get(s.name, s.name)} | {SHORT[a]} − {SHORT[b]} | {_pct(d['difference'])} [{_pct(lo)}, {_pct(hi)}] |"
                )
    return "\n".join(lines)


def chance_table(data: ExperimentData) -> str:
    lines = [
        "Chance levels (top-1, %): what an answer that ignores the pattern gets.",
        "",
        "| evaluation set | uniform | A's prior mode | B's most frequent training class | the set's own majority |",
        "|---|---:|---:|---:|---:|",
    ]
    for s in data.sets:
        c = data.facts["chance"][s.name]
        cells = [_pct(c[k]) if k in c else "–" for k in ("uniform_top1", "prior_mode", "training_mode", "test_majority")]
        lines.append(f"| {SET_TITLES.get(s.name, s.name)} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def system_table(cell: dict, data: ExperimentData) -> str:
    """Test top-1 per crystal system of the true space group: where an arm wins or loses."""
    rows: dict = defaultdict(lambda: defaultdict(lambda: [0.0, 0]))
    for arm, sets in cell.get("arms", {}).items():
        for sg, v in sets.get(TEST_SET, {}).get("per_spacegroup_mean", {}).items():
            system = crystal_system(int(sg))
            rows[system][arm][0] += v["correct"]
            rows[system][arm][1] += v["count"]
    arms = list(cell.get("arms", {}))
    lines = [
        "Test top-1 per crystal system of the true space group (%):",
        "",
        "| crystal system | n | " + " | ".join(ARMS[a] for a in arms) + " |",
        "|---|---:|" + "---:|" * len(arms),
    ]
    for system in SYSTEM_NAMES:
        if system in rows:
            n = next(iter(rows[system].values()))[1]
            lines.append(
                f"| {system} | {n} | " + " | ".join(_pct(rows[system][a][0] / max(rows[system][a][1], 1)) for a in arms) + " |"
            )
    return "\n".join(lines)


def plateau_lines(summary: dict) -> list[str]:
    """Where each arm stopped past the equal budget, and its test top-1 there."""
    lines = []
    for split, cell in summary.items():
        for arm, sets in cell["arms"].items():
            p = sets.get("plateau")
            if p:
                lines.append(
                    f"- {SPLIT_TITLES[split]}, {ARMS[arm]}: stopped ({', '.join(p['stopped'])}) at step {p['steps']['mean']:.0f}, "
                    f"{p['patterns_seen']['mean']:,.0f} patterns; test top-1 of the scored model {_pct(p['test_top1']['mean'])} %"
                )
    return lines


def control_table(summary: dict, data: dict[str, ExperimentData]) -> str:
    """The test set of each split, every arm: what unseen structure types cost each arm."""
    lines = ["| split | arm | n test | classes | top-1 [95 % interval] | balanced accuracy |", "|---|---|---:|---:|---:|---:|"]
    for split, split_data in data.items():
        for arm, sets in summary.get(split, {}).get("arms", {}).items():
            m = sets.get(TEST_SET)
            if m is not None:
                lines.append(
                    f"| {SPLIT_TITLES[split]} | {ARMS[arm]} | {split_data.facts['sets'][TEST_SET]} | {split_data.facts['n_classes']} | "
                    f"{_with_interval(m)} | {_pct(m['balanced']['mean'])} |"
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
