"""The reference generator path: the method's steps written plainly on PyXtal objects.

This is the executable specification the fast path (`fast.py`) is tested against: it uses PyXtal's
`Group`, `Lattice`, `Wyckoff_position.project`, `atom_site` and `to_pymatgen`, and checks the space
group with pymatgen's `SpacegroupAnalyzer`, as the original does. It is slow (PyXtal and pymatgen
objects for every attempt) and meant for tests and comparison, not for the training stream.

Randomness: every draw comes from the numpy `Generator` passed in. PyXtal draws from numpy's
*global* generator in `Lattice(ltype, volume)` and `Lattice.generate_point()`; neither is called
here (the lattice is built with `Lattice.from_para` from KDE parameters, the point is
`rng.random(3)`), so the global state is never read and a seed reproduces the crystals exactly.
"""

from __future__ import annotations

from functools import cache

import numpy as np

from xrdgen.config import GenerationConfig
from xrdgen.crystal import Crystal
from xrdgen.generation.attempts import (
    ACCEPTED,
    BUILD_ERROR,
    MISMATCH,
    TOO_CLOSE,
    TOO_LARGE,
    TOO_MANY_SITES,
    V_ATOMIC_UNSEEN,
    Attempt,
)
from xrdgen.generation.retry import retry_until_accepted
from xrdgen.geometry import element_volume


@cache
def _group(spacegroup: int):
    from pyxtal.symmetry import Group  # lazy: pyxtal (with pymatgen) takes seconds to import

    return Group(int(spacegroup))


def _choice(rng: np.random.Generator, values: list, probs: list[float]):
    """One of `values` with probabilities `probs` (normalised here)."""
    p = np.asarray(probs, dtype=np.float64)
    return values[rng.choice(len(values), p=p / p.sum())]


class ReferencePath:
    """Checked crystals of a given space group, plainly: every step after the space-group prior."""

    def __init__(self, statistics, config: GenerationConfig):
        self.statistics = statistics
        self.config = config

    def generate(self, spacegroup: int, rng: np.random.Generator, attempts: list | None = None) -> Crystal:
        """Attempts until spglib agrees; the number of elements is redrawn after `tries_per_n_elements` failures."""
        stats = self.statistics.per_spacegroup[spacegroup]
        n_available = sum(1 for p in stats.element_probs.values() if p > 0)
        # The number of unique elements (no more than the statistics offer).
        return retry_until_accepted(
            spacegroup,
            lambda: min(_choice(rng, list(range(1, len(stats.n_elements_probs) + 1)), stats.n_elements_probs), n_available),
            lambda n_elements, attempt: self._attempt(spacegroup, n_elements, rng, attempt),
            self.config,
            attempts,
        )

    def _attempt(self, spacegroup: int, n_elements: int, rng: np.random.Generator, attempt: Attempt):
        # Lazy: pyxtal and pymatgen take seconds to import, and only this (slow, test-only) path needs them.
        from pymatgen.symmetry.analyzer import SpacegroupAnalyzer, SymmetryUndeterminedError
        from pyxtal import pyxtal
        from pyxtal.crystal import atom_site
        from pyxtal.lattice import Lattice

        cfg = self.config
        stats = self.statistics.per_spacegroup[spacegroup]
        group = _group(spacegroup)
        names = [f"{wp.multiplicity}{wp.letter}" for wp in group]
        dofs = group.get_site_dof(names)
        elements = [e for e, p in stats.element_probs.items() if p > 0]
        element_probs = [stats.element_probs[e] for e in elements]
        wyckoffs = [w for w, p in stats.wyckoff_probs.items() if p > 0 and w in names]  # unknown names left out
        wyckoff_probs = [stats.wyckoff_probs[w] for w in wyckoffs]

        # Elements and Wyckoff occupation: distinct elements; for each, how many sites, and which sites.
        placed: list[tuple[str, int]] = []  # (element, index of the Wyckoff position in the group)
        chosen_elements: list[str] = []
        for _ in range(n_elements):
            element = _choice(rng, elements, element_probs)
            while element in chosen_elements:
                element = _choice(rng, elements, element_probs)
            chosen_elements.append(element)
            repetitions = _choice(rng, list(range(1, len(stats.n_sites_per_element_probs) + 1)), stats.n_sites_per_element_probs)
            for _ in range(repetitions):
                collisions = 0
                while True:
                    name = _choice(rng, wyckoffs, wyckoff_probs)
                    attempt.wyckoff_draws.append(name)
                    index = names.index(name)
                    if dofs[index] == 0 and any(i == index for _, i in placed):
                        collisions += 1
                        if collisions > cfg.max_collisions:
                            break
                        continue
                    placed.append((element, index))
                    break
                if collisions > cfg.max_collisions:
                    break  # give up on this element, go on with the next one
        attempt.elements = [e for e, _ in placed]
        attempt.wyckoffs = [names[i] for _, i in placed]
        if len(placed) > cfg.max_atoms_asymmetric_unit:
            attempt.outcome = TOO_MANY_SITES
            return None

        # Volume KDE: V_atomic of the conventional cell, the denseness factor, the limits.
        v_atomic = 0.0
        n_atoms = 0
        for element, index in placed:
            v_atomic += group[index].multiplicity * element_volume(element)[1]
            n_atoms += group[index].multiplicity
        if v_atomic > self.statistics.v_atomic_limit(spacegroup):
            attempt.outcome = V_ATOMIC_UNSEEN
            return None
        volume = v_atomic * self.statistics.sample_denseness(spacegroup, v_atomic, rng)
        if volume / n_atoms < cfg.min_density_volume_per_atom:
            volume = n_atoms * cfg.min_density_volume_per_atom
        if volume > cfg.max_volume:
            attempt.outcome = TOO_LARGE
            return None

        # Lattice KDE: unit-volume lattice parameters, lengths scaled by V^(1/3).
        a, b, c, alpha, beta, gamma = self.statistics.sample_lattice_parameters(group.lattice_type, rng)
        s = np.cbrt(volume)
        try:
            lattice = Lattice.from_para(a * s, b * s, c * s, alpha, beta, gamma, ltype=group.lattice_type, radians=True)
        except Exception:  # noqa: BLE001 - PyXtal rejects some cells; the original counted it a failure
            attempt.outcome = BUILD_ERROR
            return None

        # Coordinates and orbits: a uniform point projected onto each Wyckoff site, expanded by PyXtal.
        xtal = pyxtal(molecular=False)
        xtal.lattice = lattice
        for element, index in placed:
            wp = group[index]
            point = rng.random(3)
            xtal.atom_sites.append(atom_site(wp=wp, coordinate=wp.project(point, lattice.matrix), specie=element))
        xtal.valid = True
        structure = xtal.to_pymatgen()

        # The check: pymatgen's SpacegroupAnalyzer (spglib) with the original's tolerances.
        try:
            found = SpacegroupAnalyzer(
                structure, symprec=cfg.symprec, angle_tolerance=cfg.angle_tolerance
            ).get_space_group_number()
        except SymmetryUndeterminedError:  # spglib finds no group (e.g. two atoms on one site): 0, as the fast path
            found = 0
        attempt.found_spacegroup = int(found)
        if found != spacegroup:
            attempt.outcome = MISMATCH
            return None
        if cfg.distance_check and _min_distance(structure) < cfg.min_distance:
            attempt.outcome = TOO_CLOSE
            return None
        attempt.outcome = ACCEPTED
        return Crystal.from_structure(structure, spacegroup=spacegroup)


def _min_distance(structure) -> float:
    """Shortest interatomic distance in Å (pymatgen's periodic distance matrix)."""
    if len(structure) < 2:
        return np.inf
    d = structure.distance_matrix
    return float(d[~np.eye(len(structure), dtype=bool)].min())
