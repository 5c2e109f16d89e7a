"""The endless stream of labelled synthetic patterns: the one loop every producer runs.

Both the local trainer and each Ray generator actor (services/generator_pool.py) call
`PatternStream.next_batch`; Ray only decides where the loop runs, never what it computes.

One pattern (Schopmans et al., ML4pXRDs, section "Training on synthetic crystals"):
  1. draw the space group from the statistics' space-group prior (the class frequencies of the
     statistics set);
  2. generate a crystal of that space group (`Generator`; the spglib symmetry check happens inside);
  3. simulate its pattern on the configured grid (`PatternSimulator`), crystallite size (or
     Caglioti width) and the switched-on sample effects (`draw_sample_effects`) drawn per pattern;
  4. add the switched-on imperfections (`augment`): background, noise, a weak impurity phase.
     Which ones are on is the config's pattern preset (`preset`: `pure` switches every one off, so
     the stream gives pure patterns in the model's input scaling; `measured` switches them on), the
     same preset the fixed sets of `xrdgen.training.datasets` follow. The impurity is the pure
     pattern of the *previous* draw, itself a crystal of a prior-drawn random space group that is
     independent of the current one; reusing it halves generation work versus drawing a second
     crystal per pattern, without changing the impurity's distribution;
  5. label = index of the space group in `statistics.spacegroups`.

Steps 3-4 are `CrystalPatterns`, shared with the stream of real structures
(xrdgen/training/structure_stream.py), which gives its crystals the same effects and imperfections.

A draw that fails (generator gives up, a simulator error on an odd crystal) is skipped and counted,
never silently replaced by a fixed pattern; a long run of consecutive failures is an error.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from xrdgen.config import Config
from xrdgen.generation.generator import Generator
from xrdgen.simulation.imperfections import augment, draw_sample_effects
from xrdgen.simulation.simulator import PatternSimulator

MAX_CONSECUTIVE_FAILURES = 200


class SpaceGroupMismatch(Exception):
    """The generated crystal's checked space group is not the one that was asked for."""


@dataclass
class StreamCounters:
    """What the stream has done so far; the services export these as metrics."""

    patterns: int = 0
    skipped: int = 0
    seconds_generate: float = 0.0
    seconds_simulate: float = 0.0
    seconds_augment: float = 0.0
    skipped_reasons: dict = field(default_factory=dict)

    def skip(self, reason: Exception) -> None:
        """Count a skipped draw under its exception type."""
        self.skipped += 1
        key = type(reason).__name__
        self.skipped_reasons[key] = self.skipped_reasons.get(key, 0) + 1

    def as_dict(self) -> dict:
        return dict(
            patterns=self.patterns,
            skipped=self.skipped,
            seconds_generate=self.seconds_generate,
            seconds_simulate=self.seconds_simulate,
            seconds_augment=self.seconds_augment,
            skipped_reasons=dict(self.skipped_reasons),
        )


class CrystalPatterns:
    """Steps 3-4 for crystals from any source: simulate with this pattern's sample effects, add the imperfections.

    The impurity phase of a pattern is the pure pattern of the crystal simulated before it; the very
    first pattern asks `first_impurity` for one (another crystal of the same source).
    """

    def __init__(self, config: Config, rng: np.random.Generator, counters: StreamCounters):
        self.config = config
        self.rng = rng
        self.counters = counters
        self.simulator = PatternSimulator(config.simulation, config.grid)
        self.previous_pure: Optional[np.ndarray] = None

    def pure(self, crystal) -> np.ndarray:
        """Step 3: the crystal's pattern with its sample effects drawn afresh (none in the pure preset)."""
        t0 = time.perf_counter()
        effects = draw_sample_effects(self.config.augmentation, self.rng)
        pure = self.simulator.simulate(crystal, self.rng, effects=effects)
        self.counters.seconds_simulate += time.perf_counter() - t0
        return pure

    def augmented(self, pure: np.ndarray, first_impurity: Callable[[], np.ndarray]) -> np.ndarray:
        """Step 4: background, noise and the impurity phase as switched on, in the model's input scaling (float32)."""
        impurity = None
        if self.config.augmentation.impurity:
            if self.previous_pure is None:
                self.previous_pure = first_impurity()
            impurity = self.previous_pure
        t0 = time.perf_counter()
        pattern = augment(pure, config=self.config.augmentation, rng=self.rng, impurity=impurity, grid=self.config.grid)
        self.counters.seconds_augment += time.perf_counter() - t0
        self.previous_pure = pure
        self.counters.patterns += 1
        return np.asarray(pattern, dtype=np.float32)


class PatternStream:
    """generate -> (spglib check) -> simulate -> imperfections -> batch, reproducible from `seed`.

    `statistics` is a `xrdgen.statistics.model.Statistics`; `config` the whole `Config` (grid, simulation,
    augmentation, generation sections are used). Two streams with the same statistics, config and
    seed produce the same batches.
    """

    def __init__(self, statistics, config: Config, seed: int):
        self.statistics = statistics
        self.config = config
        self.seed = int(seed)
        # Independent child streams: space-group draws / simulation+augmentation / the generator.
        draw_seq, sim_seq, gen_seq = np.random.SeedSequence(self.seed).spawn(3)
        self._rng = np.random.default_rng(draw_seq)
        self._generator = Generator(statistics, config.generation, int(gen_seq.generate_state(1)[0]))
        self._label_of = {sg: i for i, sg in enumerate(statistics.spacegroups)}
        self.counters = StreamCounters()
        self._patterns = CrystalPatterns(config, np.random.default_rng(sim_seq), self.counters)

    @property
    def n_points(self) -> int:
        return self.config.grid.n_points

    def _pure_pattern(self) -> tuple[np.ndarray, int]:
        """Steps 1-3 with retries: (pure pattern, label)."""
        failures = 0
        while True:
            spacegroup = self.statistics.sample_spacegroup(self._rng)
            try:
                t0 = time.perf_counter()
                crystal = self._generator.generate(spacegroup=spacegroup)
                self.counters.seconds_generate += time.perf_counter() - t0
                pure = self._patterns.pure(crystal)
            except Exception as exc:  # noqa: BLE001 - a bad draw is counted, the stream goes on
                self.counters.skip(exc)
                failures += 1
                if failures >= MAX_CONSECUTIVE_FAILURES:
                    raise RuntimeError(
                        f"{failures} consecutive failed draws (last: {type(exc).__name__}: {exc}); "
                        f"skipped so far: {self.counters.skipped_reasons}"
                    ) from exc
                continue
            found = getattr(crystal, "spacegroup", spacegroup)
            if found != spacegroup:  # the label must be what spglib says the crystal is
                self.counters.skip(SpaceGroupMismatch(f"asked {spacegroup}, got {found}"))
                continue
            return pure, self._label_of[spacegroup]

    def next_pattern(self) -> tuple[np.ndarray, int]:
        """One augmented pattern (float32, n_points) and its label."""
        pure, label = self._pure_pattern()
        return self._patterns.augmented(pure, first_impurity=lambda: self._pure_pattern()[0]), label

    def next_batch(self, batch_size: int) -> tuple[np.ndarray, np.ndarray]:
        """(x float32 (b, n_points), y int32 (b,)), labels index `statistics.spacegroups`."""
        return batch_of(self.next_pattern, batch_size, self.n_points)


def batch_of(next_pattern, batch_size: int, n_points: int) -> tuple[np.ndarray, np.ndarray]:
    """(x float32 (b, n_points), y int32 (b,)) of `batch_size` calls of `next_pattern` (every stream's batch)."""
    x = np.empty((batch_size, n_points), dtype=np.float32)
    y = np.empty(batch_size, dtype=np.int32)
    for i in range(batch_size):
        x[i], y[i] = next_pattern()
    return x, y
