"""Speed of the compiled simulator and imperfections against pymatgen + numpy, in one process on one core.

Every row prints ours, the reference and their ratio in patterns/s/core from CPU time (process_time;
wall time beside it, since the machine may be shared). Same structures, same 8,501-point grid
(5-90° 2θ, Cu Kα1), same profile parameters on both sides:

- Gaussian/Scherrer (the `pure` preset), pseudo-Voigt/Caglioti, each with and without Kα2. Reference:
  `XRDCalculator.get_pattern`, then every line's profile over the whole grid in numpy (the original
  work's broadening), Kα2 twins as in `profiles.kalpha2_doublet`.
- Imperfections, pattern stage (impurity, GP background, additive and multiplicative noise) on a
  given pattern. Reference: the same steps in numpy/scipy (eigh covariance factor, CubicSpline,
  numpy normals), as the former implementation did them.
- Imperfections, sample and instrument stage (texture, shifts, strain, microstrain, asymmetry,
  Debye–Waller, small crystallites): the cost they add to the same simulation without them. Reference:
  pymatgen on the strained structure with Debye–Waller factors, March–Dollase per hkl family, shifted
  split profiles in numpy, minus the reference simulation without them.
- The `measured` preset end to end: draw effects → pseudo-Voigt + Kα2 pattern → pattern stage, the
  impurity being the previous pattern (as the stream does).

The largest |ours - reference| of the Gaussian and pseudo-Voigt rows is printed as a check.

    nice -n 10 .venv/bin/python benchmarks/bench_simulation.py [--structures 150] [--reference-structures 40]
"""

from __future__ import annotations

import argparse
import os
import time
import warnings
from pathlib import Path

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")  # one core for both paths

import matplotlib  # noqa: E402

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from pymatgen.analysis.diffraction.xrd import XRDCalculator  # noqa: E402
from pymatgen.core import Lattice  # noqa: E402
from pymatgen.io.cif import CifParser  # noqa: E402
from scipy.interpolate import CubicSpline  # noqa: E402

from xrdgen.config import ANODE_KALPHA2, AugmentationConfig, GridConfig, SimulationConfig, load_config  # noqa: E402
from xrdgen.crystal import Crystal  # noqa: E402
from xrdgen.geometry import lattice_parameters  # noqa: E402
from xrdgen.simulation.imperfections import augment, draw_imperfections, draw_sample_effects  # noqa: E402
from xrdgen.simulation.simulator import PatternSimulator  # noqa: E402

DATA = Path(os.environ.get("XRDGEN_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data")) / "mp40"
FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))


def load_structures(n: int, seed: int):
    """n ordered MP structures spread over cell sizes (<= 120 sites), seeded."""
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


def reference_lines(tt, inten, wavelength, kalpha2):
    """Kα1 lines plus Kα2 twins (ratio 0.5) in numpy, and each line's wavelength."""
    if not kalpha2:
        return tt, inten, np.full(len(tt), wavelength)
    sin2 = np.sin(np.radians(tt / 2)) * ANODE_KALPHA2["Cu"] / wavelength
    ok = sin2 < 1
    return (
        np.concatenate([tt, np.degrees(2 * np.arcsin(sin2[ok]))]),
        np.concatenate([inten, 0.5 * inten[ok]]),
        np.concatenate([np.full(len(tt), wavelength), np.full(int(ok.sum()), ANODE_KALPHA2["Cu"])]),
    )


def reference_profiles(grid_x, tt, inten, fwhm_lo, fwhm_hi, eta):
    """Each line's split pseudo-Voigt (η = 1: Gaussian) over the whole grid in numpy, max 1."""
    y = np.zeros_like(grid_x)
    for centre, area, lo, hi in zip(tt, inten, fwhm_lo, fwhm_hi):
        d = grid_x - centre
        width = np.where(d < 0, lo, hi)
        sigma, gamma = width / FWHM_PER_SIGMA, width / 2
        y += area * eta * 2 / (np.sqrt(2 * np.pi) * (lo + hi) / FWHM_PER_SIGMA) * np.exp(-d * d / (2 * sigma * sigma))
        if eta < 1:
            y += area * (1 - eta) * 2 / (np.pi * (lo + hi) / 2) * gamma * gamma / (d * d + gamma * gamma)
    return y / y.max()


def reference_pattern(calculator, structure, grid_x, profile, wavelength, kalpha2=False):
    """pymatgen peaks (range widened like ours), then numpy profiles: Scherrer or 2·Caglioti widths."""
    margin = 2.0 if "crystallite_size_nm" in profile else 5.0
    pattern = calculator.get_pattern(structure, two_theta_range=(grid_x[0] - margin, grid_x[-1] + margin))
    tt, inten, line_wavelength = reference_lines(np.asarray(pattern.x), np.asarray(pattern.y), wavelength, kalpha2)
    theta = np.radians(tt / 2)
    if "crystallite_size_nm" in profile:
        width, eta = np.degrees(0.9 * line_wavelength / (profile["crystallite_size_nm"] * 10 * np.cos(theta))), 1.0
    else:
        width, eta = 2 * np.sqrt(profile["u"] * np.tan(theta) ** 2 + profile["w"]), profile["eta"]
    return reference_profiles(grid_x, tt, inten, width, width, eta)


def reference_pattern_stage(pattern, impurity, config: AugmentationConfig, grid_x, rng):
    """The pattern stage in numpy/scipy: impurity mix, GP background (eigh + CubicSpline), noise, scaling."""
    imp = draw_imperfections(config, rng)
    y = pattern / pattern.max()
    a = imp.impurity_fraction
    y = (1 - a) * y + a * impurity / impurity.max()
    y = y / y.max()
    spacing = imp.background_length_scale / 5
    n_nodes = int(np.ceil((grid_x[-1] - grid_x[0]) / spacing)) + 2
    lag = np.arange(n_nodes)[:, None] - np.arange(n_nodes)[None, :]
    values, vectors = np.linalg.eigh(np.exp(-(lag**2) / 50.0))
    nodes = grid_x[0] + spacing * np.arange(n_nodes)
    b = CubicSpline(nodes, (vectors * np.sqrt(np.clip(values, 0, None))) @ rng.standard_normal(n_nodes))(grid_x)
    b -= b.min()
    y = y + b / b.sum() * imp.background_scale
    y = y + rng.normal(0.0, imp.additive_sd, y.shape)
    y = y * rng.normal(1.0, imp.multiplicative_sd, y.shape)
    y -= y.min()
    return (y / y.max()).astype(np.float32)


def reference_effects_pattern(structure, grid_x, profile, effects, wavelength):
    """pymatgen on the strained cell with DW factors, March–Dollase per hkl family, shifted split profiles."""
    strained = structure.copy()
    a, b, c, alpha, beta, gamma = lattice_parameters(structure.lattice.matrix)
    e = effects.lattice_strain
    strained.lattice = Lattice.from_parameters(
        a * (1 + e[0]), b * (1 + e[1]), c * (1 + e[2]), np.degrees(alpha), np.degrees(beta), np.degrees(gamma)
    )
    dw = {el.symbol: effects.debye_waller_b for el in structure.composition.elements}
    pattern = XRDCalculator(wavelength, debye_waller_factors=dw).get_pattern(strained, two_theta_range=(0, 95))
    tt, inten = np.asarray(pattern.x), np.asarray(pattern.y)
    recip = strained.lattice.reciprocal_lattice_crystallographic.matrix
    normal = np.asarray(effects.preferred_hkl) @ recip
    normal /= np.linalg.norm(normal)
    r = effects.march_dollase_r
    for i, families in enumerate(pattern.hkls):
        g = np.asarray(families[0]["hkl"][-3:], dtype=float) @ recip
        cos2 = (g @ normal) ** 2 / (g @ g)
        inten[i] *= (r * r * cos2 + (1 - cos2) / r) ** -1.5
    tt, inten, line_wavelength = reference_lines(tt, inten, wavelength, True)
    theta = np.radians(tt / 2)
    width = np.sqrt(
        4 * (profile["u"] * np.tan(theta) ** 2 + profile["w"])
        + np.degrees(0.9 * line_wavelength / (effects.crystallite_size_nm * 10 * np.cos(theta))) ** 2
        + np.degrees(4 * effects.microstrain * np.tan(theta)) ** 2
    )
    k = np.clip(effects.asymmetry / np.tan(2 * theta), -0.5, 0.5)
    tt = tt + effects.zero_shift_deg - np.degrees(2 * effects.displacement_over_radius * np.cos(theta))
    return reference_profiles(grid_x, tt, inten, width * (1 + k), width * (1 - k), profile["eta"])


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


def row(label, n, ours, reference):
    """One line: patterns/s/core of ours and the reference (CPU; wall in parentheses) and the ratio."""
    (o_wall, o_cpu), (r_wall, r_cpu) = ours, reference
    print(
        f"{label:<44} n={n:4d}  ours {n / o_cpu:8.0f}/s (wall {n / o_wall:8.0f})  reference {n / r_cpu:7.1f}/s "
        f"(wall {n / r_wall:7.1f})  ratio {r_cpu / o_cpu:6.1f}x",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--structures", type=int, default=150, help="structures for ours (and the Gaussian reference)")
    parser.add_argument("--reference-structures", type=int, default=40, help="structures for the slower references")
    parser.add_argument("--repeats", type=int, default=5, help="calls of ours per structure and round")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--png", type=Path, default=Path("results/bench_simulation.png"))
    args = parser.parse_args()

    structures = load_structures(args.structures, args.seed)
    crystals = [Crystal.from_structure(s) for s in structures]
    few = slice(0, min(args.reference_structures, len(structures)))
    grid = GridConfig()
    grid_x = grid.two_theta()
    print(f"load average at start: {os.getloadavg()[0]:.2f} (cores: {os.cpu_count()}); {len(structures)} structures")

    # Pure patterns: one fixed profile per row, the same on both sides.
    rows = (
        ("Gaussian/Scherrer (pure preset)", SimulationConfig(), {"crystallite_size_nm": 50.0}, slice(None)),
        ("pseudo-Voigt/Caglioti", SimulationConfig(profile="pseudo_voigt"), {"u": 0.005, "v": 0.0, "w": 0.005, "eta": 0.5}, few),
        ("Gaussian + Kα2", SimulationConfig(kalpha2=True), {"crystallite_size_nm": 50.0}, few),
        (
            "pseudo-Voigt + Kα2",
            SimulationConfig(profile="pseudo_voigt", kalpha2=True),
            {"u": 0.005, "v": 0.0, "w": 0.005, "eta": 0.5},
            few,
        ),
    )
    per_structure = None
    for label, sim_config, profile, subset in rows:
        simulator = PatternSimulator(sim_config, grid)
        calculator = XRDCalculator(simulator.wavelength)
        margin = 2.0 if sim_config.profile == "gaussian" else 5.0

        def ours(crystal, simulator=simulator, profile=profile, margin=margin):
            tt, inten = simulator.peaks(crystal, margin)
            y = simulator.render(tt, inten, profile)
            return (y / y.max()).astype(np.float32)

        def theirs(
            structure, calculator=calculator, profile=profile, kalpha2=sim_config.kalpha2, wavelength=simulator.wavelength
        ):
            return reference_pattern(calculator, structure, grid_x, profile, wavelength, kalpha2)

        ours(crystals[0])  # load the compiled code first
        all_ours = [timed(lambda c=c: ours(c), args.repeats) for c in crystals]
        some_theirs = [timed(lambda s=s: theirs(s), 1) for s in structures[subset]]
        n_ref = len(some_theirs)
        worst = max(float(np.abs(ours(c) - theirs(s)).max()) for c, s in zip(crystals[subset][:10], structures[subset][:10]))
        ours_total = np.sum(all_ours, axis=0)
        theirs_total = np.sum(some_theirs, axis=0) * len(crystals) / n_ref
        row(label, len(crystals), ours_total, theirs_total)
        print(f"{'':<44} largest |ours - reference| (max 1) on 10 patterns: {worst:.1e}; reference timed on {n_ref}")
        if per_structure is None:
            per_structure = (np.array([len(s) for s in structures]), np.array(all_ours)[:, 1], np.array(some_theirs)[:, 1])

    # Imperfections, pattern stage on given patterns.
    rng = np.random.default_rng(args.seed)
    base = PatternSimulator(SimulationConfig(), grid)
    pure, other = base.simulate(crystals[0], rng), base.simulate(crystals[1], rng)
    stage = AugmentationConfig(background=True, additive_noise=True, multiplicative_noise=True, impurity=True)
    ours = timed(lambda: augment(pure, stage, rng, grid, impurity=other), 200)
    theirs = timed(lambda: reference_pattern_stage(pure, other, stage, grid_x, rng), 20)
    row("imperfections, pattern stage", 1, ours, theirs)

    # Imperfections, sample and instrument stage: the cost added to the same pseudo-Voigt + Kα2 simulation.
    measured = load_config(None, {"preset": "measured"})
    simulator = PatternSimulator(measured.simulation, grid)
    calculator = XRDCalculator(simulator.wavelength)
    profile = {"u": 0.005, "v": 0.0, "w": 0.005, "eta": 0.5}
    effects = [draw_sample_effects(measured.augmentation, np.random.default_rng([args.seed, i])) for i in range(len(crystals))]

    def ours_effects(i):
        tt, inten = simulator.peaks(crystals[i], 5.0, effects[i])
        return simulator.render(tt, inten, profile, effects[i])

    def ours_plain(i):
        tt, inten = simulator.peaks(crystals[i], 5.0)
        return simulator.render(tt, inten, profile)

    ours_effects(0)
    with_effects = np.sum([timed(lambda i=i: ours_effects(i), args.repeats) for i in range(len(crystals))], axis=0)
    without = np.sum([timed(lambda i=i: ours_plain(i), args.repeats) for i in range(len(crystals))], axis=0)
    n_ref = few.stop
    ref_with = (
        np.sum(
            [
                timed(lambda i=i: reference_effects_pattern(structures[i], grid_x, profile, effects[i], simulator.wavelength), 1)
                for i in range(n_ref)
            ],
            axis=0,
        )
        * len(crystals)
        / n_ref
    )
    ref_without = (
        np.sum(
            [
                timed(lambda i=i: reference_pattern(calculator, structures[i], grid_x, profile, simulator.wavelength, True), 1)
                for i in range(n_ref)
            ],
            axis=0,
        )
        * len(crystals)
        / n_ref
    )
    added, ref_added = np.maximum(with_effects - without, 1e-12), np.maximum(ref_with - ref_without, 1e-12)
    row("imperfections, sample/instrument (added)", len(crystals), added, ref_added)
    every = 1 / (added[1] / len(crystals) + ours[1])  # CPU seconds per pattern of both stages
    print(f"{'':<44} every effect together (both stages, per pattern): {every:8.0f}/s/core")

    # The measured preset end to end (profile and effects drawn, impurity = the previous pattern).
    rng = np.random.default_rng(args.seed)
    state = {"previous": simulator.simulate(crystals[-1], rng)}

    def one_measured(crystal):
        drawn = draw_sample_effects(measured.augmentation, rng)
        y = simulator.simulate(crystal, rng, effects=drawn)
        out = augment(y, measured.augmentation, rng, grid, impurity=state["previous"])
        state["previous"] = y
        return out

    ours_measured = np.sum([timed(lambda c=c: one_measured(c), 2) for c in crystals], axis=0)
    ref_measured = ref_with + np.array(theirs) * len(crystals)
    row("measured preset end to end", len(crystals), ours_measured, ref_measured)

    atoms, ours_cpu, theirs_cpu = per_structure
    args.png.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    ax.scatter(atoms[: len(theirs_cpu)], theirs_cpu * 1e3, s=10, label="pymatgen XRDCalculator + numpy Gaussians")
    ax.scatter(atoms, ours_cpu * 1e3, s=10, label="xrdgen (Numba)")
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
