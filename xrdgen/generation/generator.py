"""The generator's public entry: checked synthetic crystals drawn from a collection's statistics.

`Generator(statistics, gen_config, seed)`: `.generate(spacegroup=None)` returns one `Crystal` whose
space group spglib confirms (`.spacegroup` set), `.generate_many(n)` a list. The space group comes
from the space-group prior unless given; the rest is one of two interchangeable paths drawing from
the same distribution (`gen_config.path`):

- "fast" (`fast.py`): cached Wyckoff orbit arrays, batched numpy expansion, spglib on arrays; for
  the training stream.
- "reference" (`reference.py`): PyXtal objects and pymatgen's SpacegroupAnalyzer, as the original;
  the specification the fast path is tested against.
"""

from __future__ import annotations

from collections import Counter
from typing import Optional

import numpy as np

from xrdgen.config import GenerationConfig
from xrdgen.crystal import Crystal
from xrdgen.generation.attempts import Attempt, outcome_counts
from xrdgen.generation.fast import FastPath
from xrdgen.generation.reference import ReferencePath
from xrdgen.progress import progress_iter


class Generator:
    """Checked synthetic crystals from `statistics`, reproducible from `seed`.

    `outcomes` counts how every attempt ended (accepted, spacegroup_mismatch, too_large, ...);
    with `record_attempts=True`, `attempts` keeps each `Attempt` (what was drawn), for tests.
    """

    def __init__(self, statistics, config: GenerationConfig, seed: int = 0, record_attempts: bool = False):
        self.statistics = statistics
        self.config = config
        self.rng = np.random.default_rng(seed)
        path_class = FastPath if config.path == "fast" else ReferencePath
        self._path = path_class(statistics, config)
        self.record_attempts = record_attempts
        self.attempts: list[Attempt] = []
        self.outcomes: Counter = Counter()
        prior = np.array([statistics.prior[sg] for sg in statistics.spacegroups], dtype=np.float64)
        self._prior_cdf = np.cumsum(prior) / prior.sum()

    def generate(self, spacegroup: Optional[int] = None) -> Crystal:
        """One crystal of `spacegroup` (drawn from the space-group prior when None), spglib-checked."""
        if spacegroup is None:
            index = int(np.searchsorted(self._prior_cdf, self.rng.random(), side="right"))
            spacegroup = self.statistics.spacegroups[min(index, len(self._prior_cdf) - 1)]
        spacegroup = int(spacegroup)
        if spacegroup not in self.statistics.per_spacegroup:
            raise ValueError(f"space group {spacegroup} has no statistics (classes: {len(self.statistics.spacegroups)})")
        attempts: list[Attempt] = []
        crystal = self._path.generate(spacegroup, self.rng, attempts)
        self.outcomes.update(outcome_counts(attempts))
        if self.record_attempts:
            self.attempts.extend(attempts)
        return crystal

    def generate_many(self, n: int, spacegroup: Optional[int] = None, progress: bool = False) -> list[Crystal]:
        """`n` crystals (each space group drawn from the prior unless `spacegroup` is given)."""
        return [self.generate(spacegroup) for _ in progress_iter(range(n), n, "crystals", "crystals", enabled=progress)]
