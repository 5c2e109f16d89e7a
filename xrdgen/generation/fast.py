"""The fast generator path: the method's steps on plain arrays, with the exact symmetry check.

Same draws as `reference.py`, without PyXtal or pymatgen objects per crystal:

- the discrete distributions of each space group are turned once into cumulative tables, so a draw
  is one uniform number and a `searchsorted` (`_SpaceGroupTables`);
- Wyckoff orbits come from the cached operation arrays of `wyckoff.py`: all atoms of a crystal are
  one batched matrix product (rotations (N, 3, 3) @ representatives (N, 3) + translations (N, 3));
- the lattice matrix is computed from the six parameters, and the space-group check gets (lattice,
  positions, numbers) directly: `symmetry_check.py` (`generation.check: fast`, spglib only where it
  must name a group) or spglib on every draw (`generation.check: spglib`); the result is a `Crystal`,
  which the simulator takes as it is.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import spglib

from xrdgen.config import GenerationConfig
from xrdgen.crystal import Crystal
from xrdgen.generation.attempts import (
    ACCEPTED,
    MISMATCH,
    TOO_CLOSE,
    TOO_LARGE,
    TOO_MANY_SITES,
    V_ATOMIC_UNSEEN,
    Attempt,
)
from xrdgen.generation.retry import retry_until_accepted
from xrdgen.generation.symmetry_check import check_spacegroup
from xrdgen.generation.wyckoff import WyckoffTable, wyckoff_table
from xrdgen.geometry import element_volume, full_lattice_parameters, lattice_matrix, unit_volume_cell


def spglib_spacegroup(
    lattice: np.ndarray, frac_coords: np.ndarray, numbers: np.ndarray, symprec: float, angle_tolerance: float
) -> int:
    """Space-group number spglib finds (0 when it finds none)."""
    dataset = spglib.get_symmetry_dataset((lattice, frac_coords, numbers), symprec=symprec, angle_tolerance=angle_tolerance)
    return 0 if dataset is None else int(dataset.number)


def min_distance(lattice: np.ndarray, frac_coords: np.ndarray) -> float:
    """Shortest interatomic distance in Å, periodic images included (nearest 27 cells)."""
    delta = frac_coords[:, None, :] - frac_coords[None, :, :]
    delta -= np.round(delta)
    shifts = np.array([[i, j, k] for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1)], dtype=np.float64)
    cart = (delta[:, :, None, :] + shifts[None, None]) @ lattice  # (n, n, 27, 3)
    dist = np.linalg.norm(cart, axis=-1)
    n = len(frac_coords)
    dist[np.arange(n), np.arange(n), 13] = np.inf  # an atom and itself (shift 0, 0, 0)
    return float(dist.min()) if n else np.inf


def _cdf(probs) -> np.ndarray:
    cdf = np.cumsum(np.asarray(probs, dtype=np.float64))
    return cdf / cdf[-1]


def _draw(cdf: np.ndarray, rng: np.random.Generator) -> int:
    """Index drawn with the probabilities whose normalised cumulative sum is `cdf`."""
    return min(int(np.searchsorted(cdf, rng.random(), side="right")), len(cdf) - 1)


@dataclass
class _SpaceGroupTables:
    """One space group's statistics as cumulative tables over indices (built once)."""

    table: WyckoffTable
    n_elements_cdf: np.ndarray
    symbols: list[str]
    numbers: np.ndarray  # Z of each symbol
    volumes: np.ndarray  # atomic volume of each symbol, Å³
    element_cdf: np.ndarray
    n_sites_cdf: np.ndarray
    wyckoff_sites: np.ndarray  # site index in `table` of each statistics Wyckoff entry
    wyckoff_cdf: np.ndarray
    max_n_elements: int  # elements with non-zero probability

    @classmethod
    def build(cls, spacegroup: int, sg_stats) -> _SpaceGroupTables:
        table = wyckoff_table(spacegroup)
        symbols = [s for s, p in sg_stats.element_probs.items() if p > 0]
        # A name this group does not have (an inconsistent entry of the collection) is left out.
        wyckoff = [(table.index[name], p) for name, p in sg_stats.wyckoff_probs.items() if p > 0 and name in table.index]
        if not wyckoff:
            raise ValueError(f"space group {spacegroup}: the statistics name none of its Wyckoff sites")
        return cls(
            table=table,
            n_elements_cdf=_cdf(sg_stats.n_elements_probs),
            symbols=symbols,
            numbers=np.array([element_volume(s)[0] for s in symbols], dtype=np.int64),
            volumes=np.array([element_volume(s)[1] for s in symbols]),
            element_cdf=_cdf([sg_stats.element_probs[s] for s in symbols]),
            n_sites_cdf=_cdf(sg_stats.n_sites_per_element_probs),
            wyckoff_sites=np.array([i for i, _ in wyckoff], dtype=np.int64),
            wyckoff_cdf=_cdf([p for _, p in wyckoff]),
            max_n_elements=len(symbols),
        )


class _LatticeSampler:
    """The lattice KDE in blocks: the same draws as `Statistics.sample_lattice_parameters`, fewer calls.

    scipy's `gaussian_kde.resample` factorises the covariance on every call (about 0.2 ms); drawing
    `BLOCK` parameter sets at once and handing them out one by one removes that from each crystal.
    Validity and the rescaling to unit volume follow the statistics' definition exactly.
    """

    BLOCK = 256

    def __init__(self, statistics):
        self.statistics = statistics
        self._queues: dict[str, list] = {}

    def draw(self, system: str, rng: np.random.Generator) -> tuple[float, ...]:
        if system == "cubic":
            return full_lattice_parameters("cubic", np.empty(0))
        queue = self._queues.setdefault(system, [])
        while not queue:
            for free in self.statistics.lattice_kde(system).resample(self.BLOCK, seed=rng).T:
                cell = unit_volume_cell(system, free)
                if cell is not None:
                    queue.append(cell)
            queue.reverse()  # pop() from the end hands them out in drawn order
        return queue.pop()


class FastPath:
    """Checked crystals of a given space group from the statistics, every step after the space-group prior."""

    def __init__(self, statistics, config: GenerationConfig):
        self.statistics = statistics
        self.config = config
        self._tables: dict[int, _SpaceGroupTables] = {}
        self._lattices = _LatticeSampler(statistics)

    def tables(self, spacegroup: int) -> _SpaceGroupTables:
        if spacegroup not in self._tables:
            self._tables[spacegroup] = _SpaceGroupTables.build(spacegroup, self.statistics.per_spacegroup[spacegroup])
        return self._tables[spacegroup]

    def generate(self, spacegroup: int, rng: np.random.Generator, attempts: list | None = None) -> Crystal:
        """A crystal spglib finds in `spacegroup`, by the retry rule (`retry.py`).

        The number of unique elements is kept while attempts fail; after
        `tries_per_n_elements` failures it is drawn again. Too many sites is redrawn without
        counting as a failure (the original's rule).
        """
        t = self.tables(spacegroup)
        return retry_until_accepted(
            spacegroup,
            lambda: min(_draw(t.n_elements_cdf, rng) + 1, t.max_n_elements),
            lambda n_elements, attempt: self._attempt(t, n_elements, rng, attempt),
            self.config,
            attempts,
        )

    def _attempt(self, t: _SpaceGroupTables, n_elements: int, rng: np.random.Generator, attempt: Attempt):
        cfg = self.config
        table = t.table
        # Elements and Wyckoff occupation: how many sites each element gets, which sites (no second atom
        # on a site without freedom).
        chosen: list[int] = []
        site_of_atom: list[int] = []
        element_of_atom: list[int] = []
        occupied = np.zeros(len(table.names), dtype=np.int64)
        for _ in range(n_elements):
            while True:
                element = _draw(t.element_cdf, rng)
                if element not in chosen:
                    break
            chosen.append(element)
            repetitions = _draw(t.n_sites_cdf, rng) + 1
            for _ in range(repetitions):
                for _ in range(cfg.max_collisions + 1):
                    site = int(t.wyckoff_sites[_draw(t.wyckoff_cdf, rng)])
                    attempt.wyckoff_draws.append(table.names[site])
                    if table.dofs[site] == 0 and occupied[site]:
                        continue  # collision: draw the site again
                    occupied[site] += 1
                    site_of_atom.append(site)
                    element_of_atom.append(element)
                    break
                else:
                    break  # too many collisions: go on with the next element
        attempt.elements = [t.symbols[e] for e in element_of_atom]
        attempt.wyckoffs = [table.names[s] for s in site_of_atom]
        if len(site_of_atom) > cfg.max_atoms_asymmetric_unit:
            attempt.outcome = TOO_MANY_SITES
            return None

        # Volume KDE before lattice and coordinates, since it can reject: V_atomic, denseness factor, limits.
        sites = np.array(site_of_atom, dtype=np.int64)
        elements = np.array(element_of_atom, dtype=np.int64)
        multiplicities = table.multiplicities[sites]
        v_atomic = float(np.dot(multiplicities, t.volumes[elements]))
        if v_atomic > self.statistics.v_atomic_limit(table.number):
            attempt.outcome = V_ATOMIC_UNSEEN
            return None
        volume = self.statistics.sample_denseness(table.number, v_atomic, rng) * v_atomic
        n_atoms = int(multiplicities.sum())
        volume = max(volume, n_atoms * cfg.min_density_volume_per_atom)
        if volume > cfg.max_volume:
            attempt.outcome = TOO_LARGE
            return None

        # Lattice KDE: unit-volume lattice parameters, scaled to the volume.
        a, b, c, alpha, beta, gamma = self._lattices.draw(table.crystal_system, rng)
        scale = np.cbrt(volume)
        lattice = lattice_matrix(a * scale, b * scale, c * scale, alpha, beta, gamma)

        # Coordinates and orbits: uniform free coordinates, then every orbit in one batched product.
        uniform = rng.random((len(sites), 3))
        representatives = np.einsum("nij,nj->ni", np.stack([table.rotations[s][0] for s in sites]), uniform) + np.stack(
            [table.translations[s][0] for s in sites]
        )
        rotations = np.concatenate([table.rotations[s] for s in sites])
        translations = np.concatenate([table.translations[s] for s in sites])
        frac = np.einsum("nij,nj->ni", rotations, np.repeat(representatives, multiplicities, axis=0)) + translations
        frac = np.mod(frac, 1.0)
        frac[frac >= 1.0] = 0.0  # mod can round -1e-17 up to exactly 1.0
        numbers = np.repeat(t.numbers[elements], multiplicities)

        # The check, with the original's tolerances: our exact search for operations beyond the group
        # (`symmetry_check.py`, spglib only where it must name a group; found = 0 when not asked), or spglib.
        if cfg.check == "fast":
            verdict = check_spacegroup(lattice, frac, numbers, table.number, cfg.symprec, cfg.angle_tolerance)
            found = table.number if verdict.accepted else verdict.spglib_number
        else:
            found = spglib_spacegroup(lattice, frac, numbers, cfg.symprec, cfg.angle_tolerance)
        attempt.found_spacegroup = found
        if found != table.number:
            attempt.outcome = MISMATCH
            return None
        if cfg.distance_check and min_distance(lattice, frac) < cfg.min_distance:
            attempt.outcome = TOO_CLOSE
            return None
        attempt.outcome = ACCEPTED
        return Crystal(lattice, frac, numbers, np.ones(len(numbers)), spacegroup=table.number)
