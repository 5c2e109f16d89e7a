"""Fixed simulated sets of the `measured` preset (`simulate_set`): every pattern carries an impurity
phase of another crystal, the first one included, seen in the pattern itself: a reflection of the
impurity (its position from Bragg's law) stands as a peak where the crystal's own pattern has none.
"""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from xrdgen.config import load_config
from xrdgen.crystal import Crystal
from xrdgen.training.datasets import simulate_set
from xrdgen.training.rundir import InputSpec

# the measured preset with only the impurity and the peak broadening left on, so that peaks stand clear
QUIET = {
    "preset": "measured",
    "grid.two_theta_min": 30.0,
    "grid.two_theta_max": 60.0,
    "augmentation.background": False,
    "augmentation.additive_noise": False,
    "augmentation.multiplicative_noise": False,
    "augmentation.zero_shift": False,
    "augmentation.sample_displacement": False,
    "augmentation.lattice_strain": False,
}
A_W, A_CU = 3.1652, 3.6149  # Å, bcc W and fcc Cu


def crystals() -> tuple[list[Crystal], list[str]]:
    w = Structure.from_spacegroup("Im-3m", Lattice.cubic(A_W), ["W"], [[0, 0, 0]])
    cu = Structure.from_spacegroup("Fm-3m", Lattice.cubic(A_CU), ["Cu"], [[0, 0, 0]])
    nacl = Structure.from_spacegroup("Fm-3m", Lattice.cubic(5.64), ["Na", "Cl"], [[0, 0, 0], [0.5, 0.5, 0.5]])
    return [Crystal.from_structure(s, sg) for s, sg in ((w, 229), (cu, 225), (nacl, 225))], ["W", "Cu", "NaCl"]


def bragg_two_theta(d: float, wavelength: float) -> float:
    return float(np.degrees(2.0 * np.arcsin(wavelength / (2.0 * d))))


def has_peak(x: np.ndarray, y: np.ndarray, at: float, half_width: float = 0.3) -> bool:
    """A local maximum inside at ± half_width, standing above both ends of the window."""
    window = np.flatnonzero(np.abs(x - at) <= half_width)
    top = window[np.argmax(y[window])]
    return window[0] < top < window[-1] and y[top] > 1.05 * max(y[window[0]], y[window[-1]]) and y[top] > 1e-4


def test_every_pattern_of_a_measured_set_has_its_impurity_the_first_included():
    config = load_config(None, {**QUIET, "augmentation.impurity_fraction_max": 0.3})
    spec = InputSpec.from_config(config)
    structures, names = crystals()
    fixed = simulate_set(
        structures, spec, config.simulation, 7, names=names, patterns_per_crystal=2, augmentation=config.augmentation
    )
    assert fixed.names == ["W", "W", "Cu", "Cu", "NaCl", "NaCl"]
    # each crystal's patterns take the crystal before it; the first crystal's take the second
    assert [d["impurity"] for d in fixed.details] == ["Cu", "Cu", "W", "W", "Cu", "Cu"]
    x = config.grid.two_theta()
    wavelength = config.simulation.wavelength_kalpha1
    cu_111 = bragg_two_theta(A_CU / np.sqrt(3), wavelength)  # 43.3°, where bcc W has no reflection
    w_110 = bragg_two_theta(A_W / np.sqrt(2), wavelength)  # 40.3°, where fcc Cu has none
    for row in (0, 1):
        assert has_peak(x, fixed.x[row], cu_111), f"W pattern {row} shows no Cu 111 peak at {cu_111:.2f}°"
    for row in (2, 3):
        assert has_peak(x, fixed.x[row], w_110), f"Cu pattern {row} shows no W 110 peak at {w_110:.2f}°"
    pure = simulate_set(structures[:1], spec, config.simulation, 7, names=names[:1], patterns_per_crystal=1)
    assert not has_peak(x, pure.x[0], cu_111)  # the peak is the impurity's, not W's


def test_a_set_of_one_crystal_has_no_other_phase_to_mix_in():
    config = load_config(None, QUIET)
    structures, names = crystals()
    fixed = simulate_set(
        structures[:1],
        InputSpec.from_config(config),
        config.simulation,
        0,
        names=names[:1],
        patterns_per_crystal=2,
        augmentation=config.augmentation,
    )
    assert len(fixed) == 2 and [d["impurity"] for d in fixed.details] == [None, None]
    assert np.all(np.isfinite(fixed.x)) and np.allclose(fixed.x.max(axis=1), 1.0)


@pytest.mark.parametrize("impurity", [True, False])
def test_impurity_switch_is_honoured(impurity):
    config = load_config(None, {**QUIET, "augmentation.impurity": impurity})
    structures, names = crystals()
    fixed = simulate_set(
        structures, InputSpec.from_config(config), config.simulation, 1, names=names, augmentation=config.augmentation
    )
    assert [d["impurity"] for d in fixed.details] == (["Cu", "W", "Cu"] if impurity else [None] * 3)
