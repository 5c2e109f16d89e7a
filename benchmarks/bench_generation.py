"""Checked synthetic crystals per second per core: the fast path against the plain PyXtal path.

Measured in one run, one process (one core), with the spglib space-group check included:

1. fast      `Generator(path="fast")`: cached Wyckoff arrays, numpy orbits, spglib on arrays;
2. reference `Generator(path="reference")`: the same draws on PyXtal objects + SpacegroupAnalyzer;
3. plain     `pyxtal.from_random(3, sg, species, numIons)` + `SpacegroupAnalyzer(...).get_space_group_number()`,
             with the space group and composition of crystals the fast path drew (PyXtal places the
             atoms itself, with its distance checks); a failed or mismatching draw counts as no crystal.

Rates are per core: crystals / CPU seconds of this process (wall-clock rates are printed beside,
since the CPU may be shared). Statistics: a file from `xrdgen stats build` (or `default`, the shipped one), or mp40 read here.

    python benchmarks/bench_generation.py [--stats runs/mp40.json.gz] [--n-fast 2000] [--n-plain 200]
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
from pymatgen.core.periodic_table import Element
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer
from pyxtal import pyxtal

from xrdgen.collection.reading import read_collection
from xrdgen.config import GenerationConfig, load_config
from xrdgen.generation.generator import Generator
from xrdgen.pipeline import resolve_statistics, split_and_build
from xrdgen.statistics.model import Statistics


def load_statistics(path: str | None):
    """A statistics file ("default": the shipped one), or mp40 through the pipeline (read, split, build; min count 5)."""
    if path:
        return Statistics.load(resolve_statistics(path)[0])
    csvs = sorted(str(p) for p in (Path(__file__).resolve().parents[2] / "shared/data/mp40").glob("*.csv"))
    config = load_config(overrides={"statistics.min_count_per_spacegroup": 5})
    report = read_collection(csvs, config, progress=True)
    return split_and_build(report, config, split_seed=0, provenance={"source": "mp40, min count 5"}).statistics


def timed(fn):
    """(result, wall seconds, CPU seconds of this process)."""
    w0, c0 = time.perf_counter(), time.process_time()
    result = fn()
    return result, time.perf_counter() - w0, time.process_time() - c0


def run_plain(crystals, rng_seed: int) -> int:
    """pyxtal.from_random + SpacegroupAnalyzer for each (space group, composition); returns successes."""
    np.random.seed(rng_seed)  # PyXtal draws from numpy's global generator
    ok = 0
    for crystal in crystals:
        counts = Counter(int(z) for z in crystal.numbers)
        species = [Element.from_Z(z).symbol for z in counts]
        xtal = pyxtal()
        try:
            xtal.from_random(3, crystal.spacegroup, species, list(counts.values()))
            if not xtal.valid:
                continue
            found = SpacegroupAnalyzer(xtal.to_pymatgen(), symprec=1e-8, angle_tolerance=5.0).get_space_group_number()
            ok += int(found == crystal.spacegroup)
        except Exception:  # noqa: BLE001 - PyXtal gives up on some compositions: no crystal
            continue
    return ok


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--stats", default=None, help="statistics file or 'default' (the shipped one); none: build from mp40")
    parser.add_argument("--n-fast", type=int, default=2000)
    parser.add_argument("--n-reference", type=int, default=200)
    parser.add_argument("--n-plain", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    statistics = load_statistics(args.stats)
    print(f"statistics: {len(statistics.spacegroups)} classes ({statistics.provenance.get('source', '?')})")
    fast = Generator(statistics, GenerationConfig(path="fast"), seed=args.seed)
    fast.generate_many(100)  # warm-up: Wyckoff tables of the frequent groups, KDEs, imports
    fast.outcomes.clear()
    crystals, fast_wall, fast_cpu = timed(lambda: fast.generate_many(args.n_fast))
    reference = Generator(statistics, GenerationConfig(path="reference"), seed=args.seed + 1)
    reference.generate_many(10)
    _, ref_wall, ref_cpu = timed(lambda: reference.generate_many(args.n_reference))
    plain_ok, plain_wall, plain_cpu = timed(lambda: run_plain(crystals[: args.n_plain], args.seed))

    rows = [
        ("fast (ours)", args.n_fast, fast_wall, fast_cpu),
        ("reference (ours, PyXtal objects)", args.n_reference, ref_wall, ref_cpu),
        ("plain pyxtal.from_random + SpacegroupAnalyzer", plain_ok, plain_wall, plain_cpu),
    ]
    print(f"{'path':48s} {'crystals':>8s} {'per core [1/s]':>15s} {'wall [1/s]':>11s}")
    for name, n, wall, cpu in rows:
        print(f"{name:48s} {n:8d} {n / cpu:15.1f} {n / wall:11.1f}")
    fast_rate, plain_rate = args.n_fast / fast_cpu, plain_ok / plain_cpu
    print(
        f"ratio fast / plain (per core): {fast_rate / max(plain_rate, 1e-12):.1f}x; "
        f"fast / reference: {fast_rate / (args.n_reference / ref_cpu):.1f}x"
    )
    print(f"plain: {plain_ok} of {min(args.n_plain, len(crystals))} draws gave a crystal in the asked space group")
    print(f"fast path attempts: {dict(fast.outcomes)}")
    print(f"target >= 500 checked crystals/s/core: {'met' if fast_rate >= 500 else 'NOT met'} ({fast_rate:.0f})")


if __name__ == "__main__":
    main()
