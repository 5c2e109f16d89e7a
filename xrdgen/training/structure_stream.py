"""Training patterns of real structures, and their mix with the synthetic stream (`training.data`).

The method trains on synthetic crystals only; a collection's own structures (its statistics part)
are the alternative it compares against, as a fixed set (`training.baseline`). Here they become an
endless stream instead, so that every recipe trains on the same kind of input at an equal budget:

- `synthetic`: the method's `PatternStream` (xrdgen/training/stream.py);
- `structures`: `StructureStream`, shuffled passes over the real structures of the class list;
  every pattern is simulated with its sample effects and imperfections drawn afresh
  (`CrystalPatterns`, the synthetic stream's steps 3-4), so a structure seen in two epochs is seen
  as two different measurements;
- `mix`: `MixedStream`, each pattern from the synthetic stream with probability
  `training.synthetic_fraction`, else from the real structures (independent draws).

Labels index the statistics' class list in all three. Structures outside it, and those of the
held-out test set (by source id: for the statistics' own collection, exactly its statistics part
remains), are left out and counted (`training_structures`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from xrdgen.collection.entries import CollectionEntry
from xrdgen.config import Config
from xrdgen.crystal import Crystal
from xrdgen.errors import UserError
from xrdgen.training.datasets import read_structures
from xrdgen.training.stream import MAX_CONSECUTIVE_FAILURES, CrystalPatterns, PatternStream, StreamCounters, batch_of


@dataclass
class TrainingStructures:
    """The real structures a stream draws from, and what was left out of the source."""

    crystals: list[Crystal]
    names: list[str]
    left_out: dict[str, int] = field(default_factory=dict)  # reason -> count

    def summary(self, source: Path) -> str:
        dropped = ", ".join(f"{n} {reason}" for reason, n in self.left_out.items() if n) or "none left out"
        return f"training structures: {len(self.crystals)} from {source} ({dropped})"


def training_structures(
    source: Path, classes: Sequence[int], config: Config, held_out: Sequence[CollectionEntry] = ()
) -> TrainingStructures:
    """The structures of `source` (entries file or collection) in `classes`, the `held_out` ones (by source id) left out."""
    entries, unreadable = read_structures(Path(source), config)
    allowed = {int(sg) for sg in classes}
    held_out_ids = {str(e.source_id) for e in held_out}
    kept = [e for e in entries if int(e.crystal.spacegroup) in allowed and str(e.source_id) not in held_out_ids]
    left_out = {
        "unreadable": len(unreadable),
        "outside the class list": sum(int(e.crystal.spacegroup) not in allowed for e in entries),
        "held-out test structures": sum(
            int(e.crystal.spacegroup) in allowed and str(e.source_id) in held_out_ids for e in entries
        ),
    }
    if not kept:
        raise UserError(f"{source}: no structure of the class list to train on ({left_out})")
    return TrainingStructures([e.crystal for e in kept], [str(e.source_id) for e in kept], left_out)


class StructureStream:
    """Endless patterns of real structures: shuffled passes, effects and imperfections drawn per pattern.

    Reproducible from `seed`, like `PatternStream`; `next_batch` has its signature. A structure whose
    simulation fails is skipped for that pattern and counted; a long run of failures is an error.
    """

    def __init__(self, crystals: Sequence[Crystal], classes: Sequence[int], config: Config, seed: int):
        label_of = {int(sg): i for i, sg in enumerate(classes)}
        outside = sorted({int(c.spacegroup) for c in crystals} - set(label_of))
        if outside:
            raise ValueError(f"space groups {outside} are not in the class list")
        if not crystals:
            raise ValueError("no structures to draw from")
        self.crystals = list(crystals)
        self.labels = np.array([label_of[int(c.spacegroup)] for c in crystals], dtype=np.int32)
        self.config = config
        order_seq, sim_seq = np.random.SeedSequence(int(seed)).spawn(2)
        self._order_rng = np.random.default_rng(order_seq)
        self._order: list[int] = []
        self.counters = StreamCounters()
        self._patterns = CrystalPatterns(config, np.random.default_rng(sim_seq), self.counters)
        self.epoch = 0  # passes over the structures begun so far

    @property
    def n_points(self) -> int:
        return self.config.grid.n_points

    def next_index(self) -> int:
        """The next structure of the current pass (a new shuffled pass when one ends)."""
        if not self._order:
            self._order = self._order_rng.permutation(len(self.crystals)).tolist()[::-1]
            self.epoch += 1
        return self._order.pop()

    def _random_index(self) -> int:
        """Any structure, outside the passes: the impurity phase of the very first pattern."""
        return int(self._order_rng.integers(len(self.crystals)))

    def _pure_pattern(self, choose: Callable[[], int]) -> tuple[np.ndarray, int]:
        failures = 0
        while True:
            index = choose()
            try:
                return self._patterns.pure(self.crystals[index]), int(self.labels[index])
            except Exception as exc:  # noqa: BLE001 - one odd structure must not stop training: count it
                self.counters.skip(exc)
                failures += 1
                if failures >= MAX_CONSECUTIVE_FAILURES:
                    raise RuntimeError(
                        f"{failures} consecutive structures failed to simulate (last: {type(exc).__name__}: {exc})"
                    ) from exc

    def next_pattern(self) -> tuple[np.ndarray, int]:
        """One pattern (float32, n_points) of the next structure, and its label."""
        pure, label = self._pure_pattern(self.next_index)
        return self._patterns.augmented(pure, first_impurity=lambda: self._pure_pattern(self._random_index)[0]), label

    def next_batch(self, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """(x float32 (b, n_points), y int32 (b,)), labels index the class list."""
        return batch_of(self.next_pattern, batch_size, self.n_points)


class MixedStream:
    """Each pattern from `synthetic` with probability `synthetic_fraction`, else from `structures`.

    Independent draws (seeded), so the synthetic share of n patterns is Binomial(n, synthetic_fraction);
    each source's own counters say how many it gave.
    """

    def __init__(self, synthetic: PatternStream, structures: StructureStream, synthetic_fraction: float, seed: int):
        if not 0.0 <= synthetic_fraction <= 1.0:
            raise ValueError(f"synthetic_fraction must be in [0, 1], not {synthetic_fraction}")
        if synthetic.n_points != structures.n_points:
            raise ValueError("the two streams have different grids")
        self.synthetic = synthetic
        self.structures = structures
        self.synthetic_fraction = float(synthetic_fraction)
        self._rng = np.random.default_rng([int(seed), 1])  # apart from the two streams seeded with `seed` and seed + 1

    @property
    def n_points(self) -> int:
        return self.synthetic.n_points

    def next_pattern(self) -> tuple[np.ndarray, int]:
        source = self.synthetic if self._rng.random() < self.synthetic_fraction else self.structures
        return source.next_pattern()

    def next_batch(self, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        return batch_of(self.next_pattern, batch_size, self.n_points)


def training_stream(config: Config, statistics, structures: TrainingStructures | None, seed: int):
    """The stream `training.data` names: synthetic, structures or their mix (module docstring)."""
    data = config.training.data
    if data == "synthetic":
        return PatternStream(statistics, config, seed=seed)
    if structures is None:
        raise UserError(f"training.data={data} needs the real structures (training.structures)")
    classes = [int(sg) for sg in statistics.spacegroups]
    real = StructureStream(structures.crystals, classes, config, seed=seed + 1)
    if data == "structures":
        return real
    return MixedStream(PatternStream(statistics, config, seed=seed), real, config.training.synthetic_fraction, seed)
