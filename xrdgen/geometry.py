"""Crystal systems, lattice geometry and V_atomic: the one place for each.

- Crystal system of a space-group number (International Tables, Vol. A).
- The free lattice parameters of each system (conventional standard cell, hexagonal axes for
  trigonal groups) and their expansion to (a, b, c, alpha, beta, gamma), angles in radians.
- Cell volume V = abc·sqrt(1 - cos²α - cos²β - cos²γ + 2 cosα cosβ cosγ), unit-volume cells and
  the lattice matrix of six parameters.
- V_atomic = Σ over the atoms of the conventional cell of 4/3·π·((r_cov + r_vdW)/2)³ with PyXtal's
  element radii, as the original defines it; the denseness factor is f = V_cell / V_atomic.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cache
from typing import Optional

import numpy as np

# Crystal system of each space-group number range (International Tables, Vol. A).
CRYSTAL_SYSTEMS = (
    ("triclinic", 1, 2),
    ("monoclinic", 3, 15),
    ("orthorhombic", 16, 74),
    ("tetragonal", 75, 142),
    ("trigonal", 143, 167),
    ("hexagonal", 168, 194),
    ("cubic", 195, 230),
)

# The free lattice parameters of each system (conventional standard cell, hexagonal axes for
# trigonal groups). These are the columns of `Statistics.lattice_samples[system]`.
LATTICE_PARAMETER_NAMES = {
    "cubic": (),
    "hexagonal": ("a", "c"),
    "trigonal": ("a", "c"),
    "tetragonal": ("a", "c"),
    "orthorhombic": ("a", "b", "c"),
    "monoclinic": ("a", "b", "c", "beta"),
    "triclinic": ("a", "b", "c", "alpha", "beta", "gamma"),
}


def crystal_system(spacegroup: int) -> str:
    """Crystal system of a space-group number 1..230."""
    for name, lo, hi in CRYSTAL_SYSTEMS:
        if lo <= spacegroup <= hi:
            return name
    raise ValueError(f"space group {spacegroup} is not in 1..230")


def full_lattice_parameters(system: str, free: np.ndarray) -> tuple[float, ...]:
    """(a, b, c, alpha, beta, gamma) in radians from a system's free parameters."""
    right = np.pi / 2
    if system == "cubic":
        return (1.0, 1.0, 1.0, right, right, right)
    if system in ("hexagonal", "trigonal"):
        a, c = free
        return (a, a, c, right, right, 2 * np.pi / 3)
    if system == "tetragonal":
        a, c = free
        return (a, a, c, right, right, right)
    if system == "orthorhombic":
        a, b, c = free
        return (a, b, c, right, right, right)
    if system == "monoclinic":
        a, b, c, beta = free
        return (a, b, c, right, beta, right)
    if system == "triclinic":
        return tuple(free)
    raise ValueError(f"unknown crystal system {system!r}")


def free_parameters(system: str, parameters: Sequence[float]) -> np.ndarray:
    """The free parameters of `system` from (a, b, c, alpha, beta, gamma) (inverse of the expansion)."""
    full = dict(zip(("a", "b", "c", "alpha", "beta", "gamma"), parameters))
    return np.array([full[name] for name in LATTICE_PARAMETER_NAMES[system]], dtype=np.float64)


def cell_volume(a: float, b: float, c: float, alpha: float, beta: float, gamma: float) -> float:
    """Cell volume from lengths and angles (radians); NaN when the angles close no cell."""
    ca, cb, cg = np.cos(alpha), np.cos(beta), np.cos(gamma)
    radicand = 1.0 - ca * ca - cb * cb - cg * cg + 2.0 * ca * cb * cg
    return float(a * b * c * np.sqrt(radicand)) if radicand > 0 else float("nan")


def unit_volume_cell(system: str, free: np.ndarray) -> Optional[tuple[float, ...]]:
    """Free KDE parameters of `system` -> (a, b, c, alpha, beta, gamma) of volume exactly 1, or None.

    None when the draw describes no cell: a length <= 0, an angle outside (0, π), or triclinic
    angles that close no parallelepiped (the original used such draws as they came). The lengths
    are rescaled because a KDE draw only has a volume close to 1.
    """
    a, b, c, alpha, beta, gamma = full_lattice_parameters(system, free)
    if min(a, b, c) <= 0 or not all(0 < angle < np.pi for angle in (alpha, beta, gamma)):
        return None
    volume = cell_volume(a, b, c, alpha, beta, gamma)
    if not np.isfinite(volume) or volume <= 0:
        return None
    scale = volume ** (-1.0 / 3.0)
    return (float(a * scale), float(b * scale), float(c * scale), float(alpha), float(beta), float(gamma))


def unit_volume_parameters(system: str, lattice_parameters: Iterable[float]) -> np.ndarray:
    """Free parameters of `system` of a cell scaled to unit volume (lengths / V^(1/3); angles kept).

    `lattice_parameters` is (a, b, c, alpha, beta, gamma) with angles in radians, of the
    conventional standard cell.
    """
    a, b, c, alpha, beta, gamma = (float(x) for x in lattice_parameters)
    scale = cell_volume(a, b, c, alpha, beta, gamma) ** (1.0 / 3.0)
    return free_parameters(system, (a / scale, b / scale, c / scale, alpha, beta, gamma))


def lattice_parameters(lattice: np.ndarray) -> tuple[float, ...]:
    """(a, b, c, alpha, beta, gamma), angles in radians, of lattice rows a, b, c."""
    lattice = np.asarray(lattice, dtype=np.float64)
    a, b, c = np.linalg.norm(lattice, axis=1)
    alpha = np.arccos(np.clip(lattice[1] @ lattice[2] / (b * c), -1, 1))
    beta = np.arccos(np.clip(lattice[0] @ lattice[2] / (a * c), -1, 1))
    gamma = np.arccos(np.clip(lattice[0] @ lattice[1] / (a * b), -1, 1))
    return (float(a), float(b), float(c), float(alpha), float(beta), float(gamma))


def lattice_matrix(a: float, b: float, c: float, alpha: float, beta: float, gamma: float) -> np.ndarray:
    """Rows a, b, c in Å from lengths and angles (radians): a along x, b in the xy plane."""
    ca, cb, cg, sg = np.cos(alpha), np.cos(beta), np.cos(gamma), np.sin(gamma)
    cy = (ca - cb * cg) / sg
    cz = np.sqrt(max(1.0 - cb * cb - cy * cy, 0.0))
    return np.array([[a, 0.0, 0.0], [b * cg, b * sg, 0.0], [c * cb, c * cy, c * cz]])


@cache
def element_volume(symbol: str) -> tuple[int, float]:
    """(Z, 4/3·π·((r_cov + r_vdW)/2)³) of one atom of `symbol`, with PyXtal's radii; cached.

    ValueError when PyXtal has no covalent or van der Waals radius for the element.
    """
    # Lazy: importing pyxtal takes seconds (it pulls in pymatgen), and this module is also
    # imported by light paths that only need crystal systems (evaluation, the CLI).
    from pyxtal.database.element import Element

    element = Element(symbol)
    if element.covalent_radius is None or element.vdw_radius is None:
        raise ValueError(f"no covalent/van der Waals radius for {symbol}")
    radius = (element.covalent_radius + element.vdw_radius) / 2.0
    return int(element.z), 4.0 / 3.0 * np.pi * radius**3


def atomic_volume(symbols: Iterable[str]) -> float:
    """V_atomic = Σ over the atoms `symbols` of 4/3·π·((r_cov + r_vdW)/2)³ (see `element_volume`)."""
    total = 0.0
    for symbol in symbols:
        total += element_volume(symbol)[1]
    return total
