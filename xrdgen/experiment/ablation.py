"""Which sample and instrument effects help a synthetic-trained network read measured patterns.

Why an ablation: the `measured` preset switches on eight effects at once, so whether any one of them
(or all together) buys accuracy on real data is only visible against the same training without it.
Variants (`config.ABLATION_VARIANTS`): "none" (the preset's background, noises and impurity, every
one of the eight effects off), one effect group alone (`config.ABLATION_GROUPS`), and "all".

Every variant gets the same seed, network, batch size and number of gradient steps (the equal
budget) on the synthetic `PatternStream` of one statistics file; its run directory
OUT/runs/<variant>/ is an ordinary, calibrated model (`xrdgen evaluate` works on it). Each is scored
on the labelled measured folder: top-1, top-5 (a label outside the class list is a miss) and the
crystal system of the summed calibrated probabilities, each with its 95 % Wilson interval, and an
exact McNemar test (binomial on the discordant patterns) of top-1 and crystal system against "none".
With about a hundred patterns an interval is ±9 points wide: the report says so beside the table.

Start: with `ablation.pure_start_steps`, every variant starts from the same model, trained that many
steps on pure patterns (OUT/runs/pure_start/: the config with the `pure` preset's profile and no
imperfections), and trains its equal budget from there with a fresh optimiser (`training.init_from`). Why: from scratch,
parkCNN on the measured preset's patterns stayed at the space-group prior (loss = the prior's
entropy, every pattern called Pnma) for the first 1,000 steps, so every variant would score the
prior and the table would say nothing about the effects.
"""

from __future__ import annotations

import math
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Optional

import numpy as np
from scipy.stats import binomtest
from statsmodels.stats.proportion import proportion_confint

from xrdgen.config import ABLATION_GROUPS, PATTERN_PRESETS, Config, config_from_dict
from xrdgen.errors import UserError
from xrdgen.evaluation.metrics import SYSTEM_NAMES, evaluate, system_probabilities
from xrdgen.experiment.ablation_report import markdown, plot
from xrdgen.geometry import crystal_system
from xrdgen.jsonio import read_json, write_json
from xrdgen.pipeline import resolve_statistics
from xrdgen.statistics.model import Statistics
from xrdgen.training.calibrate import calibrate_run
from xrdgen.training.datasets import LabelledSet, load_measured_set
from xrdgen.training.rundir import InputSpec, load_model_run
from xrdgen.training.stream import PatternStream
from xrdgen.training.trainer import Trainer

EFFECT_FLAGS = tuple(flag for group in ABLATION_GROUPS.values() for flag in group)
PURE_START = "pure_start"  # OUT/runs/pure_start/: the shared start of every variant
RESULT_FILE = "ablation_variant.json"  # in each run directory; present = the variant finished
# `--quick`: the same walk on a short coarse grid, three variants, 4 steps of 8 patterns: seconds of CPU.
QUICK = {
    "ablation.variants": ["none", "peak_shift", "all"],
    "ablation.steps": 4,
    "ablation.eval_every": 2,
    "ablation.pure_start_steps": 2,
    "ablation.log_every_s": 1.0,
    "grid.two_theta_min": 10.0,
    "grid.two_theta_max": 60.0,
    "grid.step": 0.05,
    "training.batch_size": 8,
    "evaluation.calibration_patterns": 32,
}


def effects_on(variant: str) -> tuple[str, ...]:
    """The `augmentation` flags a variant switches on."""
    return () if variant in ("none", PURE_START) else EFFECT_FLAGS if variant == "all" else ABLATION_GROUPS[variant]


def variant_config(config: Config, variant: str) -> Config:
    """The config a variant trains with: its flags on, the other effects off, the budget in the training section."""
    spec = config.ablation
    cfg = config.model_copy(deep=True)
    for flag in EFFECT_FLAGS:
        setattr(cfg.augmentation, flag, flag in effects_on(variant))
    cfg.training.batch_size = config.training.resolved().batch_size
    cfg.training.batches_per_epoch = spec.eval_every
    cfg.training.epochs = spec.steps // spec.eval_every
    cfg.training.max_minutes = None  # the budget is steps, never wall time
    return cfg


def pure_start_config(config: Config) -> Config:
    """The config of the shared start: the `pure` preset's simulation and augmentation values, the rest unchanged."""
    data = config.model_dump(mode="json")
    data["preset"] = "pure"
    for section, values in PATTERN_PRESETS["pure"].items():
        data[section].update({k: list(v) if isinstance(v, tuple) else v for k, v in values.items()})
    return variant_config(config_from_dict(data, source="pure start"), "none")


def _key(cfg: Config, statistics_path: Path) -> dict:
    """What a finished run depends on: its config (the ablation section aside but its shared start) and statistics."""
    data = cfg.model_dump(mode="json")
    data.pop("ablation")
    return {"config": data, "statistics": str(statistics_path), "pure_start_steps": cfg.ablation.pure_start_steps}


def pure_start(config: Config, statistics: Statistics, statistics_path: Path, out: Path, log) -> Optional[Path]:
    """The shared start's run directory (trained, or reused from OUT/runs/pure_start/), or None without one."""
    steps = config.ablation.pure_start_steps
    if steps == 0:
        return None
    cfg = pure_start_config(config)
    cfg.training.epochs = steps // config.ablation.eval_every
    log(f"shared start: {steps} steps on pure patterns in {out / 'runs' / PURE_START}")
    train_variant(PURE_START, cfg, statistics, statistics_path, None, out, log)
    return out / "runs" / PURE_START


def train_variant(
    variant: str,
    cfg: Config,
    statistics: Statistics,
    statistics_path: Path,
    measured: Optional[LabelledSet],
    out: Path,
    log,
) -> dict:
    """Train, save and calibrate one variant in OUT/runs/<variant>/ (from `cfg.training.init_from` when
    set); a finished one with the same key is reused."""
    run_dir = out / "runs" / variant
    key = _key(cfg, statistics_path)
    done = run_dir / RESULT_FILE
    if done.exists():
        facts = read_json(done, "ablation variant")
        if facts.get("key") == key:
            log(f"{variant}: reusing the finished run in {run_dir}")
            return {**facts, "reused": True}
    if run_dir.exists():
        shutil.rmtree(run_dir)  # unfinished or differently configured: a stream's position cannot be restored
    classes = [int(sg) for sg in statistics.spacegroups]
    inside = measured.restricted(classes) if measured is not None else None  # curve on the patterns the classes can name
    test = (inside.x, inside.class_indices(classes)) if inside is not None and len(inside) else None
    trainer = Trainer(cfg, classes, run_dir=run_dir, test_set=test, resume=False, log=log)
    stream = PatternStream(statistics, cfg, seed=cfg.seed)
    batch, spec = trainer.global_batch_size, cfg.ablation
    start = time.monotonic()
    history = trainer.fit(
        iter(lambda: stream.next_batch(batch), None),
        epochs=cfg.training.epochs,
        batches_per_epoch=spec.eval_every,
        log_every_s=spec.log_every_s,
    )
    trained_s = time.monotonic() - start
    calibration = calibrate_run(run_dir, statistics, cfg, statistics_path, log=log)
    facts = {
        "variant": variant,
        "effects_on": list(effects_on(variant)),
        "key": key,
        "steps": trainer.step,
        "batch_size": batch,
        "patterns": int(sum(h["patterns"] for h in history)),
        "seconds_train": trained_s,
        "seconds": time.monotonic() - start,
        "temperature": calibration["temperature"],
        "curve": [
            {"step": h["step"], "train_accuracy": h["train_accuracy"], "measured_in_class_top1": h.get("test_top1")}
            for h in history
        ],
        "stream": stream.counters.as_dict(),
    }
    write_json(done, facts)
    return facts


def score_variant(run_dir: Path, measured: LabelledSet) -> dict:
    """Per-pattern correctness (top-1, top-5, crystal system) of the saved, calibrated model, and the summary."""
    trained = load_model_run(run_dir)  # from disk: the same model `xrdgen evaluate` reads
    p = trained.probabilities(measured.x)
    ev = evaluate(p, measured.spacegroups, trained.spacegroups, name=measured.name, names=measured.names)
    index_of = {sg: i for i, sg in enumerate(trained.spacegroups)}
    true = np.array([index_of.get(int(sg), -1) for sg in measured.spacegroups])  # -1: outside, never matched
    ranked = np.argsort(-p, axis=1, kind="stable")[:, :5]
    true_system = np.array([SYSTEM_NAMES.index(crystal_system(int(sg))) for sg in measured.spacegroups])
    correct = {
        "top1": ranked[:, 0] == true,
        "top5": (ranked == true[:, None]).any(axis=1),
        "system": system_probabilities(p, trained.spacegroups).argmax(axis=1) == true_system,
    }
    assert math.isclose(correct["top1"].mean(), ev.top_k_accuracy[0]) and math.isclose(
        correct["top5"].mean(), ev.top_k_accuracy[4]
    )
    return {
        "n": ev.n,
        "n_outside_class_list": ev.n_outside_classes,
        "correct": {m: [int(c) for c in v] for m, v in correct.items()},
        "crystal_system_of_top1": ev.to_dict()["crystal_system_accuracy"],
    }


def wilson(k: int, n: int) -> list[float]:
    """95 % Wilson score interval of k successes in n."""
    return [float(v) for v in proportion_confint(k, n, alpha=0.05, method="wilson")] if n else [math.nan, math.nan]


def mcnemar(variant: list[int], reference: list[int]) -> dict:
    """Exact McNemar: the patterns only one of the two gets right, binomial(½) two-sided."""
    a, b = np.asarray(variant, bool), np.asarray(reference, bool)
    only_variant, only_reference = int(np.sum(a & ~b)), int(np.sum(~a & b))
    n = only_variant + only_reference
    p = float(binomtest(only_variant, n, 0.5).pvalue) if n else 1.0
    return {"only_variant": only_variant, "only_none": only_reference, "p": p}


def summarize(scores: dict[str, dict]) -> dict:
    """{variant: {metric: {accuracy, correct, n, ci95}, "vs_none": {metric: mcnemar}}}."""
    table = {}
    for variant, s in scores.items():
        row = {}
        for metric, values in s["correct"].items():
            k = int(sum(values))
            row[metric] = {"accuracy": k / s["n"] if s["n"] else math.nan, "correct": k, "n": s["n"], "ci95": wilson(k, s["n"])}
        row["vs_none"] = {m: mcnemar(s["correct"][m], scores["none"]["correct"][m]) for m in ("top1", "system")}
        table[variant] = row
    return table


def run(config: Config, out: Path | str, command: str = "", log: Callable[[str], None] = print) -> dict:
    """Train (or reuse) every variant, score each on the measured folder, write the report; ablation.json's dict."""
    out, spec = Path(out), config.ablation
    if config.preset != "measured":
        raise UserError(f"the ablation varies the measured preset's effects; set preset: measured (not {config.preset})")
    if not Path(spec.measured).is_dir():
        raise UserError(f"ablation.measured: {spec.measured}: no such folder")
    statistics_path, _ = resolve_statistics(spec.statistics)
    if not statistics_path.exists():
        raise UserError(f"ablation.statistics: {statistics_path}: no such file")
    out.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(config.to_yaml())
    (out / "command.txt").write_text(command + "\n")
    statistics = Statistics.load(statistics_path)
    measured = load_measured_set(Path(spec.measured), InputSpec.from_config(config), config.collection.symprec)
    log(
        f"statistics {statistics_path} ({len(statistics.spacegroups)} classes); {len(measured)} measured patterns from {spec.measured}"
    )
    started = time.monotonic()
    start_dir = pure_start(config, statistics, statistics_path, out, log)
    facts, scores, trained_seconds = {}, {}, []
    if start_dir is not None:  # a reference row: the shared start itself, never trained on the measured preset
        facts[PURE_START] = read_json(start_dir / RESULT_FILE, "pure start")
        scores[PURE_START] = score_variant(start_dir, measured)
    for i, variant in enumerate(spec.variants, 1):
        cfg = variant_config(config, variant)
        cfg.training.init_from = start_dir
        log(
            f"[{i}/{len(spec.variants)}] variant {variant}: on {', '.join(effects_on(variant)) or 'none of the eight effects'}; "
            f"{spec.steps} steps of {cfg.training.batch_size} patterns"
        )
        facts[variant] = train_variant(variant, cfg, statistics, statistics_path, measured, out, log)
        if not facts[variant].get("reused"):
            trained_seconds.append(facts[variant]["seconds"])
        scores[variant] = score_variant(out / "runs" / variant, measured)
        left = len(spec.variants) - i
        eta = float(np.mean(trained_seconds)) * left if trained_seconds else 0.0
        rate = facts[variant]["patterns"] / max(facts[variant]["seconds_train"], 1e-9)
        top1 = np.mean(scores[variant]["correct"]["top1"]) if scores[variant]["n"] else math.nan
        log(
            f"[{i}/{len(spec.variants)}] {variant} done: top-1 {100 * top1:.1f} % on {scores[variant]['n']} measured patterns; "
            f"{facts[variant]['seconds'] / 60:.1f} min, {rate:.1f} patterns/s; {left} left, ETA {eta / 60:.0f} min "
            f"({time.strftime('%H:%M', time.localtime(time.time() + eta))})"
        )
    summary = summarize(scores)
    n_outside = scores["none"]["n_outside_class_list"]
    text = markdown(summary, facts, measured, n_outside, config, command)
    (out / "ablation.md").write_text(text)
    figure = plot(summary, out / "ablation.png", f"{measured.name}, {len(measured)} patterns")
    results = {
        "pure_start_steps": spec.pure_start_steps,
        "measured": {"folder": spec.measured, "n": len(measured), "skipped": measured.skipped, "n_outside_class_list": n_outside},
        "names": list(measured.names),
        "spacegroups": [int(sg) for sg in measured.spacegroups],
        "summary": summary,
        "variants": {v: {**facts[v], **scores[v]} for v in facts},
        "figure": str(figure),
        "command": command,
        "seconds_total": time.monotonic() - started,
        "config": config.model_dump(mode="json"),
    }
    write_json(out / "ablation.json", results)
    log(text)
    return results
