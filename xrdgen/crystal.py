"""The compact crystal that flows between generator, simulator and Ray actors.

Why not a pymatgen Structure: building one costs more than simulating its pattern, and it pickles
slowly through the Ray object store. A `Crystal` is four numpy arrays plus a label. A disordered site
(several species sharing one position) is stored as several rows with the same coordinates and
their own occupancies, which is exactly how the structure factor sums them.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Crystal:
    """A periodic crystal: lattice rows are the a, b, c vectors in Å."""

    lattice: np.ndarray  # (3, 3) float64
    frac_coords: np.ndarray  # (n, 3) float64
    numbers: np.ndarray  # (n,) int64, atomic numbers
    occupancies: np.ndarray  # (n,) float64 in (0, 1]
    spacegroup: int = 0  # label (0 = unknown)

    def __post_init__(self):
        self.lattice = np.ascontiguousarray(self.lattice, dtype=np.float64).reshape(3, 3)
        self.frac_coords = np.ascontiguousarray(self.frac_coords, dtype=np.float64).reshape(-1, 3)
        self.numbers = np.ascontiguousarray(self.numbers, dtype=np.int64).reshape(-1)
        self.occupancies = np.ascontiguousarray(self.occupancies, dtype=np.float64).reshape(-1)
        n = len(self.frac_coords)
        if len(self.numbers) != n or len(self.occupancies) != n:
            raise ValueError("frac_coords, numbers and occupancies must have the same length")

    @property
    def n_sites(self) -> int:
        return len(self.numbers)

    @property
    def volume(self) -> float:
        return float(abs(np.linalg.det(self.lattice)))

    @property
    def is_ordered(self) -> bool:
        return bool(np.all(self.occupancies >= 1.0 - 1e-6))

    @classmethod
    def from_structure(cls, structure, spacegroup: int = 0) -> Crystal:
        """From a pymatgen Structure; partial occupancies become one row per species."""
        coords, numbers, occus = [], [], []
        for site in structure:
            for species, occu in site.species.items():
                coords.append(site.frac_coords)
                numbers.append(species.Z)
                occus.append(occu)
        return cls(structure.lattice.matrix, np.array(coords), np.array(numbers), np.array(occus), spacegroup)

    def to_structure(self):
        """To a pymatgen Structure (rows at the same position are merged into one disordered site)."""
        # Lazy: pymatgen takes seconds to import; the generator actors and the simulator never need it.
        from pymatgen.core import Lattice, Structure
        from pymatgen.core.periodic_table import Element

        # Merge rows sharing a position into one disordered site; the rounded key only groups rows,
        # the coordinates keep full precision (spglib checks at symprec 1e-8 need it).
        sites: dict[tuple, tuple[np.ndarray, dict]] = {}
        for xyz, z, occ in zip(self.frac_coords, self.numbers, self.occupancies):
            key = tuple(np.round(np.mod(xyz, 1.0), 6) % 1.0)
            _, species = sites.setdefault(key, (xyz, {}))
            element = Element.from_Z(int(z))
            species[element] = species.get(element, 0.0) + float(occ)
        return Structure(Lattice(self.lattice), [species for _, species in sites.values()], [xyz for xyz, _ in sites.values()])
