"""Training data of real structures (`training.data`: structures, mix) with the real parts: the shipped
statistics, real Materials Project structures of its held-out part, the project's simulator.

What is checked: labels index the class list by each structure's own space group; every pass over
the structures sees each once; a structure's sample effects are drawn afresh in every epoch (with
only the zero shift switched on, two epochs' patterns are the same pattern shifted by different
amounts within the drawn range, while with no effect at all they are identical); the mix takes a
Binomial(n, p) share from the synthetic stream; `xrdgen train` streams them and leaves the
held-out test structures out of training.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import binom
from typer.testing import CliRunner

from xrdgen.cli import app
from xrdgen.collection.entries import load_entries, save_entries
from xrdgen.config import load_config
from xrdgen.pipeline import resolve_statistics
from xrdgen.simulation.simulator import PatternSimulator
from xrdgen.statistics.model import Statistics
from xrdgen.training.stream import PatternStream
from xrdgen.training.structure_stream import MixedStream, StructureStream, training_structures

ZERO_SHIFT_MAX = 0.1  # degrees, AugmentationConfig's default


@pytest.fixture(scope="module")
def shipped():
    """(statistics, class list, the held-out part's entries) of the statistics shipped in the package."""
    statistics_path, test_path = resolve_statistics("default")
    statistics = Statistics.load(statistics_path)
    return statistics, [int(sg) for sg in statistics.spacegroups], load_entries(test_path), test_path


def _distinct(entries, classes, n):
    """n small structures of distinct space groups in the class list (labels then name the structure)."""
    chosen, seen = [], set()
    for entry in sorted(entries, key=lambda e: (e.crystal.n_sites, str(e.source_id))):
        sg = int(entry.crystal.spacegroup)
        if sg in classes and sg not in seen:
            chosen.append(entry)
            seen.add(sg)
        if len(chosen) == n:
            return chosen
    raise AssertionError("not enough distinct space groups")


def test_labels_are_the_structures_space_groups_and_each_pass_sees_every_structure(shipped):
    statistics, classes, entries, _ = shipped
    chosen = _distinct(entries, classes, 5)
    config = load_config(None, {"preset": "measured"})
    stream = StructureStream([e.crystal for e in chosen], classes, config, seed=4)
    x, y = stream.next_batch(15)  # three passes
    assert x.shape == (15, config.grid.n_points) and x.dtype == np.float32 and np.all(np.isfinite(x))
    expected = sorted(classes.index(int(e.crystal.spacegroup)) for e in chosen)
    for epoch in range(3):
        assert sorted(y[5 * epoch : 5 * epoch + 5].tolist()) == expected
    assert stream.epoch == 3 and stream.counters.patterns == 15 and stream.counters.skipped == 0
    # the same structure in two epochs: two different patterns (every effect and imperfection drawn again)
    first = {int(label): row for label, row in zip(y[:5], x[:5])}
    second = {int(label): row for label, row in zip(y[5:10], x[5:10])}
    for label in first:
        assert np.abs(first[label] - second[label]).max() > 0.05


def _lag(a: np.ndarray, b: np.ndarray, max_lag: int) -> int:
    """The shift (grid points) of b against a that lines their peaks up best: argmax of the cross-correlation."""
    core = slice(max_lag, len(a) - max_lag)
    scores = [float(np.dot(a[core], np.roll(b, -lag)[core])) for lag in range(-max_lag, max_lag + 1)]
    return int(np.argmax(scores)) - max_lag


def test_sample_effects_are_drawn_afresh_every_epoch(shipped):
    """Only the zero shift on, a fixed crystallite size: each epoch's pattern is the pure one shifted by its own
    δ ~ U[-0.1°, 0.1°]; with no effect on, the epochs repeat the same pattern exactly."""
    _, classes, entries, _ = shipped
    (entry,) = _distinct(entries, classes, 1)
    fixed = {"preset": "pure", "simulation.crystallite_size_nm": [50.0, 50.0]}
    plain = StructureStream([entry.crystal], classes, load_config(None, fixed), seed=0)
    a, b = plain.next_pattern()[0], plain.next_pattern()[0]
    np.testing.assert_array_equal(a, b)

    config = load_config(None, {**fixed, "augmentation.zero_shift": True})
    reference = PatternSimulator(config.simulation, config.grid).simulate(entry.crystal, np.random.default_rng(0))
    stream = StructureStream([entry.crystal], classes, config, seed=0)
    bound = int(np.ceil(ZERO_SHIFT_MAX / config.grid.step)) + 1
    lags = [_lag(reference, stream.next_pattern()[0], 3 * bound) for _ in range(4)]
    assert stream.epoch == 4
    assert all(abs(lag) <= bound for lag in lags), lags
    assert len(set(lags)) >= 3, lags  # four epochs, four draws of δ (21 possible lags)


def test_the_mix_takes_a_binomial_share_from_the_synthetic_stream(shipped):
    statistics, classes, entries, _ = shipped
    config = load_config(None, {"preset": "pure", "grid.step": 0.1})
    chosen = _distinct(entries, classes, 4)
    n, p = 400, 0.3
    mixed = MixedStream(
        PatternStream(statistics, config, seed=1), StructureStream([e.crystal for e in chosen], classes, config, 2), p, seed=3
    )
    x, y = mixed.next_batch(n)
    synthetic, real = mixed.synthetic.counters.patterns, mixed.structures.counters.patterns
    assert synthetic + real == n and x.shape == (n, config.grid.n_points)
    lo, hi = binom.ppf(1e-4, n, p), binom.isf(1e-4, n, p)  # a 1-in-5,000 band on either side
    assert lo <= synthetic <= hi, (synthetic, lo, hi)
    assert np.all((y >= 0) & (y < len(classes)))
    real_labels = {classes.index(int(e.crystal.spacegroup)) for e in chosen}
    assert np.isin(y, sorted(real_labels)).sum() >= real  # every real pattern carries one of the real labels
    for share, expected in ((0.0, (0, 20)), (1.0, (20, 0))):
        edge = MixedStream(
            PatternStream(statistics, config, seed=1), StructureStream([e.crystal for e in chosen], classes, config, 2), share, 0
        )
        edge.next_batch(20)
        assert (edge.synthetic.counters.patterns, edge.structures.counters.patterns) == expected


def test_training_structures_leave_out_held_out_ones_and_other_classes(shipped, tmp_path):
    statistics, classes, entries, _ = shipped
    outside = [e for e in entries if int(e.crystal.spacegroup) not in classes][:3]
    inside = _distinct(entries, classes, 6)
    source = save_entries(inside + outside, tmp_path / "structures.json.gz")
    got = training_structures(source, classes, load_config(None, {}), held_out=inside[:2])
    assert got.names == [str(e.source_id) for e in inside[2:]]
    assert got.left_out == {"unreadable": 0, "outside the class list": 3, "held-out test structures": 2}
    assert "training structures: 4 from" in got.summary(source)


def test_cli_train_streams_the_mix_without_the_held_out_structures(shipped, tmp_path):
    """`xrdgen train default --train FILE` with training.data=mix: two steps, the config recorded, the test
    structures that the training file also holds left out."""
    _, classes, entries, _ = shipped
    chosen = _distinct(entries, classes, 8)
    test = save_entries(chosen[:3], tmp_path / "test.json.gz")
    train = save_entries(chosen[1:], tmp_path / "train.json.gz")  # two of them are test structures
    sets = {
        "grid.step": 0.1,
        "training.data": "mix",
        "training.synthetic_fraction": 0.5,
        "training.batch_size": 8,
        "training.batches_per_epoch": 2,
        "training.epochs": 1,
        "evaluation.calibration_patterns": 16,
        "training.output_dir": str(tmp_path / "run"),
    }
    args = ["train", "default", "--test", str(test), "--train", str(train)]
    result = CliRunner().invoke(app, args + [a for k, v in sets.items() for a in ("--set", f"{k}={v}")], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert f"training structures: 5 from {train} (2 held-out test structures)" in (result.output)
    assert "training data: 50% synthetic, the rest patterns of 5 real structures" in result.output
    training = json.loads((tmp_path / "run" / "meta.json").read_text())["config"]["training"]
    assert training["data"] == "mix" and training["structures"] == str(train)
    history = json.loads((tmp_path / "run" / "history.json").read_text())
    assert history[-1]["step"] == 2
