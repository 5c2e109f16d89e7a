"""The compiled simulator against pymatgen's XRDCalculator on >= 200 structures, plus analytic checks.

Agreement measures, per structure, over the peak lists (2θ, intensity scaled to max 1):
- position: every peak of either list has a peak of the other within 0.001° 2θ;
- intensity: peaks are grouped into clusters (chains closer than 0.001°, so that a reflection pair
  pymatgen bins apart but we merge, or vice versa, compares as one: pymatgen's fixed 1e-5° bins can
  split equivalent reflections of a slightly off-symmetric CIF cell, even the strongest peak), each
  list is scaled so that its strongest cluster is 1, and
  R = Σ_clusters |I_ours - I_pymatgen| / Σ I_pymatgen must be <= 1 %.
Peaks weaker than 2e-5 of the strongest are exempt from the position check: both codes drop peaks
below 1e-5, and a peak at that edge may fall on either side of it.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pandas as pd
import pytest
from pymatgen.analysis.diffraction.xrd import XRDCalculator
from pymatgen.core import Element
from scipy.optimize import brentq

from tests._profiles import fwhm
from xrdgen.config import GridConfig, SimulationConfig
from xrdgen.crystal import Crystal
from xrdgen.simulation.peaks import peaks
from xrdgen.simulation.profiles import GAUSSIAN, PSEUDO_VOIGT, line_profiles
from xrdgen.simulation.render import FWHM_PER_SIGMA, render_profiles
from xrdgen.simulation.simulator import PatternSimulator

CU_KA1 = 1.54056
POSITION_TOL = 1e-3
R_MAX = 0.01
EDGE = 2e-5


def _parse(cif: str):
    from pymatgen.io.cif import CifParser

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return CifParser.from_str(cif).parse_structures(primitive=False)[0]


@pytest.fixture(scope="module")
def mp40_structures(mp40_dir):
    """140 ordered MP structures (<= 60 sites, seeded choice) from the three CSVs."""
    frames = [pd.read_csv(path) for path in sorted(mp40_dir.glob("*.csv"))]
    cifs = pd.concat(frames, ignore_index=True)["cif"].tolist()
    order = np.random.default_rng(3).permutation(len(cifs))
    chosen = []
    for index in order:
        structure = _parse(cifs[index])
        if structure.is_ordered and len(structure) <= 60:
            chosen.append(structure)
        if len(chosen) == 140:
            break
    return chosen


@pytest.fixture(scope="module")
def pyxtal_structures():
    """40 random symmetric crystals from pyxtal over random space groups (seeded)."""
    from pyxtal import pyxtal
    from pyxtal.symmetry import Group

    rng = np.random.default_rng(11)
    elements = ["Na", "Cl", "O", "Fe", "Si", "Ba", "Ti", "Mg", "S", "Zn", "Cu", "N", "La", "Pb", "H"]
    out = []
    while len(out) < 40:
        group = Group(int(rng.integers(1, 231)))
        multiplicities = [w.multiplicity for w in group.Wyckoff_positions]
        counts = [int(rng.choice(multiplicities)) for _ in range(int(rng.integers(1, 4)))]
        if sum(counts) > 40:
            continue
        crystal = pyxtal()
        species = [str(e) for e in rng.choice(elements, len(counts), replace=False)]
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                crystal.from_random(3, group.number, species, counts, random_state=int(rng.integers(2**31)))
        except Exception:  # pyxtal gives up on some compositions; draw another
            continue
        if crystal.valid:
            out.append(crystal.to_pymatgen())
    return out


@pytest.fixture(scope="module")
def disordered_structures(mp40_structures):
    """25 partially occupied structures: one element of an MP structure becomes a random mix."""
    rng = np.random.default_rng(5)
    partners = ["Fe", "Co", "Ni", "Mn", "Al", "Ga", "Sr", "Ca", "Se", "Br"]
    out = []
    for structure in mp40_structures[:25]:
        element = structure.composition.elements[int(rng.integers(len(structure.composition.elements)))]
        partner = Element(str(rng.choice([p for p in partners if p != element.symbol])))
        share = float(rng.uniform(0.2, 0.8))
        disordered = structure.copy()
        disordered.replace_species({element: {element: 1.0 - share, partner: share * float(rng.uniform(0.5, 1.0))}})
        out.append(disordered)
    return out


def _reference(structure, wavelength=CU_KA1, two_theta=(5.0, 90.0), dw=None):
    pattern = XRDCalculator(wavelength, debye_waller_factors=dw).get_pattern(structure, two_theta_range=two_theta)
    return np.asarray(pattern.x), np.asarray(pattern.y) / 100.0


def _agreement(tt, inten, ref_tt, ref_inten):
    """(largest distance of a peak to the other list's nearest peak, R over clusters)."""
    worst = 0.0
    for a, ia, b in ((tt, inten, ref_tt), (ref_tt, ref_inten, tt)):
        strong = a[ia > EDGE]
        if len(strong):
            nearest = np.abs(strong[:, None] - b[None, :]).min(axis=1) if len(b) else np.full(len(strong), np.inf)
            worst = max(worst, float(nearest.max()))
    positions = np.concatenate([tt, ref_tt])
    ours = np.concatenate([inten, np.zeros_like(ref_inten)])
    theirs = np.concatenate([np.zeros_like(inten), ref_inten])
    order = np.argsort(positions, kind="stable")
    cluster = np.concatenate([[0], np.cumsum(np.diff(positions[order]) >= POSITION_TOL)])
    ours = np.bincount(cluster, weights=ours[order])
    theirs = np.bincount(cluster, weights=theirs[order])
    ours, theirs = ours / ours.max(), theirs / theirs.max()
    return worst, float(np.abs(ours - theirs).sum() / theirs.sum())


def _check_against_pymatgen(structures, **kwargs):
    wavelength = kwargs.get("wavelength", CU_KA1)
    two_theta = kwargs.get("two_theta", (5.0, 90.0))
    dw = kwargs.get("dw")
    failures = []
    for index, structure in enumerate(structures):
        dw_map = {el.symbol: dw for el in structure.composition.elements} if dw else None
        ref_tt, ref_inten = _reference(structure, wavelength, two_theta, dw_map)
        tt, inten = peaks(Crystal.from_structure(structure), wavelength, *two_theta, debye_waller_b=dw or 0.0)
        worst, r = _agreement(tt, inten, ref_tt, ref_inten)
        if worst > POSITION_TOL or r > R_MAX:
            failures.append((index, structure.composition.reduced_formula, worst, r))
    assert not failures, f"{len(failures)} of {len(structures)} disagree with pymatgen: {failures[:5]}"
    return len(structures)


def test_peaks_match_pymatgen_on_200_structures(mp40_structures, pyxtal_structures, disordered_structures):
    assert any(not s.is_ordered for s in disordered_structures)
    n = _check_against_pymatgen(mp40_structures)
    n += _check_against_pymatgen(pyxtal_structures)
    n += _check_against_pymatgen(disordered_structures)
    assert n >= 200


def test_other_wavelength_range_and_debye_waller_match_pymatgen(mp40_structures, pyxtal_structures):
    _check_against_pymatgen(mp40_structures[:15], wavelength=0.70930, two_theta=(2.0, 60.0))
    _check_against_pymatgen(pyxtal_structures[:10], wavelength=2.28970, two_theta=(10.0, 150.0))
    _check_against_pymatgen(mp40_structures[15:30], dw=1.3)


def test_debye_waller_weakens_high_angles(mp40_structures):
    structure = mp40_structures[0]
    tt, plain = peaks(structure, CU_KA1, 5, 90)
    tt_dw, damped = peaks(structure, CU_KA1, 5, 90, debye_waller_b=2.0)
    np.testing.assert_allclose(tt, tt_dw)
    s2 = (np.sin(np.radians(tt / 2)) / CU_KA1) ** 2
    ratio = (damped / plain) / (damped[0] / plain[0])  # exp(-2B s²) up to the max-1 scaling
    np.testing.assert_allclose(ratio, np.exp(-2 * 2.0 * (s2 - s2[0])), rtol=1e-9)


def test_structure_and_crystal_give_same_peaks(pyxtal_structures):
    structure = pyxtal_structures[3]
    a = peaks(structure, CU_KA1, 5, 90)
    b = peaks(Crystal.from_structure(structure), CU_KA1, 5, 90)
    np.testing.assert_array_equal(a[0], b[0])
    np.testing.assert_array_equal(a[1], b[1])


def test_bad_crystals_are_refused_with_a_reason():
    lattice = np.eye(3) * 4.0
    with pytest.raises(ValueError, match="Es"):
        peaks(Crystal(lattice, [[0, 0, 0]], [99], [1.0]), CU_KA1, 5, 90)
    with pytest.raises(ValueError, match="no atoms"):
        peaks(Crystal(lattice, np.zeros((0, 3)), [], []), CU_KA1, 5, 90)
    tiny = Crystal(np.eye(3) * 0.5, [[0, 0, 0]], [11], [1.0])
    assert len(peaks(tiny, CU_KA1, 5, 90)[0]) == 0  # 1/d = 2 Å⁻¹ is beyond the limiting sphere
    with pytest.raises(ValueError, match="no reflection"):
        PatternSimulator(SimulationConfig(), GridConfig()).simulate(tiny, np.random.default_rng(0))


def _plate_fwhm_deg(two_theta: float, d: float, n_planes: int) -> float:
    """FWHM in 2θ of the intensity diffracted by a stack of n_planes planes spaced d (the Laue
    interference function sin²(N φ) / sin²(φ), φ = 2π d sin θ / λ, of a small crystal; Warren, X-Ray
    Diffraction, 1969), evaluated on a fine grid: the exact width of a crystallite of thickness N d, not Scherrer's
    approximation of it."""
    x = np.linspace(two_theta - 3, two_theta + 3, 600_001)
    delta = 2 * math.pi * d * np.sin(np.radians(x / 2)) / CU_KA1 - math.pi  # 0 at the Bragg angle
    with np.errstate(invalid="ignore", divide="ignore"):
        y = np.where(np.abs(delta) < 1e-9, float(n_planes) ** 2, np.sin(n_planes * delta) ** 2 / np.sin(delta) ** 2)
    return fwhm(x, y)


# The plate's Scherrer constant for the FWHM: sinc²(u) = 1/2 at u = 1.3916, K = 2u/π = 0.8859
# (Scherrer's constant in one dimension; other shapes: Langford & Wilson, J. Appl. Cryst. 11, 102
# (1978)). The method, like the original, uses K = 0.9.
K_PLATE = 2 * brentq(lambda u: (math.sin(u) / u) ** 2 - 0.5, 1.0, 2.0) / math.pi


@pytest.mark.parametrize("two_theta, size_nm", [(20.0, 20.0), (45.0, 60.0), (80.0, 100.0)])
def test_scherrer_width_is_the_width_of_a_finite_crystal(two_theta, size_nm):
    """Reference: the exact diffraction width of a plate of N planes (d of a reflection at 2θ), not the
    Scherrer formula typed again. The rendered Gaussian is wider by exactly 0.9 / K_plate (1.6 %)."""
    d = CU_KA1 / (2 * math.sin(math.radians(two_theta / 2)))
    n_planes = round(size_nm * 10 / d)
    thickness_nm = n_planes * d / 10
    grid = GridConfig(two_theta_min=two_theta - 3, two_theta_max=two_theta + 3, step=0.0005)
    sim = PatternSimulator(SimulationConfig(), grid)
    y = sim.render(np.array([two_theta]), np.array([1.0]), {"crystallite_size_nm": thickness_nm})
    plate = _plate_fwhm_deg(two_theta, d, n_planes)
    assert fwhm(sim.two_theta, y) / plate == pytest.approx(0.9 / K_PLATE, rel=1e-3)


def test_scherrer_width_of_the_textbook_example():
    """Cullity, Elements of X-Ray Diffraction (2nd ed., 1978), sec. 3-7, below eq. 3-13: λ = 1.5 Å,
    θ = 49°, a crystal 500 Å thick gives a breadth B of about 4 × 10⁻³ radian (0.2°) in 2θ."""
    _, _, width_below, width_above = line_profiles(
        np.array([98.0]), np.array([1.0]), 1.5, 0.0, 0.5, GAUSSIAN, 50.0, 0.9, *[0.0] * 7
    )
    assert width_below[0] == width_above[0]
    width_deg = float(width_below[0])
    assert round(math.radians(width_deg), 3) == 0.004
    assert round(width_deg, 1) == 0.2


def test_scherrer_width_on_a_real_crystal():
    """Isolated (111) peak of fcc Cu (a = 3.615 Å), 100 planes of d111: at Bragg's position, and as
    wide as those planes diffract (times 0.9 / K_plate)."""
    from pymatgen.core import Lattice, Structure

    copper = Structure.from_spacegroup("Fm-3m", Lattice.cubic(3.615), ["Cu"], [[0, 0, 0]])
    d111 = 3.615 / math.sqrt(3)
    grid = GridConfig(two_theta_min=30, two_theta_max=60, step=0.001)
    y = PatternSimulator(SimulationConfig(), grid).simulate(copper, crystallite_size_nm=100 * d111 / 10)
    x = grid.two_theta()
    window = (x > 40) & (x < 46)
    expected_tt = 2 * math.degrees(math.asin(CU_KA1 / (2 * d111)))
    assert x[window][np.argmax(y[window])] == pytest.approx(expected_tt, abs=0.001)
    plate = _plate_fwhm_deg(expected_tt, d111, 100)
    assert fwhm(x[window], y[window]) / plate == pytest.approx(0.9 / K_PLATE, rel=3e-3)


@pytest.mark.parametrize("fwhm, split", [(0.003, 0.0), (0.03, 0.0), (0.1, 0.3), (0.6, 0.0), (2.0, -0.2)])
def test_gaussian_profile_has_unit_area(fwhm, split):
    """Unit area also below one grid step (bin averages) and when drawn on a coarse level; point values
    of a split profile miss ~1e-4 of it (the jump of its second derivative at the centre)."""
    step = 0.01
    out = np.zeros(9001)
    render_profiles(
        out, 0.0, step, np.array([45.003]), np.array([1.0]), np.array([fwhm * (1 + split)]), np.array([fwhm * (1 - split)]), 1.0
    )
    assert out.sum() * step == pytest.approx(1.0, abs=1e-4 if split else 1e-6)


@pytest.mark.parametrize("fwhm, eta", [(0.001, 0.3), (0.05, 0.0), (0.12, 0.5), (0.12, 1.0), (3.0, 0.2)])
def test_pseudo_voigt_keeps_its_whole_lorentzian(fwhm, eta):
    """The area on the grid is η + (1-η) × the Lorentzian's mass between the grid's ends, up to the
    tail beyond where its height falls below 1e-5 of the pattern's (0.07 % of this narrow peak) and the
    cubic interpolation of the far tails (< 0.05 %); the former ±50 Γ window lost 1.3 % of each."""
    step = 0.01
    out = np.zeros(18001)
    centre, gamma = 90.0037, fwhm / 2
    render_profiles(out, 0.0, step, np.array([centre]), np.array([1.0]), np.array([fwhm]), np.array([fwhm]), eta)
    lo, hi = -step / 2 - centre, 180.0 + step / 2 - centre
    expected = eta + (1 - eta) * (math.atan(hi / gamma) - math.atan(lo / gamma)) / math.pi
    assert out.sum() * step == pytest.approx(expected, abs=1e-3 if fwhm < 0.01 else 5e-4)


def _direct_profiles(x, centres, areas, fwhm_lo, fwhm_hi, eta):
    """The split pseudo-Voigt of every line at every grid point, straight from its formula."""
    out = np.zeros_like(x)
    for c, a, lo, hi in zip(centres, areas, fwhm_lo, fwhm_hi):
        d = x - c
        width = np.where(d < 0, lo, hi)
        gamma, sigma = width / 2, width / FWHM_PER_SIGMA
        gauss = 2 / (math.sqrt(2 * math.pi) * (lo + hi) / FWHM_PER_SIGMA) * np.exp(-d * d / (2 * sigma * sigma))
        lorentz = 2 / (math.pi * (lo + hi) / 2) * gamma * gamma / (d * d + gamma * gamma)
        out += a * (eta * gauss + (1 - eta) * lorentz)
    return out


def test_rendering_equals_the_direct_sum_on_real_patterns(mp40_structures):
    """The levelled rendering against every profile evaluated at every point: < 2e-4 of the maximum
    (the former ±50 Γ truncation of the Lorentzian tails was off by 4e-3)."""
    rng = np.random.default_rng(8)
    x = GridConfig().two_theta()
    worst = 0.0
    for index, structure in enumerate(mp40_structures[:10]):
        tt, inten = peaks(structure, CU_KA1, 0.0, 95.0)
        u, w, eta = rng.uniform(0, 0.01), rng.uniform(1e-4, 0.01), rng.uniform()
        lines = line_profiles(
            tt,
            inten,
            CU_KA1,
            1.54439 if index % 2 else 0.0,
            0.5,
            PSEUDO_VOIGT,
            0.0,
            0.9,
            u,
            0.0,
            w,
            0.0,
            0.05 if index % 3 == 0 else 0.0,
            0.0,
            0.0,
        )
        out = np.zeros_like(x)
        render_profiles(out, x[0], 0.01, *lines, eta)
        reference = _direct_profiles(x, *lines, eta)
        worst = max(worst, float(np.abs(out - reference).max() / reference.max()))
    assert worst < 2e-4


def test_pseudo_voigt_is_pyxtals_caglioti_profile_with_the_width_in_theta():
    """Reference: pyxtal's pseudo-Voigt (`pyxtal.XRD.Profile`, Izumi & Ikeda's split form, symmetric at
    A = 1), which takes the Caglioti FWHM in 2θ, √(U tan²θ + V tanθ + W). The original, and we, take
    that root as a width Γ in θ, so the FWHM in 2θ is 2Γ: our peak for (U, V, W) is pyxtal's for
    (4U, 4V, 4W), in width and in shape. pyxtal's η is the Lorentzian share, ours the Gaussian's."""
    from pyxtal.XRD import Profile

    u, v, w, eta = 0.008, -0.002, 0.004, 0.4
    grid = GridConfig(two_theta_min=55, two_theta_max=65, step=0.0005)
    sim = PatternSimulator(SimulationConfig(profile="pseudo_voigt"), grid)
    ours = sim.render(np.array([60.0]), np.array([1.0]), {"u": u, "v": v, "w": w, "eta": eta})
    widths = {"U": 4 * u, "V": 4 * v, "W": 4 * w, "A": 1.0, "eta_h": 1 - eta, "eta_l": 1 - eta}
    px, py = Profile("mod_pseudo-voigt", res=0.0005, user_kwargs=widths).get_profile([60.0], [1.0], 55, 65)
    assert fwhm(sim.two_theta, ours) == pytest.approx(fwhm(px, py), rel=1e-3)
    assert np.abs(ours / ours.max() - np.interp(sim.two_theta, px, py)).max() < 1e-3


def test_kalpha2_position_and_ratio():
    lam1, lam2 = 1.54056, 1.54439
    tt, inten, _, _ = line_profiles(np.array([80.0]), np.array([1.0]), lam1, lam2, 0.5, GAUSSIAN, 400.0, 0.9, *[0.0] * 7)
    assert inten.tolist() == [1.0, 0.5]
    d = lam1 / (2 * math.sin(math.radians(40)))
    assert tt[1] == pytest.approx(2 * math.degrees(math.asin(lam2 / (2 * d))), abs=1e-10)
    # Differentiating Bragg's law: Δ(2θ) ≈ 2 tan θ · Δλ/λ (radians), 0.239° at 80°.
    assert tt[1] - tt[0] == pytest.approx(math.degrees(2 * math.tan(math.radians(40)) * (lam2 - lam1) / lam1), rel=2e-3)
    grid = GridConfig(two_theta_min=78, two_theta_max=82, step=0.001)
    sim = PatternSimulator(SimulationConfig(kalpha2=True), grid)
    y = sim.render(np.array([80.0]), np.array([1.0]), {"crystallite_size_nm": 400.0})
    x = sim.two_theta
    mid = (tt[0] + tt[1]) / 2
    first, second = y[x < mid].sum(), y[x >= mid].sum()
    assert second / first == pytest.approx(0.5, rel=0.01)
    assert x[x >= mid][np.argmax(y[x >= mid])] == pytest.approx(tt[1], abs=0.001)
    assert x[np.argmax(y)] == pytest.approx(80.0, abs=0.001)


def test_patterns_and_batches(mp40_structures):
    crystals = [Crystal.from_structure(s, spacegroup=7) for s in mp40_structures[:12]]
    sim = PatternSimulator(SimulationConfig(), GridConfig())
    rng = np.random.default_rng(1)
    batch, labels = sim.simulate_batch(crystals, rng, return_labels=True)
    assert batch.dtype == np.float32 and batch.shape == (12, 8501)
    np.testing.assert_allclose(batch.max(axis=1), 1.0)
    assert batch.min() >= 0.0
    assert labels.dtype == np.int32 and set(labels) == {7}
    again = sim.simulate_batch(crystals, np.random.default_rng(1))
    np.testing.assert_array_equal(batch, again)  # reproducible from the seed
    # The pattern's maxima sit on the simulated peaks.
    tt, inten = sim.peaks(crystals[0])
    strongest = tt[np.argmax(inten)]
    assert abs(sim.two_theta[np.argmax(batch[0])] - strongest) < 0.2
    for profile in ("pseudo_voigt",):
        pv = PatternSimulator(SimulationConfig(profile=profile, kalpha2=True), GridConfig()).simulate_batch(crystals[:3], rng)
        assert pv.shape == (3, 8501) and np.allclose(pv.max(axis=1), 1.0)
    with pytest.raises(ValueError, match="rng"):
        sim.simulate(crystals[0])  # the crystallite size must be drawn from an explicit generator
