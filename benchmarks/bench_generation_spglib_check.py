"""Cost of the generator's spglib check, per centring, and of two cheaper-looking alternatives.

Why: spglib's check is ~85% of the fast path's time. This measures, on the cells the fast path
actually hands to spglib (accepted and mismatching attempts), CPU ms per call of

1. conventional  `spglib.get_symmetry_dataset` on the generated conventional cell (what fast.py does);
2. primitive     the same on the primitive cell (standard centring matrix of the asked group's
                 lattice letter, one atom per centring orbit kept);
3. number only   the C entry `spgat_get_international` (space-group number, no Wyckoff/standard
                 cell), called through ctypes on spglib's own libsymspg;

and checks that all three give the same space group. Result with spglib 2.8: neither
alternative is cheaper; the cost sits in spglib's symmetry search of centred cubic lattices
(about 10 ms even for a one-atom fcc cell), not in the number of atoms or the refinement.

    python benchmarks/bench_generation_spglib_check.py --stats runs/mp40.json.gz [--n 2000]
"""

from __future__ import annotations

import argparse
import ctypes
import time
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np
import spglib

from xrdgen.config import GenerationConfig
from xrdgen.generation import fast
from xrdgen.generation.generator import Generator
from xrdgen.generation.wyckoff import wyckoff_table
from xrdgen.statistics.model import Statistics

# Rows: primitive basis vectors in conventional fractional coordinates (ITA; R: obverse, hexagonal axes).
H, T = 0.5, 1.0 / 3.0
CENTRING = {
    "A": [[1, 0, 0], [0, H, H], [0, -H, H]],
    "B": [[H, 0, H], [0, 1, 0], [-H, 0, H]],
    "C": [[H, H, 0], [-H, H, 0], [0, 0, 1]],
    "I": [[-H, H, H], [H, -H, H], [H, H, -H]],
    "F": [[0, H, H], [H, 0, H], [H, H, 0]],
    "R": [[2 * T, T, T], [-T, T, T], [-T, -2 * T, T]],
}


def primitive_cell(lattice, frac, numbers, letter):
    """The primitive cell, or None when the atoms do not repeat with the centring (not that centring)."""
    if letter == "P":
        return lattice, frac, numbers
    m = np.array(CENTRING[letter], dtype=np.float64)
    prim = np.mod(frac @ np.linalg.inv(m), 1.0)
    key = np.rint(prim * 1e6).astype(np.int64) % 1_000_000  # integer keys: exact de-duplication
    _, keep = np.unique(np.column_stack([key, numbers]), axis=0, return_index=True)
    if len(keep) * round(1 / abs(np.linalg.det(m))) != len(frac):
        return None
    keep.sort()
    return m @ lattice, prim[keep], numbers[keep]


def international_number():
    """spgat_get_international from spglib's own C library: the number only (0 if none)."""
    lib = ctypes.CDLL(str(next((Path(spglib.__file__).parent / "lib64").glob("libsymspg.so*"))))
    f = lib.spgat_get_international
    f.restype = ctypes.c_int
    f.argtypes = [ctypes.c_char_p] + [ctypes.c_void_p] * 3 + [ctypes.c_int, ctypes.c_double, ctypes.c_double]

    def number(lattice, frac, numbers, symprec, angle_tolerance):
        lat = np.ascontiguousarray(lattice.T)  # C spglib: basis vectors as columns
        pos = np.ascontiguousarray(frac, dtype=np.float64)
        typ = np.ascontiguousarray(numbers, dtype=np.intc)
        return f(
            ctypes.create_string_buffer(11), lat.ctypes.data, pos.ctypes.data, typ.ctypes.data, len(pos), symprec, angle_tolerance
        )

    return number


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stats", required=True)
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    cells = []
    check = fast.spglib_spacegroup

    def recording(lattice, frac, numbers, symprec, angle_tolerance):
        found = check(lattice, frac, numbers, symprec, angle_tolerance)
        cells.append((lattice.copy(), frac.copy(), numbers.copy(), found))
        return found

    fast.spglib_spacegroup = recording
    generator = Generator(Statistics.load(args.stats), GenerationConfig(), seed=args.seed, record_attempts=True)
    generator.generate_many(args.n)
    fast.spglib_spacegroup = check
    asked = [a.spacegroup for a in generator.attempts if a.outcome in ("accepted", "spacegroup_mismatch", "too_close")]
    cfg = GenerationConfig()
    number_only = international_number()

    def dataset_number(cell):
        if cell is None:
            return 0
        d = spglib.get_symmetry_dataset(cell, symprec=cfg.symprec, angle_tolerance=cfg.angle_tolerance)
        return 0 if d is None else int(d.number)

    ms, count, disagree = defaultdict(lambda: np.zeros(3)), defaultdict(int), 0
    for (lattice, frac, numbers, found), sg in zip(cells, asked):
        letter = wyckoff_table(sg).symbol[0]
        t = [time.process_time()]
        a = dataset_number((lattice, frac, numbers))
        t.append(time.process_time())
        b = dataset_number(primitive_cell(lattice, frac, numbers, letter))
        t.append(time.process_time())
        c = number_only(lattice, frac, numbers, cfg.symprec, cfg.angle_tolerance)
        t.append(time.process_time())
        ms[letter] += 1e3 * np.diff(t)
        count[letter] += 1
        disagree += int(not (a == b == c == found))
    print(f"{len(cells)} spglib checks of {args.n} crystals; verdicts that differ between the three: {disagree}")
    print(f"{'centring':8s} {'cells':>6s} {'conventional':>13s} {'primitive':>10s} {'number only':>12s}  [CPU ms per call]")
    for letter in sorted(count):
        print(f"{letter:8s} {count[letter]:6d} " + " ".join(f"{x:>12.2f}" for x in ms[letter] / count[letter]))
    total = sum(ms.values()) / 1e3
    print(f"total CPU s: conventional {total[0]:.2f}, primitive {total[1]:.2f}, number only {total[2]:.2f}")


if __name__ == "__main__":
    main()
