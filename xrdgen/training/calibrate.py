"""Fitting a trained run's temperature on held-out synthetic patterns (`xrdgen calibrate`), or on
labelled measured patterns (`xrdgen calibrate --measured DIR`).

The held-out set is fresh: `PatternStream` with the run's config (grid, simulation, imperfections,
generation: the distribution the network was trained on) and a seed derived from, but different to,
the training seed, so its crystals are ones the network never saw. Not the test set, which stays for
evaluation. The same for baseline-mode runs (trained on a fixed set of collection structures): the
generator's crystals are held out from that set too. The maths (T minimising the held-out NLL of
softmax(z / T)) is xrdgen/evaluation/calibration.py's; the result goes into meta.json (`rundir.write_calibration`).

On measured patterns (`calibrate_on_measured`): a temperature fitted on synthetic patterns need not
calibrate real ones, whose logits are less confident and less often right. T is fitted on the
measured patterns inside the class list, and how well that calibrates patterns it was not fitted on
is estimated by k-fold cross-validation: each fold's patterns are scaled with the T fitted on the
other folds, and the ECE and NLL are taken over all of them (`ece_cross_validated`). The stored T is
the one fitted on every pattern; its in-sample ECE (`ece_after`) is optimistic, the cross-validated
one is what to expect on new patterns of the same kind.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from xrdgen.config import Config
from xrdgen.errors import UserError
from xrdgen.evaluation.calibration import TEMPERATURE_BOUNDS, calibration_summary, fit_temperature
from xrdgen.training.rundir import META_FILE, InputSpec, TrainedModel, load_model_run, write_calibration
from xrdgen.training.stream import PatternStream

METHOD = "temperature scaling (Guo et al. 2017)"
_CALIBRATION_STREAM = 0xCA1  # mixed into the training seed: the held-out stream never repeats the training stream


def calibration_seed(seed: int) -> int:
    """The held-out stream's seed: a SeedSequence of (training seed, a fixed word), so a different
    stream than the training one (which is seeded with the training seed itself), yet reproducible."""
    return int(np.random.SeedSequence([int(seed), _CALIBRATION_STREAM]).generate_state(1)[0])


def held_out_patterns(
    statistics, config: Config, n_patterns: int, seed: int, log: Callable[[str], None] = print, chunk: int = 64
):
    """`n_patterns` fresh (x, class index) pairs from the synthetic stream with `seed`."""
    stream = PatternStream(statistics, config, seed=seed)
    xs, ys = [], []
    while sum(len(y) for y in ys) < n_patterns:
        x, y = stream.next_batch(min(chunk, n_patterns - sum(len(y) for y in ys)))
        xs.append(np.asarray(x, dtype=np.float32))
        ys.append(np.asarray(y, dtype=np.int64))
        log(f"calibration patterns: {sum(len(y) for y in ys)}/{n_patterns}")
    return np.concatenate(xs), np.concatenate(ys)


def calibrate(trained: TrainedModel, statistics, config: Config, n_patterns: int, log: Callable[[str], None] = print) -> dict:
    """Fit T on `n_patterns` held-out stream patterns; the meta.json "calibration" entry.

    `config` is the run's (grid, simulation, augmentation, generation: the training distribution),
    its input spec must be the run's. The statistics are normally the ones the run was trained
    from; every space group they draw must be in the run's class list (labels are re-indexed to it).
    """
    classes = {int(sg): i for i, sg in enumerate(trained.spacegroups)}
    foreign = sorted(int(sg) for sg in statistics.spacegroups if int(sg) not in classes)
    if foreign:
        raise UserError(
            f"{trained.run_dir}: the statistics draw space groups {foreign[:5]} that are not in the run's class list; give the statistics it was trained from"
        )
    if InputSpec.from_config(config) != trained.spec:
        raise UserError(f"{trained.run_dir}: the config's grid/wavelength/scaling differ from the run's input spec")
    seed = calibration_seed(config.seed)
    x, y = held_out_patterns(statistics, config, n_patterns, seed, log=log)
    y = np.array([classes[int(statistics.spacegroups[i])] for i in y], dtype=np.int64)  # stream index -> run's class index
    fitted_on = f"{len(y)} held-out synthetic patterns (PatternStream, seed {seed})"
    return _fitted(trained, trained.logits(x), y, fitted_on, seed)


def _fitted(trained: TrainedModel, logits: np.ndarray, y: np.ndarray, fitted_on: str, seed: int, **extra) -> dict:
    """The temperature fitted on (logits, class indices y) and the record meta.json keeps of it."""
    fit = fit_temperature(logits, y)
    summary = calibration_summary(logits, np.asarray(trained.spacegroups)[y], trained.spacegroups, fit.temperature, "fitted")
    return {
        "method": METHOD,
        "temperature": fit.temperature,
        "fitted_on": fitted_on,
        "patterns": int(len(y)),
        "seed": seed,
        "nll_before": fit.nll_before,
        "nll_after": fit.nll_after,
        "ece_before": summary["ece_before"],
        "ece_after": summary["ece_after"],
        **extra,
        "accuracy": summary["accuracy"],
        # T at an end of the search interval: a near-uniform (untrained) or near-one-hot model, not a fitted optimum
        "at_bound": any(abs(fit.temperature / bound - 1) < 1e-3 for bound in TEMPERATURE_BOUNDS),
    }


def calibrate_run(run_dir: Path, statistics, config: Config, statistics_path: Path, log: Callable[[str], None] = print) -> dict:
    """Fit a saved run's temperature on `evaluation.calibration_patterns` fresh stream patterns and
    store it in its meta.json; every trainer's last step (CLI, experiment, ablation, cluster job)."""
    n = config.evaluation.calibration_patterns
    log(f"calibrating: temperature scaling on {n} held-out synthetic patterns")
    calibration = calibrate(load_model_run(run_dir), statistics, config, n, log=log)
    calibration["statistics"] = str(statistics_path)
    write_calibration(run_dir, calibration)
    if calibration["at_bound"]:
        log(
            f"warning: T = {calibration['temperature']:.4g} is at the end of the search interval: the model is barely trained or "
            f"its held-out outputs are degenerate; its probabilities say little"
        )
    log(
        f"temperature T = {calibration['temperature']:.4g}: held-out NLL {calibration['nll_before']:.4f} -> "
        f"{calibration['nll_after']:.4f}, ECE {100 * calibration['ece_before']:.1f}% -> {100 * calibration['ece_after']:.1f}% "
        f"(stored in {Path(run_dir) / META_FILE})"
    )
    return calibration


def calibrate_on_measured(trained: TrainedModel, measured, folds: int = 5, seed: int = 0) -> dict:
    """T fitted on a labelled measured set (a `LabelledSet` in the model's input), with k-fold estimates (module docstring)."""
    inside = measured.restricted(trained.spacegroups)
    if len(inside) < 2 * folds:
        raise UserError(f"{measured.name}: {len(inside)} patterns in the class list; calibration needs at least {2 * folds}")
    logits = trained.logits(inside.x)
    y = inside.class_indices(trained.spacegroups).astype(np.int64)
    order = np.random.default_rng(seed).permutation(len(y))
    scaled = np.empty_like(logits)
    for fold in np.array_split(order, folds):
        rest = np.setdiff1d(order, fold)
        scaled[fold] = logits[fold] / fit_temperature(logits[rest], y[rest]).temperature
    cross = calibration_summary(scaled, inside.spacegroups, trained.spacegroups, 1.0, "cross-validated")
    fitted_on = (
        f"{len(y)} measured patterns of {measured.name} in the class list ({folds}-fold cross-validated ECE "
        f"{100 * cross['ece_before']:.1f} %)"
    )
    extra = {"ece_cross_validated": cross["ece_before"], "nll_cross_validated": cross["nll_before"], "folds": folds}
    return _fitted(trained, logits, y, fitted_on, seed, **extra)
