"""Powder X-ray diffraction patterns, compiled with Numba and proven against pymatgen's XRDCalculator.

- `peaks(crystal, wavelength, two_theta_min, two_theta_max)`: merged peak list (2θ in degrees, max 1).
- `PatternSimulator(simulation_config, grid_config)`: `.simulate(crystal, rng)` → float32 pattern on
  the grid, `.simulate_batch(crystals, rng)` → float32 (n, n_points).
"""

from xrdgen.simulation.peaks import peaks
from xrdgen.simulation.simulator import PatternSimulator

__all__ = ["peaks", "PatternSimulator"]
