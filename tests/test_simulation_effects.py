"""Sample and instrument effects: each drawn from its stated distribution, each doing to a
known pattern exactly what its formula says, and the `pure`/`measured` presets."""

from __future__ import annotations

import math

import numpy as np
import pytest
import spglib
from pymatgen.core import Lattice, Structure
from scipy import stats

from tests._profiles import half_maximum
from xrdgen.config import AugmentationConfig, Config, GridConfig, SimulationConfig, load_config
from xrdgen.crystal import Crystal
from xrdgen.geometry import lattice_parameters
from xrdgen.simulation.imperfections import (
    LOW_INDEX_PLANES,
    NO_EFFECTS,
    SampleEffects,
    draw_sample_effects,
    strained_lattice,
)
from xrdgen.simulation.peaks import peaks
from xrdgen.simulation.simulator import PatternSimulator

CU_KA1 = 1.54056
P_MIN = 1e-3
ALL_ON = AugmentationConfig(
    preferred_orientation=True,
    zero_shift=True,
    sample_displacement=True,
    lattice_strain=True,
    microstrain=True,
    axial_asymmetry=True,
    debye_waller=True,
    small_crystallites=True,
)


def _copper() -> Structure:
    return Structure.from_spacegroup("Fm-3m", Lattice.cubic(3.615), ["Cu"], [[0, 0, 0]])


def _rutile() -> Structure:
    """TiO2 rutile, P4_2/mnm, a = 4.594, c = 2.959 Å."""
    return Structure.from_spacegroup("P4_2/mnm", Lattice.tetragonal(4.594, 2.959), ["Ti", "O"], [[0, 0, 0], [0.3053, 0.3053, 0]])


def test_drawn_effects_follow_their_distributions():
    rng = np.random.default_rng(2026)
    draws = [draw_sample_effects(ALL_ON, rng) for _ in range(3000)]
    field = lambda name: np.array([getattr(d, name) for d in draws])  # noqa: E731
    c = ALL_ON
    laws = {
        "march_dollase_r": stats.uniform(c.march_dollase_r[0], c.march_dollase_r[1] - c.march_dollase_r[0]),
        "zero_shift_deg": stats.uniform(-c.zero_shift_max_deg, 2 * c.zero_shift_max_deg),
        "displacement_over_radius": stats.uniform(
            -c.sample_displacement_max_mm / c.goniometer_radius_mm, 2 * c.sample_displacement_max_mm / c.goniometer_radius_mm
        ),
        "microstrain": stats.uniform(0.0, c.microstrain_max),
        "asymmetry": stats.uniform(0.0, c.axial_asymmetry_max),
        "debye_waller_b": stats.uniform(c.debye_waller_b[0], c.debye_waller_b[1] - c.debye_waller_b[0]),
        "crystallite_size_nm": stats.uniform(
            c.small_crystallite_size_nm[0], c.small_crystallite_size_nm[1] - c.small_crystallite_size_nm[0]
        ),
    }
    for name, law in laws.items():
        assert stats.kstest(field(name), law.cdf).pvalue > P_MIN, name
    strains = np.array([d.lattice_strain for d in draws]).ravel()
    assert stats.kstest(strains, stats.uniform(-c.lattice_strain_max, 2 * c.lattice_strain_max).cdf).pvalue > P_MIN
    # The plane normal: uniform over the 13 low-index planes (one of each ± pair).
    assert len(LOW_INDEX_PLANES) == 13 and len({tuple(-np.array(p)) for p in LOW_INDEX_PLANES} & set(LOW_INDEX_PLANES)) == 0
    counts = np.bincount([LOW_INDEX_PLANES.index(d.preferred_hkl) for d in draws], minlength=13)
    assert stats.chisquare(counts).pvalue > P_MIN


def test_switched_off_effects_draw_nothing():
    rng = np.random.default_rng(1)
    state = rng.bit_generator.state
    assert draw_sample_effects(AugmentationConfig(), rng) == NO_EFFECTS
    assert rng.bit_generator.state == state


def test_zero_shift_and_displacement_move_a_peak_by_the_formula():
    """Cu (111): Δ2θ = z - 2 (s/R) cos θ (radians), measured on the simulated pattern."""
    grid = GridConfig(two_theta_min=40, two_theta_max=46, step=0.0005)
    sim = PatternSimulator(SimulationConfig(), grid)
    plain = sim.simulate(_copper(), crystallite_size_nm=80.0)
    z, s_over_r = 0.07, -0.15 / 240.0
    shifted = sim.simulate(
        _copper(), crystallite_size_nm=80.0, effects=SampleEffects(zero_shift_deg=z, displacement_over_radius=s_over_r)
    )
    x = grid.two_theta()
    tt = x[np.argmax(plain)]
    expected = z - math.degrees(2 * s_over_r * math.cos(math.radians(tt / 2)))
    assert x[np.argmax(shifted)] - tt == pytest.approx(expected, abs=0.001)
    assert abs(expected) > 0.03  # a shift the test can see


def test_debye_waller_damps_by_the_exact_factor():
    sim = PatternSimulator(SimulationConfig(), GridConfig())
    tt, plain = sim.peaks(_rutile())
    tt_dw, damped = sim.peaks(_rutile(), effects=SampleEffects(debye_waller_b=1.2))
    np.testing.assert_allclose(tt, tt_dw)
    s2 = (np.sin(np.radians(tt / 2)) / CU_KA1) ** 2
    ratio = (damped / plain) / (damped[0] / plain[0])  # both lists are scaled to max 1
    np.testing.assert_allclose(ratio, np.exp(-2 * 1.2 * (s2 - s2[0])), rtol=1e-9)
    assert ratio[-1] < 0.7  # high angles lose most


def test_march_dollase_weights_each_reflection():
    """Rutile, texture along (001): P(α) = (r² cos²α + sin²α / r)^(-3/2) per reflection; r = 1 is the identity."""
    structure = _rutile()
    tt, plain = peaks(structure, CU_KA1, 5, 90)
    same = peaks(structure, CU_KA1, 5, 90, preferred_hkl=(0, 0, 1), march_dollase_r=1.0)
    np.testing.assert_array_equal(same[1], plain)
    r = 0.8
    tt_po, textured = peaks(structure, CU_KA1, 5, 90, preferred_hkl=(0, 0, 1), march_dollase_r=r)
    np.testing.assert_allclose(tt_po, tt)

    def angle_factor(*hkl):
        g = np.array(hkl) / np.array([4.594, 4.594, 2.959])
        cos2 = (g[2] / np.linalg.norm(g)) ** 2
        return (r * r * cos2 + (1 - cos2) / r) ** -1.5

    def at(hkl):
        d = 1 / np.linalg.norm(np.array(hkl) / np.array([4.594, 4.594, 2.959]))
        return int(np.argmin(np.abs(tt - 2 * np.degrees(np.arcsin(CU_KA1 / (2 * d))))))

    change = textured / plain
    for a, b in (((0, 0, 2), (1, 1, 0)), ((1, 0, 1), (1, 1, 0)), ((2, 1, 1), (2, 2, 0))):
        expected = angle_factor(*a) / angle_factor(*b)
        assert change[at(a)] / change[at(b)] == pytest.approx(expected, rel=1e-9), (a, b)
    # Cubic {200}: (200), (020), (002) merge into one peak; along (001) only a third of them is parallel.
    tt_cu, plain_cu = peaks(_copper(), CU_KA1, 5, 90)
    _, textured_cu = peaks(_copper(), CU_KA1, 5, 90, preferred_hkl=(0, 0, 1), march_dollase_r=r)
    ratio = (textured_cu / plain_cu) / (textured_cu[0] / plain_cu[0])  # relative to (111)
    cos2_111 = 1 / 3
    p111 = (r * r * cos2_111 + (1 - cos2_111) / r) ** -1.5
    assert ratio[1] == pytest.approx((r**-3 + 2 * r**1.5) / 3 / p111, rel=1e-9)


@pytest.mark.parametrize("structure_index", range(4))
def test_lattice_strain_keeps_the_space_group(structure_index):
    structures = [
        _copper(),
        _rutile(),
        Structure.from_spacegroup("P6_3/mmc", Lattice.hexagonal(3.21, 5.21), ["Mg"], [[1 / 3, 2 / 3, 0.25]]),
        Structure.from_spacegroup("C2/m", Lattice.monoclinic(5.6, 3.4, 7.1, 103.0), ["Al", "O"], [[0.1, 0, 0.2], [0.3, 0, 0.4]]),
    ]
    structure = structures[structure_index]
    cell = (structure.lattice.matrix, structure.frac_coords, [s.specie.Z for s in structure])
    before = spglib.get_symmetry_dataset(cell, symprec=1e-5).number
    rng = np.random.default_rng(structure_index)
    for _ in range(5):
        strain = tuple(rng.uniform(-0.04, 0.04, 6))
        lattice = strained_lattice(structure.lattice.matrix, strain)
        assert spglib.get_symmetry_dataset((lattice, cell[1], cell[2]), symprec=1e-5).number == before
        a, b, c, *_ = lattice_parameters(lattice)
        a0, _, _, *_ = lattice_parameters(structure.lattice.matrix)
        assert a == pytest.approx(a0 * (1 + strain[0]), rel=1e-12)  # a always takes its own factor
    # The strain reaches the peaks: a cubic cell scaled by 1 + e moves (111) to sin θ / (1 + e).
    sim = PatternSimulator(SimulationConfig(), GridConfig())
    tt0, _ = sim.peaks(_copper())
    tt1, _ = sim.peaks(_copper(), effects=SampleEffects(lattice_strain=(0.02, 0.5, 0.5, 0.5, 0.5, 0.5)))
    np.testing.assert_allclose(np.sin(np.radians(tt1 / 2)), np.sin(np.radians(tt0 / 2)) / 1.02, rtol=1e-12)


def test_microstrain_and_small_crystallites_add_in_quadrature():
    two_theta, size, strain = 70.0, 40.0, 0.003
    grid = GridConfig(two_theta_min=two_theta - 4, two_theta_max=two_theta + 4, step=0.0005)
    theta = math.radians(two_theta / 2)
    scherrer = math.degrees(0.9 * CU_KA1 / (size * 10 * math.cos(theta)))
    micro = math.degrees(4 * strain * math.tan(theta))
    gauss = PatternSimulator(SimulationConfig(), grid)
    y = gauss.render(np.array([two_theta]), np.array([1.0]), {"crystallite_size_nm": size}, SampleEffects(microstrain=strain))
    lo, _, hi = half_maximum(gauss.two_theta, y)
    assert hi - lo == pytest.approx(math.hypot(scherrer, micro), rel=2e-3)
    # Small crystallites with the Gaussian profile: their size replaces the simulation's draw.
    y = gauss.simulate(_copper(), np.random.default_rng(0), effects=SampleEffects(crystallite_size_nm=5.0))
    x = gauss.two_theta
    assert x[np.argmax(y)] == pytest.approx(two_theta, abs=30)  # a pattern is made
    # With the pseudo-Voigt, the Scherrer width joins the (doubled) Caglioti width in quadrature.
    pv = PatternSimulator(SimulationConfig(profile="pseudo_voigt"), grid)
    u, w = 0.004, 0.002
    y = pv.render(
        np.array([two_theta]), np.array([1.0]), {"u": u, "v": 0.0, "w": w, "eta": 1.0}, SampleEffects(crystallite_size_nm=size)
    )
    lo, _, hi = half_maximum(pv.two_theta, y)
    caglioti = 2 * math.sqrt(u * math.tan(theta) ** 2 + w)
    assert hi - lo == pytest.approx(math.hypot(caglioti, scherrer), rel=2e-3)


@pytest.mark.parametrize("two_theta", [20.0, 120.0])
def test_axial_asymmetry_splits_the_width(two_theta):
    """Γ(1 + k) below the centre, Γ(1 - k) above, k = A cot 2θ: low-angle tails below 90°, the reverse above."""
    grid = GridConfig(two_theta_min=two_theta - 3, two_theta_max=two_theta + 3, step=0.0005)
    sim = PatternSimulator(SimulationConfig(wavelength=1.0, anode=None), grid)
    size, a = 30.0, 0.05
    plain = sim.render(np.array([two_theta]), np.array([1.0]), {"crystallite_size_nm": size})
    y = sim.render(np.array([two_theta]), np.array([1.0]), {"crystallite_size_nm": size}, SampleEffects(asymmetry=a))
    lo0, _, hi0 = half_maximum(sim.two_theta, plain)
    lo, top, hi = half_maximum(sim.two_theta, y)
    k = a / math.tan(math.radians(two_theta))
    assert top == pytest.approx(two_theta, abs=0.001)  # the maximum stays at the peak
    assert (top - lo) / (hi - top) == pytest.approx((1 + k) / (1 - k), rel=5e-3)
    assert hi - lo == pytest.approx(hi0 - lo0, rel=2e-3)  # the mean width is kept
    assert y.sum() == pytest.approx(plain.sum(), rel=1e-4)  # and the area
    assert (top - lo > hi - top) == (two_theta < 90)


def test_presets_set_their_sections_unless_overridden():
    pure = Config()
    assert pure.preset == "pure" and pure.simulation.profile == "gaussian" and not pure.simulation.kalpha2
    assert pure.simulation.crystallite_size_nm == (20.0, 100.0)
    off = ("background", "additive_noise", "multiplicative_noise", "impurity", "preferred_orientation", "debye_waller")
    assert not any(getattr(pure.augmentation, name) for name in off)
    measured = load_config(None, {"preset": "measured", "augmentation.impurity": False, "simulation.eta": [0.2, 0.8]})
    assert measured.simulation.profile == "pseudo_voigt" and measured.simulation.kalpha2
    assert measured.simulation.eta == (0.2, 0.8)  # the user's value stays
    assert not measured.augmentation.impurity  # overridden
    assert all(getattr(measured.augmentation, name) for name in off if name != "impurity")
    again = Config(**measured.model_dump(mode="json"))  # the written run config reads back identically
    assert again == measured and "preset: measured" in measured.to_yaml()


def test_measured_preset_patterns(tmp_path):
    """Everything on: still a valid pattern (finite, max 1), reproducible from the seed, unlike the pure one."""
    config = load_config(None, {"preset": "measured"})
    sim = PatternSimulator(config.simulation, config.grid)
    out = []
    for seed in (3, 3, 4):
        rng = np.random.default_rng(seed)
        effects = draw_sample_effects(config.augmentation, rng)
        out.append(sim.simulate(_rutile(), rng, effects=effects))
    assert np.all(np.isfinite(out[0])) and out[0].max() == pytest.approx(1.0)
    np.testing.assert_array_equal(out[0], out[1])
    assert np.abs(out[0] - out[2]).max() > 1e-2
    crystal = Crystal.from_structure(_rutile())
    assert sim.simulate(crystal, np.random.default_rng(3), effects=NO_EFFECTS).shape == out[0].shape
