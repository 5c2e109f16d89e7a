"""Speed of the compiled simulator against pymatgen's XRDCalculator + numpy Gaussian broadening.

Both paths make the same thing from the same structures: the pure pattern on the default grid (5-90°
2θ, 8,501 points, Cu Kα1) with Gaussian/Scherrer peaks of one crystallite size. The reference is
`XRDCalculator.get_pattern` followed by every peak's Gaussian evaluated over the whole grid in numpy
(the original work's broadening). Everything runs in this one process on one core, so patterns/s is
also patterns/s/core; CPU time (process_time) is printed beside wall time because the machine may be
shared. Writes a PNG of the cost per pattern against atoms per cell.

    .venv/bin/python benchmarks/bench_simulation.py [--structures 150] [--png results/bench_simulation.png]
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one core for both paths

import numpy as np  # noqa: E402

DATA = Path(os.environ.get("XRDGEN_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")) / "mp40"


def load_structures(n: int, seed: int):
    """n ordered MP structures spread over cell sizes (<= 120 sites), seeded."""
    import pandas as pd
    from pymatgen.io.cif import CifParser

    cifs = pd.concat([pd.read_csv(p) for p in sorted(DATA.glob("*.csv"))], ignore_index=True)["cif"].tolist()
    out = []
    for index in np.random.default_rng(seed).permutation(len(cifs)):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                structure = CifParser.from_str(cifs[index]).parse_structures(primitive=False)[0]
            except Exception:
                continue
        if structure.is_ordered and len(structure) <= 120:
            out.append(structure)
        if len(out) == n:
            return out
    return out


def reference_pattern(calculator, structure, grid_x, size_nm, wavelength):
    """pymatgen peaks, then each peak's unit-area Gaussian (Scherrer σ) over the whole grid."""
    pattern = calculator.get_pattern(structure, two_theta_range=(grid_x[0], grid_x[-1]))
    tt, inten = np.asarray(pattern.x), np.asarray(pattern.y)
    theta = np.radians(tt / 2)
    sigma = np.degrees(0.9 * wavelength / (size_nm * 10 * np.cos(theta))) / (2 * np.sqrt(2 * np.log(2)))
    y = np.zeros_like(grid_x)
    for centre, height, s in zip(tt, inten, sigma):
        y += height / (s * np.sqrt(2 * np.pi)) * np.exp(-((grid_x - centre) ** 2) / (2 * s * s))
    return y / y.max()


def timed(fn, repeats: int):
    """(wall seconds, CPU seconds) per call, best of three rounds of `repeats` calls."""
    best_wall, best_cpu = np.inf, np.inf
    for _ in range(3):
        w0, c0 = time.perf_counter(), time.process_time()
        for _ in range(repeats):
            fn()
        best_wall = min(best_wall, (time.perf_counter() - w0) / repeats)
        best_cpu = min(best_cpu, (time.process_time() - c0) / repeats)
    return best_wall, best_cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--structures", type=int, default=150)
    parser.add_argument("--repeats", type=int, default=20, help="calls of ours per structure and round")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--png", type=Path, default=Path("results/bench_simulation.png"))
    args = parser.parse_args()

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from pymatgen.analysis.diffraction.xrd import XRDCalculator
    from tqdm import tqdm

    from xrdgen.config import GridConfig, SimulationConfig
    from xrdgen.crystal import Crystal
    from xrdgen.simulation import PatternSimulator

    structures = load_structures(args.structures, args.seed)
    crystals = [Crystal.from_structure(s) for s in structures]
    simulator = PatternSimulator(SimulationConfig(), GridConfig())
    grid_x = simulator.two_theta
    wavelength = simulator.wavelength
    calculator = XRDCalculator(wavelength)
    simulator.simulate(crystals[0], crystallite_size_nm=50.0)  # load the compiled code first
    print(f"load average at start: {os.getloadavg()[0]:.2f} (cores: {os.cpu_count()})")

    atoms, ours, theirs, worst, worst_inside = [], [], [], 0.0, 0.0
    inside = (grid_x > grid_x[0] + 2) & (grid_x < grid_x[-1] - 2)
    for structure, crystal in tqdm(list(zip(structures, crystals)), desc="structures"):
        size = 50.0
        ours.append(timed(lambda: simulator.simulate(crystal, crystallite_size_nm=size), args.repeats))
        theirs.append(timed(lambda: reference_pattern(calculator, structure, grid_x, size, wavelength), 1))
        a = simulator.simulate(crystal, crystallite_size_nm=size)
        b = reference_pattern(calculator, structure, grid_x, size, wavelength)
        worst = max(worst, float(np.abs(a - b).max()))
        worst_inside = max(worst_inside, float(np.abs(a - b)[inside].max()))
        atoms.append(len(structure))
    atoms, ours, theirs = np.array(atoms), np.array(ours), np.array(theirs)
    print(f"largest |ours - reference| over all patterns (max 1): {worst:.2e}; more than 2° from the grid's "
          f"ends: {worst_inside:.2e} (ours adds the tails of peaks just outside the grid)")

    def report(label, mask):
        o_wall, o_cpu = ours[mask].sum(axis=0)
        t_wall, t_cpu = theirs[mask].sum(axis=0)
        n = int(mask.sum())
        if n == 0:
            return
        print(f"{label:<26} n={n:4d}  ours {n / o_wall:8.0f} patterns/s/core (CPU {n / o_cpu:8.0f})  "
              f"reference {n / t_wall:7.1f} (CPU {n / t_cpu:7.1f})  ratio {t_wall / o_wall:6.0f}x (CPU {t_cpu / o_cpu:6.0f}x)")

    report("all structures", np.ones(len(atoms), bool))
    report("~20 atoms (16-24)", (atoms >= 16) & (atoms <= 24))
    report("<= 10 atoms", atoms <= 10)
    report("> 50 atoms", atoms > 50)

    from xrdgen.simulation.imperfections import augment
    from xrdgen.config import AugmentationConfig

    rng = np.random.default_rng(args.seed)
    pure, other = simulator.simulate(crystals[0], rng), simulator.simulate(crystals[1], rng)
    wall, cpu = timed(lambda: augment(pure, AugmentationConfig(), rng, impurity=other), 50)
    print(f"augment (all imperfections on, impurity given): {1 / wall:.0f} patterns/s/core (CPU {1 / cpu:.0f})")
    for label, config in (("pseudo-Voigt", SimulationConfig(profile="pseudo_voigt")), ("Gaussian + Kα2", SimulationConfig(kalpha2=True))):
        other_sim = PatternSimulator(config, GridConfig())
        wall, cpu = timed(lambda: [other_sim.simulate(c, rng) for c in crystals], 1)
        print(f"{label:<26} all structures: {len(crystals) / wall:.0f} patterns/s/core (CPU {len(crystals) / cpu:.0f})")

    args.png.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    ax.scatter(atoms, theirs[:, 1] * 1e3, s=10, label="pymatgen XRDCalculator + numpy Gaussians")
    ax.scatter(atoms, ours[:, 1] * 1e3, s=10, label="xrdgen (Numba)")
    ax.set_yscale("log")
    ax.set_xlabel("atoms per cell")
    ax.set_ylabel("CPU ms per pattern (8,501 points)")
    ax.set_title("Cost of one pure pattern, Cu Kα, 5-90° 2θ")
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.tight_layout()
    fig.savefig(args.png, dpi=130)
    print(f"wrote {args.png}")


if __name__ == "__main__":
    main()
