"""The seed's central result at small scale (Schopf et al., ML4pXRDs; issue 8), end to end, no Ray.

Claim under test: a network trained only on synthetic crystals drawn from a collection's statistics
classifies patterns of *unseen structure types* better than the same network trained on the
collection's own structures.

1. Data (`prepare_data`): the collection's records (one per material id: the mp40 CSVs overlap),
   read serially, split by structure type (area A's `split_by_structure_type`, `split_seed` fixed
   across training seeds), statistics of the statistics part (A's `build_statistics`); the class
   list is the space groups with at least `statistics.min_count_per_spacegroup` statistics-part
   structures.
2. Evaluation sets, built once and restricted to the class list: pure patterns of the test-part
   structures (area E's `simulate_sets`), the same structures with coordinates / lattice / both
   re-drawn from the statistics (area C's `randomize`, the seed's S3 test), and the measured
   patterns (E's `load_measured_set`) whose space group is a class.
3. Two arms per training seed, the same architecture (`training.model`), batch size, optimiser and
   number of gradient steps (`experiment.steps`, the equal budget):
   - A "synthetic": area F's `PatternStream` (generate -> spglib check -> simulate -> augment);
   - B "structures": D's baseline mode, the statistics-part structures of the class list
     simulated at the two crystallite sizes `training.baseline_sizes_nm`, dropout on, shuffled
     passes over that fixed set (`xrdgen.training.epoch_batches`).
   D's `Trainer` evaluates the test set every `eval_every` steps (the learning curves).
4. Outputs in OUT (`run`): results.json, results.md (mean ± std over seeds, chance levels),
   learning_curves.png, recall_per_spacegroup.png, config.yaml (exact config and seeds),
   command.txt, data/ (statistics, held-out test entries) and runs/<arm>_seed<s>/ (D's run
   directories plus evaluation.json). Repeating the command (e.g. with more seeds) reuses the
   prepared data (data/prepared.*, keyed by a hash of the settings they depend on) and every
   finished run (evaluation.json present); an unfinished run is redone from scratch, because the
   position of a synthetic stream cannot be restored.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from xrdgen.config import Config
from xrdgen.errors import UserError
from xrdgen.plotting import pyplot, save_figure

ARMS = {
    "synthetic": "A: synthetic stream",
    "structures": "B: statistics-part structures",
}
TEST_SET = "test"  # name of the unmodified held-out set
MEASURED_SET = "measured"

# `--quick`: the same pipeline on a short, coarse grid, a seeded random 700 of the records (8 classes
# of >= 20 statistics-part structures) and 80 steps of 32 patterns per arm: under a minute of CPU.
QUICK = {
    "experiment.max_structures": 700,
    "experiment.seeds": [0],
    "experiment.steps": 80,
    "experiment.eval_every": 40,
    "experiment.randomizations": ["coordinates"],
    "statistics.min_count_per_spacegroup": 20,
    "grid.two_theta_min": 10.0,
    "grid.two_theta_max": 60.0,
    "grid.step": 0.05,
    "training.batch_size": 32,
}


# --------------------------------------------------------------------------------------------- data
@dataclass
class EvaluationSet:
    """Model inputs (n, n_points) in input scaling with their true space groups."""

    name: str
    x: np.ndarray
    spacegroups: np.ndarray
    names: list[str]
    skipped: list[dict] = field(default_factory=list)


@dataclass
class ExperimentData:
    statistics: object  # xrdgen.statistics.Statistics
    classes: list[int]
    baseline_x: np.ndarray
    baseline_y: np.ndarray
    sets: list[EvaluationSet]  # TEST_SET first
    facts: dict  # counts for the report


def collection_records(config: Config) -> list:
    """The experiment's records: folders of CSVs expanded, one per id, optionally a seeded subset."""
    from xrdgen.collection import list_records

    spec = config.experiment
    sources: list[Path] = []
    for item in spec.collection:
        path = Path(item)
        csvs = sorted(path.glob("*.csv")) if path.is_dir() else []
        sources.extend(csvs or [path])
    records = list_records([str(p) for p in sources])
    if spec.dedupe_ids:
        unique = {}
        for record in records:
            unique.setdefault(_record_key(record), record)
        records = list(unique.values())
    if spec.max_structures is not None and spec.max_structures < len(records):
        rng = np.random.default_rng(spec.split_seed)
        records = [records[i] for i in sorted(rng.choice(len(records), spec.max_structures, replace=False))]
    return records


def _record_key(record) -> str:
    """The CSV row's id (material_id) when the CSV has one, else the CIF text, else the file."""
    row_id = record.source_id.rsplit(":", 1)[-1]
    if record.cif is not None and not re.fullmatch(r"row\d+", row_id):
        return row_id
    return record.cif if record.cif is not None else record.source_id


def _spec_for_inputs(config: Config, classes: list[int], out: Path):
    """E's `TrainedModel` without a network: grid, wavelength and scaling that turn data into inputs."""
    from xrdgen.evaluation import TrainedModel

    return TrainedModel(
        model=None, spacegroups=list(classes), grid=config.grid, wavelength=config.simulation.wavelength_kalpha1,
        sqrt_scale=config.augmentation.sqrt_scale, name=config.training.model, meta={}, run_dir=out,
    )


def data_key(config: Config) -> str:
    """Hash of every setting the data depend on: training seeds, steps and the optimiser are left out,
    so a rerun with more seeds or steps reuses the prepared data."""
    import hashlib

    dump = config.model_dump(mode="json")
    spec = {k: v for k, v in dump["experiment"].items() if k not in ("seeds", "steps", "eval_every")}
    parts = {k: dump[k] for k in ("seed", "grid", "simulation", "augmentation", "collection", "statistics")}
    parts.update(experiment=spec, baseline_sizes_nm=dump["training"]["baseline_sizes_nm"])
    return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]


def save_data(data: ExperimentData, folder: Path, key: str) -> None:
    """data/prepared.npz (patterns) + data/prepared.json (names, facts); statistics are saved already."""
    arrays = {"baseline_x": data.baseline_x, "baseline_y": data.baseline_y}
    for i, s in enumerate(data.sets):
        arrays[f"x{i}"], arrays[f"y{i}"] = s.x, s.spacegroups
    np.savez(folder / "prepared.npz", **arrays)
    sets = [{"name": s.name, "names": s.names, "skipped": s.skipped} for s in data.sets]
    (folder / "prepared.json").write_text(json.dumps({"key": key, "classes": data.classes, "sets": sets, "facts": data.facts}))


def load_data(folder: Path, key: str) -> Optional[ExperimentData]:
    """The data a previous run with the same `data_key` prepared, or None."""
    from xrdgen.statistics import Statistics

    try:
        meta = json.loads((folder / "prepared.json").read_text())
        if meta["key"] != key:
            return None
        arrays = np.load(folder / "prepared.npz")
        statistics = Statistics.load(folder / "statistics.json.gz")
    except (FileNotFoundError, KeyError, ValueError):
        return None
    sets = [EvaluationSet(m["name"], arrays[f"x{i}"], arrays[f"y{i}"], m["names"], m["skipped"]) for i, m in enumerate(meta["sets"])]
    return ExperimentData(statistics, meta["classes"], arrays["baseline_x"], arrays["baseline_y"], sets, meta["facts"])


def prepare_data(config: Config, out: Path, log: Callable[[str], None] = print, progress: bool = True) -> ExperimentData:
    """Steps 1-2 of the module docstring, or what an earlier run with the same data settings saved."""
    key = data_key(config)
    cached = load_data(out / "data", key)
    if cached is not None:
        log(f"data: reusing {out / 'data'} (same data settings, key {key})")
        return cached
    data = _prepare_data(config, out, log, progress)
    save_data(data, out / "data", key)
    return data


def _prepare_data(config: Config, out: Path, log: Callable[[str], None], progress: bool) -> ExperimentData:
    """Read, split, build statistics, simulate the evaluation sets and arm B's training set."""
    from xrdgen.collection import chunked, save_entries, serial_map_chunks
    from xrdgen.evaluation import load_measured_set, simulate_sets
    from xrdgen.split import group_keys, split_by_structure_type
    from xrdgen.statistics import build_statistics
    from xrdgen.training import build_pattern_set

    spec = config.experiment
    data_dir = out / "data"
    data_dir.mkdir(parents=True, exist_ok=True)

    records = collection_records(config)
    entries, skipped = [], []
    for chunk_entries, chunk_skipped in serial_map_chunks(chunked(records, config.collection.chunk_size), config.collection, progress):
        entries.extend(chunk_entries)
        skipped.extend(chunk_skipped)
    if not entries:
        raise UserError(f"{', '.join(spec.collection)}: no readable structure")
    log(f"collection: {len(records)} unique records, {len(entries)} read, {len(skipped)} skipped")
    keys = group_keys(entries, config.statistics.prototype_grouping)
    stats_part, test_part = split_by_structure_type(entries, config.statistics.test_fraction, spec.split_seed, keys=keys)
    statistics = build_statistics(stats_part, config, {"source": ", ".join(spec.collection), "split_seed": spec.split_seed})
    classes = [int(sg) for sg in statistics.spacegroups]
    if len(classes) < 2:
        raise UserError(
            f"statistics.min_count_per_spacegroup={config.statistics.min_count_per_spacegroup}: only {len(classes)} "
            f"space group(s) reach it in the statistics part; lower it"
        )
    statistics.save(data_dir / "statistics.json.gz")
    log(f"structure-type split (seed {spec.split_seed}): {len(stats_part)} statistics, {len(test_part)} test, "
        f"{len(set(keys))} structure types; {len(classes)} classes (>= {config.statistics.min_count_per_spacegroup})")

    in_classes = set(classes)
    test_entries = [e for e in test_part if e.spacegroup in in_classes]
    test_file = save_entries(test_entries, data_dir / "test_part.json.gz", {"part": "test", "classes": classes})
    inputs = _spec_for_inputs(config, classes, out)
    sets = [
        EvaluationSet(TEST_SET if s.name == "unmodified" else s.name, s.x, s.labels, s.names, s.skipped)
        for s in simulate_sets(test_file, inputs, config, config.seed, statistics, spec.randomizations)
    ]
    measured_facts = {}
    if spec.measured is not None:
        measured = load_measured_set(Path(spec.measured), inputs, symprec=config.collection.symprec)
        keep = np.isin(measured.labels, classes)
        measured_facts = {
            "measured_total": len(measured.labels),
            "measured_outside_classes": {n: int(sg) for n, sg, k in zip(measured.names, measured.labels, keep) if not k},
            "measured_skipped": measured.skipped,
        }
        sets.append(EvaluationSet(MEASURED_SET, measured.x[keep], measured.labels[keep],
                                  [n for n, k in zip(measured.names, keep) if k], measured.skipped))

    crystals = [e.crystal for e in stats_part]  # labelled with spglib's space group
    baseline = build_pattern_set(crystals, classes, config, seed=config.seed, crystallite_sizes_nm=config.training.baseline_sizes_nm, progress=progress)
    log(f"arm B training set: {len(baseline)} patterns of {len(baseline) // 2} statistics-part structures; "
        + ", ".join(f"{s.name}: {len(s.spacegroups)}" for s in sets))

    stats_counts = {int(sg): statistics.per_spacegroup[sg].count for sg in classes}
    facts = {
        "records": len(records),
        "read": len(entries),
        "skipped": len(skipped),
        "structure_types": len(set(keys)),
        "statistics_part": len(stats_part),
        "test_part": len(test_part),
        "test_part_in_classes": len(test_entries),
        "test_part_partially_occupied": sum(not e.ordered for e in test_entries),
        "classes": classes,
        "n_classes": len(classes),
        "min_count_per_spacegroup": config.statistics.min_count_per_spacegroup,
        "statistics_counts": stats_counts,
        "baseline_patterns": len(baseline),
        "baseline_skipped": baseline.skipped,
        "sets": {s.name: len(s.spacegroups) for s in sets},
        "set_skipped": {s.name: len(s.skipped) for s in sets},
        "chance": {s.name: chance_levels(s.spacegroups, classes, stats_counts) for s in sets},
        **measured_facts,
    }
    return ExperimentData(statistics, classes, baseline.x, baseline.y, sets, facts)


def chance_levels(labels: np.ndarray, classes: list[int], class_counts: dict[int, int]) -> dict:
    """What guessing achieves: uniformly random classes, and always the most frequent training classes."""
    n_classes = len(classes)
    by_frequency = sorted(classes, key=lambda sg: -class_counts[sg])
    labels = np.asarray(labels)
    share = (lambda chosen: float(np.mean(np.isin(labels, chosen)))) if len(labels) else (lambda chosen: float("nan"))
    return {
        "uniform_top1": 1.0 / n_classes,
        "uniform_top5": min(5, n_classes) / n_classes,
        "majority_top1": share(by_frequency[:1]),
        "majority_top5": share(by_frequency[:5]),
    }


# ---------------------------------------------------------------------------------------- training
def arm_config(config: Config, arm: str) -> Config:
    """The config a run of `arm` trains with: the baseline flag (and thereby dropout) only for arm B."""
    arm_cfg = config.model_copy(deep=True)
    arm_cfg.training.baseline = arm == "structures"
    return arm_cfg


def train_arm(arm: str, seed: int, data: ExperimentData, config: Config, out: Path, log: Callable[[str], None] = print) -> dict:
    """Train one arm for `experiment.steps` steps and evaluate it on every set; runs/<arm>_seed<s>/."""
    from xrdgen.training import Trainer, epoch_batches

    spec = config.experiment
    run_dir = out / "runs" / f"{arm}_seed{seed}"
    done = run_dir / "evaluation.json"
    if done.exists():
        result = json.loads(done.read_text())
        if result.get("steps") == spec.steps and result.get("classes") == data.classes:
            log(f"{arm} seed {seed}: reusing the finished run in {run_dir}")
            return result
    if run_dir.exists():
        shutil.rmtree(run_dir)
    cfg = arm_config(config, arm)
    batch_size = cfg.training.resolved().batch_size
    index_of = {sg: i for i, sg in enumerate(data.classes)}
    test = data.sets[0]
    y_test = np.array([index_of[int(sg)] for sg in test.spacegroups], dtype=np.int32)
    trainer = Trainer(cfg, data.classes, run_dir=run_dir, test_set=(test.x, y_test), resume=False, log=log)

    stream = None
    if arm == "synthetic":
        from xrdgen.stream import PatternStream

        stream = PatternStream(data.statistics, cfg, seed=seed)
        batches = iter(lambda: stream.next_batch(batch_size), None)
    else:
        batches = epoch_batches(data.baseline_x, data.baseline_y, batch_size, seed=seed)

    log(f"--- arm {ARMS[arm]}, seed {seed}: {spec.steps} steps of {batch_size} patterns")
    start = time.monotonic()
    history = trainer.fit(batches, epochs=spec.steps // spec.eval_every, batches_per_epoch=spec.eval_every, max_minutes=None, log_every_s=60.0)
    seconds = time.monotonic() - start
    result = {
        "arm": arm,
        "seed": seed,
        "steps": trainer.step,
        "batch_size": batch_size,
        "classes": data.classes,
        "seconds": seconds,
        "patterns_seen": int(sum(h["patterns"] for h in history)),
        "curve": [
            {"step": h["step"], "patterns": int(sum(g["patterns"] for g in history[: i + 1])),
             "test_top1": h.get("test_top1"), "test_top5": h.get("test_top5"), "train_accuracy": h["train_accuracy"]}
            for i, h in enumerate(history)
        ],
        "sets": evaluate_model(trainer.model, data, config, run_dir),
    }
    if stream is not None:
        result["stream"] = stream.counters.as_dict()
    done.write_text(json.dumps(result, indent=1))
    return result


def evaluate_model(model, data: ExperimentData, config: Config, run_dir: Path) -> dict:
    """Top-1/top-5 and per-space-group recall on every evaluation set (area E's `evaluate`)."""
    from xrdgen.evaluation import evaluate

    trained = dataclasses.replace(_spec_for_inputs(config, data.classes, run_dir), model=model)
    results = {}
    for s in data.sets:
        if len(s.spacegroups) == 0:
            continue
        ev = evaluate(trained.probabilities(s.x), s.spacegroups, data.classes, name=s.name)
        results[s.name] = {
            "n": ev.n,
            "top1": ev.top_k_accuracy[0],
            "top5": ev.top_k_accuracy[min(5, len(ev.top_k_accuracy)) - 1],
            "per_spacegroup": {str(sg): v for sg, v in sorted(ev.per_spacegroup.items())},
        }
    return results


# ----------------------------------------------------------------------------------------- results
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


SET_TITLES = {
    TEST_SET: "test part (unseen structure types)",
    "randomized coordinates": "test part, coordinates re-drawn",
    "randomized lattice": "test part, lattice re-drawn",
    "randomized both": "test part, both re-drawn",
    MEASURED_SET: "measured (lab17, in class list)",
}


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


COLOURS = {"synthetic": "tab:blue", "structures": "tab:orange"}


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


# ---------------------------------------------------------------------------------------------- run
def check(config: Config) -> None:
    spec = config.experiment
    if spec.steps % spec.eval_every:
        raise UserError(f"experiment.steps={spec.steps} must be a multiple of experiment.eval_every={spec.eval_every}")
    if spec.measured is not None and not Path(spec.measured).is_dir():
        raise UserError(f"experiment.measured: {spec.measured}: no such folder (set it to null to skip measured patterns)")


def run(config: Config, out: Path | str, command: str = "", log: Callable[[str], None] = print, progress: bool = True) -> dict:
    """The whole experiment (module docstring); returns the results dict also written to results.json."""
    out = Path(out)
    check(config)
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(config.to_yaml())
    (out / "command.txt").write_text(command + "\n")
    started = time.monotonic()
    data = prepare_data(config, out, log=log, progress=progress)
    prepared = time.monotonic() - started
    runs = []
    for seed in config.experiment.seeds:
        for arm in ARMS:
            runs.append(train_arm(arm, seed, data, config, out, log=log))
    summary = summarize(runs, data)
    figures = {
        "learning_curves": str(plot_learning_curves(runs, data, out / "learning_curves.png")),
        "recall_per_spacegroup": str(plot_recall(runs, data, out / "recall_per_spacegroup.png")),
    }
    results = {
        "facts": data.facts,
        "summary": summary,
        "runs": runs,
        "figures": figures,
        "seeds": config.experiment.seeds,
        "command": command,
        "seconds_data": prepared,
        "seconds_total": time.monotonic() - started,
        "config": config.model_dump(mode="json"),
    }
    (out / "results.json").write_text(json.dumps(results, indent=1))
    table = markdown_table(summary, data, config)
    (out / "results.md").write_text(
        f"# Synthetic crystals (A) vs the collection's own structures (B)\n\n{table}\n"
        f"Rerun: `{command}`\n"
    )
    log(table)
    return results
