"""`PatternSimulator`: crystal in, pure powder pattern on the configured 2θ grid out (float32, max 1).

Per pattern (seed S4): merged peaks (`peaks.py`) → optional Kα2 twins → one profile width per peak
drawn for this pattern (Gaussian/Scherrer with a crystallite size L ~ U[20, 100] nm by default, or a
pseudo-Voigt with Caglioti U, W ~ U[0, 0.01], V = 0 and one η ~ U[0, 1]) → profiles summed on the
grid → scaled to a maximum of 1. Peaks slightly outside the grid are kept so that their tails enter it.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np

from xrdgen.config import GridConfig, SimulationConfig
from xrdgen.simulation.peaks import COEFFICIENTS, _as_crystal, check_crystal, compiled_peaks
from xrdgen.simulation.profiles import (
    add_gaussians,
    add_pseudo_voigts,
    caglioti_fwhm_deg,
    kalpha2_doublet,
    scherrer_fwhm_deg,
)

# Degrees simulated beyond each end of the grid, so that peaks just outside still add their tails.
MARGIN_DEG = {"gaussian": 2.0, "pseudo_voigt": 5.0}


class PatternSimulator:
    """Simulates pure patterns with the physics of `SimulationConfig` on the grid of `GridConfig`."""

    def __init__(self, simulation: Optional[SimulationConfig] = None, grid: Optional[GridConfig] = None):
        self.config = simulation or SimulationConfig()
        self.grid = grid or GridConfig()
        self.two_theta = self.grid.two_theta()
        self.n_points = self.grid.n_points
        self._step = (self.grid.two_theta_max - self.grid.two_theta_min) / (self.n_points - 1)
        self.wavelength = self.config.wavelength_kalpha1
        self._dw_b = self.config.debye_waller_b if self.config.debye_waller else 0.0

    def peaks(self, crystal, margin_deg: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
        """Merged Kα1 peaks inside the grid's range widened by `margin_deg` (2θ in degrees, max 1)."""
        crystal = _as_crystal(crystal)
        check_crystal(crystal)
        lo = max(0.0, self.grid.two_theta_min - margin_deg)
        hi = min(180.0, self.grid.two_theta_max + margin_deg)
        return compiled_peaks(crystal.lattice, crystal.frac_coords, crystal.numbers, crystal.occupancies,
                              COEFFICIENTS, self._dw_b, self.wavelength, lo, hi)

    def draw_profile(self, rng: Optional[np.random.Generator], crystallite_size_nm: Optional[float] = None) -> dict:
        """The profile parameters of one pattern: {'crystallite_size_nm'} or {'u', 'v', 'w', 'eta'}."""
        cfg = self.config
        if cfg.profile == "gaussian":
            if crystallite_size_nm is None:
                crystallite_size_nm = _require(rng).uniform(*cfg.crystallite_size_nm)
            return {"crystallite_size_nm": float(crystallite_size_nm)}
        rng = _require(rng)
        return {"u": rng.uniform(*cfg.caglioti_u), "v": 0.0, "w": rng.uniform(*cfg.caglioti_w), "eta": rng.uniform(*cfg.eta)}

    def render(self, two_theta: np.ndarray, intensity: np.ndarray, profile: dict) -> np.ndarray:
        """Peaks (Kα1, degrees) onto the grid with the given profile parameters; float64, unnormalised."""
        cfg = self.config
        tt, inten = np.asarray(two_theta, dtype=np.float64), np.asarray(intensity, dtype=np.float64)
        if cfg.kalpha2:
            tt, inten = kalpha2_doublet(tt, inten, self.wavelength, cfg.wavelength_kalpha2, cfg.kalpha2_ratio)
        out = np.zeros(self.n_points)
        if cfg.profile == "gaussian":
            fwhm = scherrer_fwhm_deg(tt, self.wavelength, profile["crystallite_size_nm"], cfg.scherrer_k)
            add_gaussians(out, self.grid.two_theta_min, self._step, tt, inten, fwhm)
        else:
            fwhm = caglioti_fwhm_deg(tt, profile["u"], profile["v"], profile["w"])
            add_pseudo_voigts(out, self.grid.two_theta_min, self._step, tt, inten, fwhm, float(profile["eta"]))
        return out

    def simulate(self, crystal, rng: Optional[np.random.Generator] = None,
                 crystallite_size_nm: Optional[float] = None) -> np.ndarray:
        """Pure pattern, float32 (n_points,), maximum 1. `rng` draws the profile (size or Caglioti, η)."""
        profile = self.draw_profile(rng, crystallite_size_nm)
        tt, inten = self.peaks(crystal, MARGIN_DEG[self.config.profile])
        pattern = self.render(tt, inten, profile)
        top = pattern.max() if pattern.size else 0.0
        if not top > 0.0:
            raise ValueError(
                f"no reflection between {self.grid.two_theta_min}° and {self.grid.two_theta_max}° 2θ "
                f"at λ = {self.wavelength} Å"
            )
        return (pattern / top).astype(np.float32)

    def simulate_batch(self, crystals: Sequence, rng: np.random.Generator, return_labels: bool = False):
        """float32 (n, n_points) pure patterns; with `return_labels`, also int32 (n,) space groups."""
        out = np.empty((len(crystals), self.n_points), dtype=np.float32)
        for i, crystal in enumerate(crystals):
            try:
                out[i] = self.simulate(crystal, rng)
            except ValueError as exc:
                raise ValueError(f"crystal {i} of the batch: {exc}") from None
        if return_labels:
            labels = np.array([getattr(c, "spacegroup", 0) for c in crystals], dtype=np.int32)
            return out, labels
        return out


def _require(rng):
    if rng is None:
        raise ValueError("this simulation draws random profile parameters: pass rng=numpy.random.default_rng(seed)")
    return rng
