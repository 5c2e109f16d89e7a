"""Synthetic crystals drawn from the statistics of a crystal collection (seed S1; Schopf et al., Sec. 2.1).

`Generator(statistics, gen_config, seed)` is the public entry: `.generate(spacegroup=None)` returns
one `Crystal` whose space group spglib confirms (`.spacegroup` set), `.generate_many(n)` a list.
Two interchangeable paths draw from the same distribution (`gen_config.path`):

- "fast" (`fast.py`): cached Wyckoff orbit arrays, batched numpy expansion, spglib on arrays; for
  the training stream.
- "reference" (`reference.py`): PyXtal objects and pymatgen's SpacegroupAnalyzer, as the original;
  the specification the fast path is tested against.

`randomize(crystal, statistics, rng, coordinates=True, lattice=False)` builds the seed's randomized
test crystals: a real crystal with its Wyckoff assignment kept and its free coordinates and/or
lattice parameters redrawn.
"""

from __future__ import annotations

from collections import Counter
from typing import Optional

import numpy as np

from xrdgen.config import GenerationConfig
from xrdgen.crystal import Crystal
from xrdgen.generation.record import Attempt, outcome_counts
from xrdgen.generation.wyckoff import WyckoffTable, wyckoff_table

__all__ = ["Generator", "randomize", "Attempt", "wyckoff_table", "WyckoffTable"]


class Generator:
    """Checked synthetic crystals from `statistics`, reproducible from `seed`.

    `outcomes` counts how every attempt ended (accepted, spacegroup_mismatch, too_large, ...);
    with `record_attempts=True`, `attempts` keeps each `Attempt` (what was drawn), for tests.
    """

    def __init__(self, statistics, config: Optional[GenerationConfig] = None, seed: int = 0, record_attempts: bool = False):
        from xrdgen.generation.fast import FastPath
        from xrdgen.generation.reference import ReferencePath

        self.statistics = statistics
        self.config = config or GenerationConfig()
        self.rng = np.random.default_rng(seed)
        path_class = FastPath if self.config.path == "fast" else ReferencePath
        self._path = path_class(statistics, self.config)
        self.record_attempts = record_attempts
        self.attempts: list[Attempt] = []
        self.outcomes: Counter = Counter()
        prior = np.array([statistics.prior[sg] for sg in statistics.spacegroups], dtype=np.float64)
        self._prior_cdf = np.cumsum(prior) / prior.sum()

    def generate(self, spacegroup: Optional[int] = None) -> Crystal:
        """One crystal of `spacegroup` (drawn from the prior when None), spglib-checked."""
        if spacegroup is None:  # step 1: the prior
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
        from tqdm import tqdm

        return [self.generate(spacegroup) for _ in tqdm(range(n), desc="crystals", unit="crystal", disable=not progress)]


def randomize(
    crystal: Crystal,
    statistics,
    rng: np.random.Generator,
    coordinates: bool = True,
    lattice: bool = False,
    symprec: float = 0.1,
    max_tries: int = 20,
) -> Crystal:
    """The crystal with its Wyckoff assignment kept and coordinates and/or lattice redrawn.

    1. spglib (tolerance `symprec`, the collection's labelling tolerance, tightened when spglib
       gives up on atoms closer than it) gives the conventional
       standard cell; a second pass on that cell gives each orbit's Wyckoff site ("4a") and its
       species (partial occupancies kept: each distinct species mix is one spglib type).
    2. `coordinates`: each orbit gets a new uniform point on its Wyckoff site (PyXtal's operation
       0), expanded with PyXtal's orbit operations (`wyckoff_table`), as generation steps 5 and 8.
    3. `lattice`: new unit-volume parameters from the KDE of the crystal system, scaled to the
       standard cell's volume (generation step 6 at fixed volume).
    4. Redraw (up to `max_tries`) until spglib at 1e-5 finds the same space group; ValueError if never.
    The label is spglib's space group of the input at `symprec`.
    """
    import spglib

    from xrdgen.generation.fast import lattice_matrix, spglib_spacegroup

    # Rows sharing a position form one site; its species mix is one spglib type.
    keys = np.round(np.mod(crystal.frac_coords, 1.0), 5) % 1.0
    site_rows: dict[tuple, list[int]] = {}
    for row, key in enumerate(map(tuple, keys)):
        site_rows.setdefault(key, []).append(row)
    mixes: dict[tuple, int] = {}
    positions, types = [], []
    for key, rows in site_rows.items():
        mix = tuple(sorted((int(crystal.numbers[r]), round(float(crystal.occupancies[r]), 4)) for r in rows))
        types.append(mixes.setdefault(mix, len(mixes) + 1))
        positions.append(crystal.frac_coords[rows[0]])
    species_of_type = {t: mix for mix, t in mixes.items()}
    cell = (crystal.lattice, np.array(positions), np.array(types))
    for tolerance in (symprec, symprec / 100, 1e-5):  # atoms closer than symprec make spglib give up
        dataset = spglib.get_symmetry_dataset(cell, symprec=tolerance)
        if dataset is not None:
            break
    else:
        raise ValueError("spglib finds no space group for this crystal")
    std = (dataset.std_lattice, dataset.std_positions, dataset.std_types)
    std_dataset = spglib.get_symmetry_dataset(std, symprec=tolerance)
    spacegroup = int(dataset.number)
    table = wyckoff_table(spacegroup)
    orbits = []  # (Wyckoff site index, type, representative position)
    for rep in np.unique(std_dataset.equivalent_atoms):
        multiplicity = int(np.sum(std_dataset.equivalent_atoms == rep))
        name = f"{multiplicity}{std_dataset.wyckoffs[rep]}".replace("alpha", "A").replace("α", "A")
        if name not in table.index:
            raise ValueError(f"Wyckoff site {name} is not one of space group {spacegroup}'s")
        orbits.append((table.index[name], int(std[2][rep])))

    std_lattice = np.asarray(std[0], dtype=np.float64)
    volume = abs(np.linalg.det(std_lattice))
    for _ in range(max_tries):
        new_lattice = std_lattice
        if lattice:
            a, b, c, alpha, beta, gamma = statistics.sample_lattice_parameters(table.crystal_system, rng)
            s = np.cbrt(volume)
            new_lattice = lattice_matrix(a * s, b * s, c * s, alpha, beta, gamma)
        if coordinates:
            frac_list, type_list = [], []
            for site, kind in orbits:
                orbit = table.orbit(site, table.project(site, rng.random(3)))
                frac_list.append(orbit)
                type_list.append(np.full(len(orbit), kind))
            frac, kinds = np.concatenate(frac_list), np.concatenate(type_list)
        else:
            frac, kinds = np.asarray(std[1], dtype=np.float64), np.asarray(std[2])
        if spglib_spacegroup(new_lattice, frac, kinds, 1e-5, -1.0) == spacegroup:
            break
    else:
        raise ValueError(f"no randomized crystal kept space group {spacegroup} in {max_tries} tries")

    coords, numbers, occupancies = [], [], []
    for position, kind in zip(frac, kinds):
        for z, occupancy in species_of_type[int(kind)]:
            coords.append(position)
            numbers.append(z)
            occupancies.append(occupancy)
    return Crystal(new_lattice, np.array(coords), np.array(numbers), np.array(occupancies), spacegroup=spacegroup)
