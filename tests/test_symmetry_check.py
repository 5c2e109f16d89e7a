"""The generator's fast space-group check against spglib: generated draws of all 230 groups, and built cases.

The full proof (>= 50,000 crystals) is `benchmarks/bench_symmetry_check.py`; here a smaller sample
of the same comparison, plus structures built to have *more* symmetry than the group they are
given in (higher point group, extra centring, pseudo-symmetric lattice), which must be rejected,
and near misses, which must be accepted.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import spglib

from xrdgen.config import GenerationConfig
from xrdgen.generation.generator import Generator
from xrdgen.generation.symmetry_check import (
    EXTRA_ROTATION,
    NO_EXTRA_OPERATION,
    SPGLIB_APPROXIMATE_ROTATION,
    SPGLIB_EXTRA_TRANSLATION,
    check_spacegroup,
)
from xrdgen.generation.wyckoff import wyckoff_table
from xrdgen.geometry import lattice_matrix

SYMPREC, ANGLE = 1e-8, 5.0
DEG = np.pi / 180


def _bench():
    """The benchmark module (its generic all-230-groups statistics and the comparison loop)."""
    path = Path(__file__).resolve().parents[1] / "benchmarks" / "bench_symmetry_check.py"
    spec = importlib.util.spec_from_file_location("bench_symmetry_check", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def spglib_number(lattice, frac, numbers) -> int:
    dataset = spglib.get_symmetry_dataset((lattice, frac, numbers), symprec=SYMPREC, angle_tolerance=ANGLE)
    return 0 if dataset is None else int(dataset.number)


def structure(spacegroup: int, sites: list[tuple[str, tuple, int]]):
    """Atoms of the conventional cell from (Wyckoff name, point, type) in `spacegroup`'s setting."""
    table = wyckoff_table(spacegroup)
    frac, numbers = [], []
    for name, point, kind in sites:
        site = table.index[name]
        orbit = table.orbit(site, table.project(site, np.array(point, dtype=np.float64)))
        frac.append(orbit)
        numbers += [kind] * len(orbit)
    return np.concatenate(frac), np.array(numbers)


def judge(lattice, spacegroup, sites):
    """(our verdict, spglib's number) for a built structure."""
    frac, numbers = structure(spacegroup, sites)
    return check_spacegroup(lattice, frac, numbers, spacegroup, SYMPREC, ANGLE), spglib_number(lattice, frac, numbers)


# ------------------------------------------------------------------------------ generated draws
def test_verdicts_equal_spglibs_on_generated_draws_of_all_230_groups():
    bench = _bench()
    statistics = bench.generic_statistics(seed=7, n_lattices=600)
    result = bench.compare(statistics, list(range(1, 231)) * 6, seed=7, config=GenerationConfig(check="spglib"))
    assert result["disagreements"] == []
    assert len(result["per_spacegroup"]) == 230
    rejected = result["cells"] - result["accepted"]
    assert result["accepted"] == 230 * 6 and rejected > 500  # the rejected draws are what matters
    # Every route of ours is exercised, and spglib is asked for a minority of the draws.
    assert result["routes"][NO_EXTRA_OPERATION] > 0 and result["routes"][EXTRA_ROTATION] > 0
    assert result["routes"][SPGLIB_EXTRA_TRANSLATION] > 0
    asked = result["routes"][SPGLIB_EXTRA_TRANSLATION] + result["routes"][SPGLIB_APPROXIMATE_ROTATION]
    assert asked < 0.4 * result["cells"]


# -------------------------------------------------------------------------------- built cases
def test_cubic_cell_with_more_symmetry_than_asked_is_rejected_without_spglib():
    cubic = lattice_matrix(4.1, 4.1, 4.1, 90 * DEG, 90 * DEG, 90 * DEG)
    # CsCl in P23 (195): the atoms at 1a and 1b have the full m-3m: Pm-3m (221).
    verdict, found = judge(cubic, 195, [("1a", (0, 0, 0), 55), ("1b", (0, 0, 0), 17)])
    assert found == 221 and not verdict.accepted and verdict.route == EXTRA_ROTATION
    # The same cell with a general-position atom added keeps only 23: accepted, spglib agrees.
    verdict, found = judge(cubic, 195, [("1a", (0, 0, 0), 55), ("1b", (0, 0, 0), 17), ("12j", (0.11, 0.23, 0.37), 8)])
    assert found == 195 and verdict.accepted and verdict.route == NO_EXTRA_OPERATION
    # x, x, x on the 3-fold axes of P2_13 (198) has site symmetry 3 only: accepted.
    verdict, found = judge(cubic, 198, [("4a", (0.13, 0.13, 0.13), 14)])
    assert found == 198 and verdict.accepted


def test_extra_centring_translation_is_named_by_spglib():
    cubic = lattice_matrix(3.3, 3.3, 3.3, 90 * DEG, 90 * DEG, 90 * DEG)
    # One type on 1a and 1b of Pm-3m (221) is bcc: the centring (½, ½, ½) makes Im-3m (229).
    verdict, found = judge(cubic, 221, [("1a", (0, 0, 0), 26), ("1b", (0, 0, 0), 26)])
    assert found == 229 and not verdict.accepted and verdict.route == SPGLIB_EXTRA_TRANSLATION
    # An extra translation can keep the type: P1 whose atoms repeat with (½, 0, 0) is still P1
    # (a cell half as large), so only naming the group decides, and it accepts.
    triclinic = lattice_matrix(5.0, 6.1, 7.3, 80 * DEG, 75 * DEG, 65 * DEG)
    points = [(0.1, 0.2, 0.3), (0.6, 0.2, 0.3), (0.33, 0.71, 0.05), (0.83, 0.71, 0.05), (0.4, 0.45, 0.8), (0.9, 0.45, 0.8)]
    verdict, found = judge(triclinic, 1, [("1a", p, kind) for p, kind in zip(points, [8, 8, 14, 14, 26, 26])])
    assert found == 1 and verdict.accepted and verdict.route == SPGLIB_EXTRA_TRANSLATION


@pytest.mark.parametrize("beta, expected", [(91.0, False), (97.0, True)])
def test_pseudo_symmetric_lattice_within_the_angle_tolerance(beta, expected):
    # P2/m (10) with atoms only on the inversion centres: they are also on the mirrors x = 0, ½ of
    # an orthorhombic cell. With β = 91° spglib's 5° angle tolerance admits that lattice symmetry
    # (Pmmm, 47); with β = 97° it does not.
    lattice = lattice_matrix(4.0, 5.0, 6.0, 90 * DEG, beta * DEG, 90 * DEG)
    verdict, found = judge(lattice, 10, [("1a", (0, 0, 0), 12), ("1h", (0, 0, 0), 8), ("1c", (0, 0, 0), 8)])
    assert (found == 10) == expected
    assert verdict.accepted == expected
    if not expected:
        assert verdict.route == SPGLIB_APPROXIMATE_ROTATION  # not an exact lattice symmetry: spglib decides


def test_generator_with_the_fast_check_gives_crystals_spglib_confirms():
    statistics = _bench().generic_statistics(seed=3, n_lattices=400)
    generator = Generator(statistics, GenerationConfig(check="fast"), seed=3)
    for spacegroup in (1, 2, 15, 63, 146, 166, 191, 216, 225, 230):
        crystal = generator.generate(spacegroup)
        assert spglib_number(crystal.lattice, crystal.frac_coords, crystal.numbers) == spacegroup
