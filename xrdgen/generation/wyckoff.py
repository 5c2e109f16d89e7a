"""Wyckoff positions of the 230 space groups, taken from PyXtal once and kept as plain arrays.

Why: building a `pyxtal.symmetry.Group` costs milliseconds and its Wyckoff operations are pymatgen
`SymmOp` objects, applied one by one in Python. The generator's fast path needs, per space group,
only numbers: the Wyckoff names ("4a", as pyxtal names them and as the statistics store them), their
multiplicities and degrees of freedom, and each orbit as stacked affine operations. Those are read
from PyXtal on first use and cached for the life of the process (`lru_cache`).

Conventions (PyXtal's, the standard setting of the International Tables; trigonal R groups in
hexagonal axes): index 0 is the general position, the last index is site "a"; the operations of a
site of multiplicity m are the m coset representatives *including* the centring translations, so
they map a point on the site to the m atoms of the conventional cell. Operation 0 of a site is its
representative expression (e.g. "x, 2x, z"), which maps any point (u, v, w) onto the site with the
free parameters taken from (u, v, w); applying it to a uniform point gives uniform free coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache

import numpy as np


@dataclass(frozen=True, eq=False)
class WyckoffTable:
    """All Wyckoff positions of one space group as arrays (index 0 = general position)."""

    number: int
    symbol: str  # Hermann-Mauguin symbol, e.g. "Fm-3m"
    crystal_system: str  # pyxtal's lattice_type: cubic, hexagonal, trigonal, tetragonal, ...
    names: tuple[str, ...]  # "192l", ..., "4a"
    multiplicities: np.ndarray  # (k,) int64
    dofs: np.ndarray  # (k,) int64, free coordinates of each site
    rotations: tuple[np.ndarray, ...]  # per site: (m, 3, 3) float64
    translations: tuple[np.ndarray, ...]  # per site: (m, 3) float64
    index: dict[str, int] = field(init=False, repr=False)  # name -> site index

    def __post_init__(self):
        object.__setattr__(self, "index", {name: i for i, name in enumerate(self.names)})

    def orbit(self, site: int, point: np.ndarray) -> np.ndarray:
        """Fractional coordinates (m, 3) of the atoms generated from `point` on Wyckoff site `site`, in [0, 1)."""
        return np.mod(self.rotations[site] @ point + self.translations[site], 1.0)

    def project(self, site: int, point: np.ndarray) -> np.ndarray:
        """The representative of site `site` whose free parameters are read from `point` (operation 0)."""
        return self.rotations[site][0] @ point + self.translations[site][0]


@cache
def wyckoff_table(spacegroup: int) -> WyckoffTable:
    """The Wyckoff table of `spacegroup` (1..230), read from PyXtal on first call and cached."""
    if not 1 <= int(spacegroup) <= 230:
        raise ValueError(f"space group {spacegroup} is not in 1..230")
    from pyxtal.symmetry import Group  # lazy: pyxtal (with pymatgen) takes seconds to import

    group = Group(int(spacegroup))
    names = tuple(f"{wp.multiplicity}{wp.letter}" for wp in group)
    rotations, translations = [], []
    for wp in group:
        affine = np.array([op.affine_matrix for op in wp.ops], dtype=np.float64)  # (m, 4, 4)
        rotations.append(np.ascontiguousarray(affine[:, :3, :3]))
        translations.append(np.ascontiguousarray(affine[:, :3, 3]))
    return WyckoffTable(
        number=int(spacegroup),
        symbol=str(group.symbol),
        crystal_system=str(group.lattice_type),
        names=names,
        multiplicities=np.array([wp.multiplicity for wp in group], dtype=np.int64),
        dofs=np.asarray(group.get_site_dof(list(names)), dtype=np.int64),
        rotations=tuple(rotations),
        translations=tuple(translations),
    )
