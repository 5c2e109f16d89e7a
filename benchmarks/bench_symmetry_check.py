"""The generator's space-group check: our exact search (`symmetry_check.py`) against spglib, verdict by verdict.

The proof that `generation.check: fast` may replace spglib: every raw draw of the fast generator
(accepted *and* rejected, recorded at the check, before the verdict) is judged by both

- spglib: `get_symmetry_dataset` at the config's symprec / angle_tolerance, accepted iff it finds
  the asked space group (what `generation.check: spglib` does);
- ours: `check_spacegroup` (extra operations beyond the asked group; spglib only where needed);

and any disagreement is printed (there must be none). The generator runs with the spglib check,
so the draws are exactly the ones the spglib-checked generator makes. Rates are checks per CPU
second of this process (one core), ours and spglib's, on the same cells.

Statistics: all 230 space groups, every Wyckoff site equally likely (reaches the special positions
whose combinations make higher symmetry, i.e. the rejections), 8 elements, and synthetic lattice
samples crowded near the angles where spglib's 5° angle tolerance admits extra lattice symmetry
(90° in monoclinic and triclinic cells, pseudo-cubic and pseudo-hexagonal axis ratios).
`--stats FILE` uses a statistics file instead (its own classes).

    nice -n 10 python benchmarks/bench_symmetry_check.py [--n 50000] [--seed 0] [--stats FILE]
        [--symprec 1e-8] [--angle-tolerance 5]  (default: the generation config's)
"""

from __future__ import annotations

import argparse
import time
import warnings
from collections import Counter

import numpy as np

from xrdgen.config import GenerationConfig
from xrdgen.generation import fast
from xrdgen.generation.generator import Generator
from xrdgen.generation.symmetry_check import check_spacegroup
from xrdgen.generation.wyckoff import wyckoff_table
from xrdgen.statistics.kde import normal_reference_bandwidth
from xrdgen.statistics.model import SpaceGroupStatistics, Statistics

ELEMENTS = {"O": 0.3, "Si": 0.15, "Na": 0.1, "Fe": 0.1, "Cl": 0.1, "Mg": 0.1, "Ba": 0.05, "Cu": 0.1}


def _near(rng, n, centres, spread, low, high):
    """n values: half near one of `centres` (normal, `spread`), half uniform in [low, high]."""
    near = rng.choice(centres, n) + spread * rng.standard_normal(n)
    return np.where(rng.random(n) < 0.5, near, rng.uniform(low, high, n))


def generic_statistics(seed: int = 0, n_lattices: int = 2000) -> Statistics:
    """All 230 space groups with uniform Wyckoff probabilities and adversarial synthetic lattices."""
    rng = np.random.default_rng(seed)
    deg = np.pi / 180
    n = n_lattices
    lengths = lambda k: np.exp(0.35 * rng.standard_normal((n, k)))  # noqa: E731 - relative lengths
    lattices = {
        # c/a near pseudo-cubic rhombohedral (α = 90°: √1.5, α = 60°: √6) and bcc/fcc-like body-centred ratios.
        "hexagonal": np.column_stack([np.ones(n), _near(rng, n, [1.0, 1.633], 0.02, 0.4, 3.0)]),
        "trigonal": np.column_stack([np.ones(n), _near(rng, n, [np.sqrt(1.5), np.sqrt(6.0)], 0.02, 0.4, 3.5)]),
        "tetragonal": np.column_stack([np.ones(n), _near(rng, n, [1.0, np.sqrt(2.0), 1 / np.sqrt(2.0)], 0.02, 0.3, 3.0)]),
        "orthorhombic": np.column_stack(
            [np.ones(n), _near(rng, n, [1.0, np.sqrt(3.0), np.sqrt(2.0)], 0.02, 0.4, 2.5), np.exp(0.4 * rng.standard_normal(n))]
        ),
        "monoclinic": np.column_stack([lengths(3), _near(rng, n, [90.0, 90.0, 120.0], 1.5, 90.0, 125.0) * deg]),
        "triclinic": np.column_stack(
            [lengths(3)] + [_near(rng, n, [90.0, 90.0, 60.0, 120.0], 1.5, 70.0, 115.0) * deg for _ in range(3)]
        ),
    }
    v_atomic = np.exp(rng.uniform(np.log(5.0), np.log(3000.0), 4000))
    denseness = np.exp(np.log(2.0) + 0.25 * rng.standard_normal(4000))
    volume_samples = np.column_stack([v_atomic, denseness])
    bw_v, bw_f = normal_reference_bandwidth(volume_samples)
    per = {}
    for sg in range(1, 231):
        names = wyckoff_table(sg).names
        per[sg] = SpaceGroupStatistics(10, [0.3, 0.4, 0.3], ELEMENTS, [0.6, 0.3, 0.1], {name: 1 / len(names) for name in names})
    return Statistics(
        list(range(1, 231)),
        {sg: 1 / 230 for sg in range(1, 231)},
        per,
        lattices,
        volume_samples,
        (float(bw_f), float(bw_v)),
        {"source": "generic (symmetry check benchmark)"},
    )


def compare(statistics: Statistics, spacegroups, seed: int, config: GenerationConfig, progress_every: int = 0):
    """One crystal per entry of `spacegroups`, generated with the spglib check; every raw draw judged both ways.

    Returns a dict: cells (raw draws), accepted (by spglib), disagreements (asked, spglib's number,
    our verdict, lattice, coordinates, numbers), routes of ours, CPU seconds of each check, draws
    per space group.
    """
    result = {
        "cells": 0,
        "accepted": 0,
        "disagreements": [],
        "routes": Counter(),
        "spglib_s": 0.0,
        "ours_s": 0.0,
        "per_spacegroup": Counter(),
    }
    asked = {"spacegroup": 0}
    original = fast.spglib_spacegroup

    def judged(lattice, frac, numbers, symprec, angle_tolerance):
        t0 = time.process_time()
        found = original(lattice, frac, numbers, symprec, angle_tolerance)
        t1 = time.process_time()
        verdict = check_spacegroup(lattice, frac, numbers, asked["spacegroup"], symprec, angle_tolerance)
        t2 = time.process_time()
        result["spglib_s"] += t1 - t0
        result["ours_s"] += t2 - t1
        result["cells"] += 1
        result["per_spacegroup"][asked["spacegroup"]] += 1
        result["routes"][verdict.route] += 1
        spglib_accepts = found == asked["spacegroup"]
        result["accepted"] += int(spglib_accepts)
        if verdict.accepted != spglib_accepts:
            result["disagreements"].append((asked["spacegroup"], found, verdict, lattice.copy(), frac.copy(), numbers.copy()))
        return found

    generator = Generator(statistics, config, seed=seed)
    start = time.perf_counter()
    n_crystals = len(spacegroups)
    fast.spglib_spacegroup = judged
    try:
        for i, spacegroup in enumerate(spacegroups):
            asked["spacegroup"] = int(spacegroup)
            generator.generate(asked["spacegroup"])
            if progress_every and (i + 1) % progress_every == 0:
                elapsed = time.perf_counter() - start
                rate = (i + 1) / elapsed
                print(
                    f"crystals {i + 1}/{n_crystals}  draws {result['cells']}  disagreements {len(result['disagreements'])}  "
                    f"{rate:.1f} crystals/s  ETA {(n_crystals - i - 1) / rate / 60:.1f} min",
                    flush=True,
                )
    finally:
        fast.spglib_spacegroup = original
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=50_000, help="crystals to generate (all their raw draws are judged)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--stats", default=None, help="a statistics file instead of the generic all-230-groups statistics")
    parser.add_argument("--symprec", type=float, default=GenerationConfig().symprec)
    parser.add_argument("--angle-tolerance", type=float, default=GenerationConfig().angle_tolerance)
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    statistics = Statistics.load(args.stats) if args.stats else generic_statistics(args.seed)
    config = GenerationConfig(check="spglib", symprec=args.symprec, angle_tolerance=args.angle_tolerance)
    print(
        f"statistics: {len(statistics.spacegroups)} space groups ({statistics.provenance.get('source', '?')}); "
        f"symprec {config.symprec}, angle tolerance {config.angle_tolerance}°",
        flush=True,
    )
    compare(statistics, statistics.spacegroups, args.seed + 1, config)  # warm-up: numba, Wyckoff tables, KDEs
    rng = np.random.default_rng(args.seed)
    prior = np.array([statistics.prior[sg] for sg in statistics.spacegroups])
    spacegroups = rng.choice(statistics.spacegroups, size=args.n, p=prior / prior.sum())
    r = compare(statistics, spacegroups, args.seed, config, progress_every=max(args.n // 50, 1))
    cells, accepted = r["cells"], r["accepted"]
    covered = len(r["per_spacegroup"])
    print(
        f"\n{args.n} crystals, {cells} raw draws judged over {covered} space groups "
        f"(fewest draws of one group: {min(r['per_spacegroup'].values())}); spglib accepts {accepted}, rejects {cells - accepted}"
    )
    print(f"routes of ours: {dict(r['routes'])}")
    print(f"disagreements: {len(r['disagreements'])}")
    for sg, found, verdict, lattice, frac, numbers in r["disagreements"][:20]:
        print(
            f"  asked {sg}, spglib {found}, ours {verdict}; lattice {lattice.tolist()}; atoms {numbers.tolist()} at {frac.tolist()}"
        )
    ours, theirs = cells / r["ours_s"], cells / r["spglib_s"]
    print(f"{'check':10s} {'checks per CPU second':>22s}")
    print(f"{'ours':10s} {ours:22.0f}\n{'spglib':10s} {theirs:22.0f}\nratio ours / spglib: {ours / theirs:.1f}x")


if __name__ == "__main__":
    main()
