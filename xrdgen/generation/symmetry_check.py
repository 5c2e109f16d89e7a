"""Is a generated crystal's space group exactly the one it was drawn in? An exact search that spglib confirms.

The generator draws a crystal of space group G (Wyckoff orbits, `wyckoff.py`) and must reject it
unless spglib — `get_symmetry_dataset` at the configured `symprec` (a Cartesian distance, Å) and
`angle_tolerance` (degrees) — finds G. `check_spacegroup` gives the same verdict without spglib in
almost every case, because G's operations hold *by construction*: the only question is whether the
structure has operations *beyond* G. What spglib does (src/symmetry.c, determination.c, 2.x):

1. pure translations: for the atom type with fewest atoms, every t = x_j - x_0 that maps all atoms
   onto atoms of their type (Cartesian distance < symprec) -> primitive cell;
2. lattice symmetry of the primitive cell: Delaunay-reduce it (`del_delaunay_reduce`), then every
   integer W whose columns are among the 26 vectors of {-1, 0, 1}^3, det W = ±1, that keeps the
   three basis lengths within symprec and the three basis angles within angle_tolerance;
3. for each such W, the translations t with (W, t) mapping all atoms (candidates from the fewest
   type's first atom, as in 1); then the group type is named from these operations. Tolerances are
   reduced and the search repeated when the operations found do not form a group.

Why the verdict here equals spglib's (the proof; `benchmarks/bench_symmetry_check.py` measures it):

- Accept (no spglib): no translation beyond G's centring maps the atoms, and no W of the primitive
  lattice's holohedry (searched as in 2, with a small margin on both tolerances, in the basis of
  spglib's own Delaunay reduction, and closed under conjugation by the exact isometries so a
  different choice among equally long vectors cannot hide one) outside G's point group maps them
  with any translation. Then spglib's operations are exactly G's (G's rotations are exact lattice
  isometries, so they are always among its W; its retries at smaller tolerances can only find
  fewer operations, never fewer than G's exact ones), they form a group, and it names G.
- Reject (no spglib): some W outside G's point group that is an *exact* isometry of the lattice
  (W^T g W = g to 1e-11 relative) maps the atoms exactly (within 1e-9 Å; generated orbits agree to
  ~1e-14 Å). spglib finds that operation at every tolerance it tries, so whatever it returns is a
  group with a larger point group than G (another type) or nothing: never G.
- Ask spglib (its number decides): an extra pure translation (the supergroup may be of G's own type,
  e.g. P1 with a smaller cell, so it must be named), or an extra operation whose W is only an
  approximate lattice symmetry (within angle_tolerance but not exact) or whose atom map holds only
  within a symprec far above 1e-9 Å: spglib's tolerance reductions may or may not keep it.

Atoms are compared as spglib does: the fractional difference reduced by rounding, times the
lattice, shorter than symprec. Everything per crystal is one numba kernel plus spglib's Delaunay
reduction (the same C function spglib uses, so the basis and thus the angles tested are its own).
Atom look-ups go through a grid of cells per atom type, so a wrong candidate translation costs O(1).

Longer than 350 lines because the numba kernel and its helpers are one unit, kept beside the
argument above that makes them sound.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache

import numpy as np
import spglib
from numba import njit

from xrdgen.generation.wyckoff import wyckoff_table

# Routes of `check_spacegroup`, named by what decided.
NO_EXTRA_OPERATION = "no_extra_operation"  # accepted without spglib
EXTRA_ROTATION = "extra_rotation"  # rejected without spglib: an exact lattice isometry outside G maps the atoms
SPGLIB_EXTRA_TRANSLATION = "spglib_extra_translation"  # spglib named the group (smaller primitive cell)
SPGLIB_APPROXIMATE_ROTATION = "spglib_approximate_rotation"  # spglib decided (operation within the angle tolerance)
SPGLIB_NO_REDUCTION = "spglib_no_reduction"  # spglib's Delaunay reduction failed: spglib decided

# Margins that make the lattice search a superset of spglib's (found candidates are only tested,
# never trusted): angles in degrees, lengths relative; "exact" isometry: metric equal to this.
_ANGLE_MARGIN = 0.05
_LENGTH_MARGIN = 1e-9
_EXACT = 1e-11
_EXACT_DISTANCE = 1e-9  # Å: an atom map this close is exact (generated orbits agree to ~1e-14 Å)
_CAPACITY = 1024  # candidate rotations kept per crystal (a lattice has at most 48 exact ones)

# Primitive basis (rows, conventional fractional coordinates) of each centring; R: obverse, hexagonal axes.
_H, _T = 0.5, 1.0 / 3.0
_PRIMITIVE = {
    "P": [[1, 0, 0], [0, 1, 0], [0, 0, 1]],
    "A": [[1, 0, 0], [0, _H, -_H], [0, _H, _H]],
    "B": [[_H, 0, -_H], [0, 1, 0], [_H, 0, _H]],
    "C": [[_H, -_H, 0], [_H, _H, 0], [0, 0, 1]],
    "I": [[-_H, _H, _H], [_H, -_H, _H], [_H, _H, -_H]],
    "F": [[0, _H, _H], [_H, 0, _H], [_H, _H, 0]],
    "R": [[2 * _T, _T, _T], [-_T, _T, _T], [-_T, -2 * _T, _T]],
}

# The 26 vectors of {-1, 0, 1}^3 without 0: the columns spglib tries for a lattice symmetry.
_AXES = np.array([v for v in np.ndindex(3, 3, 3) if v != (1, 1, 1)], dtype=np.int64) - 1
_POW3 = 3 ** np.arange(9)


def _key(w: np.ndarray) -> int:
    """Index of an integer 3x3 matrix with entries in {-1, 0, 1} (row-major base-3 digits)."""
    return int(np.dot((np.asarray(w, dtype=np.int64).ravel() + 1), _POW3))


@dataclass(frozen=True)
class Verdict:
    """The check's answer: `accepted` (the group is exactly the asked one), which `route` decided,
    and spglib's number where it was asked (0 otherwise)."""

    accepted: bool
    route: str
    spglib_number: int = 0


@dataclass(frozen=True, eq=False)
class _Group:
    """What the kernel needs of space group G in its conventional setting."""

    member: np.ndarray  # (3^9,) bool: is the integer matrix with this `_key` a rotation part of G?
    centrings: np.ndarray  # (C, 3) pure translations of G, (0, 0, 0) included
    primitive: np.ndarray  # (3, 3) rows: a primitive basis in conventional fractional coordinates


@cache
def _group(spacegroup: int) -> _Group:
    table = wyckoff_table(spacegroup)
    rotations, translations = table.rotations[0], table.translations[0]
    member = np.zeros(3**9, dtype=np.bool_)
    member[[_key(np.rint(r)) for r in rotations]] = True  # conventional rotations have entries in {-1, 0, 1}
    identity = np.all(np.abs(rotations - np.eye(3)) < 1e-9, axis=(1, 2))
    centrings = np.mod(translations[identity], 1.0)
    primitive = np.array(_PRIMITIVE[table.symbol[0]], dtype=np.float64)
    # The basis must generate exactly the centring translations (a wrong table would pass silently otherwise).
    in_basis = centrings @ np.linalg.inv(primitive)
    if abs(abs(np.linalg.det(primitive)) * len(centrings) - 1.0) > 1e-9 or np.abs(in_basis - np.rint(in_basis)).max() > 1e-9:
        raise ValueError(f"space group {spacegroup}: centring {table.symbol[0]} does not match its translations")
    return _Group(member, centrings, primitive)


def _spglib_number(lattice, frac_coords, numbers, symprec: float, angle_tolerance: float) -> int:
    dataset = spglib.get_symmetry_dataset((lattice, frac_coords, numbers), symprec=symprec, angle_tolerance=angle_tolerance)
    return 0 if dataset is None else int(dataset.number)


def check_spacegroup(
    lattice: np.ndarray, frac_coords: np.ndarray, numbers: np.ndarray, spacegroup: int, symprec: float, angle_tolerance: float
) -> Verdict:
    """Whether spglib (symprec, angle_tolerance) finds exactly `spacegroup` for a crystal drawn in it.

    `lattice`: rows a, b, c (Å); `frac_coords`: (n, 3) atoms of the conventional cell, generated by
    `spacegroup`'s Wyckoff orbits (its operations must hold exactly: this is not a general-purpose
    space-group finder); `numbers`: (n,) atom types.
    """
    group = _group(int(spacegroup))
    lattice = np.ascontiguousarray(lattice, dtype=np.float64)
    frac = np.ascontiguousarray(frac_coords, dtype=np.float64)
    types = np.ascontiguousarray(numbers, dtype=np.int64)
    reduced = spglib.delaunay_reduce(group.primitive @ lattice, eps=symprec)
    if reduced is None:
        route = SPGLIB_NO_REDUCTION
    else:
        code = _kernel(
            lattice,
            frac,
            types,
            np.ascontiguousarray(reduced, dtype=np.float64),
            group.member,
            group.centrings,
            symprec,
            angle_tolerance,
        )
        if code == 0:
            return Verdict(True, NO_EXTRA_OPERATION)
        if code == 1:
            return Verdict(False, EXTRA_ROTATION)
        route = SPGLIB_EXTRA_TRANSLATION if code == 2 else SPGLIB_APPROXIMATE_ROTATION
    found = _spglib_number(lattice, frac, types, symprec, angle_tolerance)
    return Verdict(found == int(spacegroup), route, found)


# ----------------------------------------------------------------------------------- numba kernel
@njit(cache=True)
def _grid(frac, species, n_species, lattice, symprec):
    """Atoms bucketed by (type, cell of an m x m x m grid over the unit cell), for O(1) look-ups.

    Returns (m, eps, start, atoms): the atoms of type s in cell c are atoms[start[k]:start[k + 1]]
    with k = s·m³ + c; eps bounds the fractional-coordinate difference of two points closer than
    symprec Å (|Δx_a| <= symprec·|column a of lattice⁻¹|), so a match lies in the query's cell or
    the neighbour across a face it is within eps of.
    """
    n = frac.shape[0]
    m = 1 if n <= 16 else (3 if n <= 60 else (5 if n <= 250 else 7))
    inv = np.linalg.inv(lattice)
    eps = 0.0
    for a in range(3):
        eps = max(eps, np.sqrt(inv[0, a] ** 2 + inv[1, a] ** 2 + inv[2, a] ** 2))
    eps = eps * symprec * (1.0 + 1e-6) + 1e-12
    keys = np.empty(n, dtype=np.int64)
    for i in range(n):
        cell = 0
        for a in range(3):
            r = frac[i, a] - np.floor(frac[i, a])
            cell = cell * m + min(int(r * m), m - 1)
        keys[i] = species[i] * m * m * m + cell
    atoms = np.argsort(keys, kind="mergesort")
    start = np.zeros(n_species * m * m * m + 1, dtype=np.int64)
    for i in range(n):
        start[keys[i] + 1] += 1
    for k in range(1, start.shape[0]):
        start[k] += start[k - 1]
    return m, eps, start, atoms


@njit(cache=True)
def _matches(p0, p1, p2, s, frac, lattice, tol2, m, eps, start, atoms) -> bool:
    """An atom of type s lies within sqrt(tol2) Å of point p (spglib's overlap: rounded fractional
    difference times the lattice)."""
    p = (p0, p1, p2)
    lo = np.empty(3, dtype=np.int64)
    hi = np.empty(3, dtype=np.int64)
    for a in range(3):
        r = p[a] - np.floor(p[a])
        c = min(int(r * m), m - 1)
        lo[a] = c
        hi[a] = c
        if m > 1:
            if r * m - c < eps * m:
                lo[a] = c - 1
            if c + 1 - r * m < eps * m:
                hi[a] = c + 1
    base = s * m * m * m
    for c0 in range(lo[0], hi[0] + 1):
        for c1 in range(lo[1], hi[1] + 1):
            for c2 in range(lo[2], hi[2] + 1):
                k = base + ((c0 % m) * m + (c1 % m)) * m + (c2 % m)
                for idx in range(start[k], start[k + 1]):
                    j = atoms[idx]
                    d0 = p0 - frac[j, 0]
                    d1 = p1 - frac[j, 1]
                    d2 = p2 - frac[j, 2]
                    d0 -= np.rint(d0)
                    d1 -= np.rint(d1)
                    d2 -= np.rint(d2)
                    x = d0 * lattice[0, 0] + d1 * lattice[1, 0] + d2 * lattice[2, 0]
                    y = d0 * lattice[0, 1] + d1 * lattice[1, 1] + d2 * lattice[2, 1]
                    z = d0 * lattice[0, 2] + d1 * lattice[1, 2] + d2 * lattice[2, 2]
                    if x * x + y * y + z * z < tol2:
                        return True
    return False


@njit(cache=True)
def _maps_all(images, t0, t1, t2, frac, species, lattice, tol2, grid, probe) -> bool:
    """Every atom's image + t lies on an atom of its type. `probe[0]`: the atom that refuted the
    previous candidate, tried first (it usually refutes the next one too); updated on failure."""
    m, eps, start, atoms = grid
    n = frac.shape[0]
    for step in range(n + 1):
        i = probe[0] if step == 0 else step - 1
        if step > 0 and i == probe[0]:
            continue
        if not _matches(
            images[i, 0] + t0, images[i, 1] + t1, images[i, 2] + t2, species[i], frac, lattice, tol2, m, eps, start, atoms
        ):
            probe[0] = i
            return False
    return True


@njit(cache=True)
def _has_operation(w, frac, species, members, lattice, tol2, grid) -> bool:
    """Some t makes (w, t) (conventional fractional coordinates) map every atom onto an atom of its
    type. Candidates t: the first atom of the rarest type onto each atom of that type (`members`)."""
    n = frac.shape[0]
    images = np.empty((n, 3))
    for i in range(n):
        for a in range(3):
            images[i, a] = w[a, 0] * frac[i, 0] + w[a, 1] * frac[i, 1] + w[a, 2] * frac[i, 2]
    probe = np.zeros(1, dtype=np.int64)
    for j in members:
        if _maps_all(
            images,
            frac[j, 0] - images[0, 0],
            frac[j, 1] - images[0, 1],
            frac[j, 2] - images[0, 2],
            frac,
            species,
            lattice,
            tol2,
            grid,
            probe,
        ):
            return True
    return False


@njit(cache=True)
def _cos_bounds(g, i, j, tolerance):
    """cos θ' must lie in [lo, hi] for |θ' - θ_ij| <= tolerance (degrees); θ_ij from metric g."""
    theta = np.arccos(min(1.0, max(-1.0, g[i, j] / np.sqrt(g[i, i] * g[j, j])))) * (180.0 / np.pi)
    return np.cos(min(theta + tolerance, 180.0) * np.pi / 180.0), np.cos(max(theta - tolerance, 0.0) * np.pi / 180.0)


@njit(cache=True)
def _kernel(lattice, frac, numbers, reduced, member, centrings, symprec, angle_tolerance) -> int:
    """0: no operation beyond G; 1: an exact extra rotation maps the atoms exactly; 2: an extra pure
    translation maps them; 3: otherwise an extra rotation maps them (approximate lattice symmetry,
    or a map only within symprec)."""
    tol2 = symprec * symprec
    # Atom types 0..S-1, ordered so that the rarest type comes first (fewest translation candidates).
    kinds = np.unique(numbers)
    raw = np.searchsorted(kinds, numbers)
    counts = np.bincount(raw, minlength=len(kinds))
    rank = np.empty(len(kinds), dtype=np.int64)
    rank[np.argsort(counts, kind="mergesort")] = np.arange(len(kinds))
    species = rank[raw]
    order = np.argsort(species, kind="mergesort")  # atoms by type, rarest type first
    frac = frac[order]  # visit atoms rarest type first (early exit on a wrong translation)
    species = species[order]
    members = np.arange(counts.min())
    grid = _grid(frac, species, len(kinds), lattice, symprec)
    m, eps, start, atoms = grid

    # 1. Pure translations other than G's centrings.
    probe = np.zeros(1, dtype=np.int64)
    for j in members:
        t0 = frac[j, 0] - frac[0, 0]
        t1 = frac[j, 1] - frac[0, 1]
        t2 = frac[j, 2] - frac[0, 2]
        known = False
        for c in range(centrings.shape[0]):
            d0 = t0 - centrings[c, 0]
            d1 = t1 - centrings[c, 1]
            d2 = t2 - centrings[c, 2]
            if max(abs(d0 - np.rint(d0)), abs(d1 - np.rint(d1)), abs(d2 - np.rint(d2))) < 1e-6:
                known = True
                break
        if known:
            continue
        if _maps_all(frac, t0, t1, t2, frac, species, lattice, tol2, grid, probe):
            return 2

    # 2. Lattice symmetry of the primitive cell in spglib's reduced basis: W with columns among the
    #    26 axes, basis lengths kept (10·symprec + relative margin), basis angles kept (tolerance + margin).
    g = reduced @ reduced.T
    axes = _AXES.astype(np.float64)
    dots = axes @ g @ axes.T  # (26, 26) metric between the candidate columns
    length = np.sqrt(np.diag(g))
    axis_length = np.sqrt(np.diag(dots))
    loose = (angle_tolerance if angle_tolerance > 0 else 0.0) + _ANGLE_MARGIN
    length_tol = 10.0 * symprec + _LENGTH_MARGIN * length.max()
    lo01, hi01 = _cos_bounds(g, 0, 1, loose)
    lo02, hi02 = _cos_bounds(g, 0, 2, loose)
    lo12, hi12 = _cos_bounds(g, 1, 2, loose)
    exact_tol = _EXACT * g.max()
    found = np.empty((_CAPACITY, 3), dtype=np.int64)  # column indices into _AXES
    exact = np.empty(_CAPACITY, dtype=np.bool_)
    n_found = 0
    for i in range(26):
        if abs(axis_length[i] - length[0]) > length_tol:
            continue
        for j in range(26):
            if abs(axis_length[j] - length[1]) > length_tol:
                continue
            c01 = dots[i, j] / (axis_length[i] * axis_length[j])
            if c01 < lo01 or c01 > hi01:
                continue
            for k in range(26):
                if abs(axis_length[k] - length[2]) > length_tol:
                    continue
                c02 = dots[i, k] / (axis_length[i] * axis_length[k])
                c12 = dots[j, k] / (axis_length[j] * axis_length[k])
                if c02 < lo02 or c02 > hi02 or c12 < lo12 or c12 > hi12:
                    continue
                a, b, c = _AXES[i], _AXES[j], _AXES[k]
                det = a[0] * (b[1] * c[2] - b[2] * c[1]) - b[0] * (a[1] * c[2] - a[2] * c[1]) + c[0] * (a[1] * b[2] - a[2] * b[1])
                if det != 1 and det != -1:
                    continue
                if n_found == _CAPACITY:
                    return 3  # more candidates than room: let spglib decide (never reached in practice)
                found[n_found, 0], found[n_found, 1], found[n_found, 2] = i, j, k
                exact[n_found] = (
                    max(
                        abs(dots[i, i] - g[0, 0]),
                        abs(dots[j, j] - g[1, 1]),
                        abs(dots[k, k] - g[2, 2]),
                        abs(dots[i, j] - g[0, 1]),
                        abs(dots[i, k] - g[0, 2]),
                        abs(dots[j, k] - g[1, 2]),
                    )
                    <= exact_tol
                )
                n_found += 1
    ws = np.empty((n_found, 3, 3), dtype=np.int64)
    for f in range(n_found):
        for col in range(3):
            ws[f, :, col] = _AXES[found[f, col]]

    # Close the approximate ones under conjugation by the exact isometries (another reduced basis
    # among equally long vectors is this one moved by an exact isometry: same test, conjugated W).
    n_exact = 0
    for f in range(n_found):
        n_exact += exact[f]
    n_conj = (n_found - n_exact) * n_exact
    conj = np.empty((n_conj, 3, 3), dtype=np.int64)
    keys = np.empty(n_conj, dtype=np.int64)
    n_conj = 0
    for e in range(n_found):
        if not exact[e]:
            continue
        e_inv = _inverse_unimodular(ws[e])
        for a in range(n_found):
            if exact[a]:
                continue
            conj[n_conj] = _matmul3(_matmul3(ws[e], ws[a]), e_inv)
            keys[n_conj] = _wide_key(conj[n_conj], n_conj)
            n_conj += 1
    by_key = np.argsort(keys)
    keep = np.ones(n_conj, dtype=np.bool_)
    for r in range(1, n_conj):
        keep[r] = keys[by_key[r]] != keys[by_key[r - 1]]
    approximate = conj[by_key[keep]]

    # 3. Each W outside G's point group, in conventional coordinates: does some (W, t) map the atoms?
    q = np.linalg.solve(lattice.T, reduced.T)  # reduced basis vectors in conventional fractional coordinates
    q_inv = np.linalg.inv(q)
    mapped_within_tolerance_only = False
    for f in range(n_found):
        if exact[f]:
            wc = q @ ws[f].astype(np.float64) @ q_inv
            if not _in_group(wc, member) and _has_operation(wc, frac, species, members, lattice, tol2, grid):
                # Rejected here only if the atoms map exactly too (spglib then keeps the operation at
                # every tolerance it tries); a map only within a large symprec is spglib's to judge.
                exact_tol2 = min(symprec, _EXACT_DISTANCE) ** 2
                if _has_operation(wc, frac, species, members, lattice, exact_tol2, grid):
                    return 1
                mapped_within_tolerance_only = True
    if mapped_within_tolerance_only:
        return 3
    for f in range(approximate.shape[0]):
        wc = q @ approximate[f].astype(np.float64) @ q_inv
        if not _in_group(wc, member) and _has_operation(wc, frac, species, members, lattice, tol2, grid):
            return 3
    return 0


@njit(cache=True)
def _in_group(w, member) -> bool:
    """w (float) is an integer matrix with entries in {-1, 0, 1} whose `_key` is a member."""
    key = 0
    power = 1
    for r in range(3):
        for c in range(3):
            v = np.rint(w[r, c])
            if abs(w[r, c] - v) > 1e-6 or v < -1 or v > 1:
                return False
            key += (int(v) + 1) * power
            power *= 3
    return member[key]


@njit(cache=True)
def _inverse_unimodular(w):
    """Inverse of an integer matrix with det ±1 (its adjugate times det), exact in integers."""
    inv = np.empty((3, 3), dtype=np.int64)
    for r in range(3):
        for c in range(3):
            r1, r2 = (c + 1) % 3, (c + 2) % 3
            c1, c2 = (r + 1) % 3, (r + 2) % 3
            inv[r, c] = w[r1, c1] * w[r2, c2] - w[r1, c2] * w[r2, c1]
    det = w[0, 0] * inv[0, 0] + w[0, 1] * inv[1, 0] + w[0, 2] * inv[2, 0]
    return inv * det


@njit(cache=True)
def _wide_key(w, fallback) -> int:
    """Distinct integer for each integer matrix with entries in [-15, 15]; a unique negative
    number (from `fallback`) otherwise, so such a matrix is never merged with another."""
    key = 0
    for r in range(3):
        for c in range(3):
            if w[r, c] < -15 or w[r, c] > 15:
                return -1 - fallback
            key = key * 31 + (w[r, c] + 15)
    return key


@njit(cache=True)
def _matmul3(a, b):
    """3x3 integer product (numba's @ is float-only)."""
    out = np.zeros((3, 3), dtype=np.int64)
    for r in range(3):
        for c in range(3):
            for k in range(3):
                out[r, c] += a[r, k] * b[k, c]
    return out
