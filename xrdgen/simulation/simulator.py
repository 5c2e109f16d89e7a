"""`PatternSimulator`: crystal in, powder pattern on the configured 2θ grid out (float32, max 1).

Per pattern: (strained lattice) → merged peaks (`peaks.py`, optionally textured and Debye–Waller
damped) → Kα1 and optional Kα2 lines with one profile width each, drawn for this pattern
(`profiles.py`: Gaussian/Scherrer with a crystallite size L ~ U[20, 100] nm by default, or a
pseudo-Voigt with Caglioti U, W ~ U[0, 0.01], V = 0 and one η ~ U[0, 1]; plus microstrain,
asymmetry and shifts when drawn) → profiles summed on the grid (`render.py`) → scaled to a maximum
of 1. Peaks slightly outside the grid are kept so that their tails enter it. The sample and
instrument effects come from `imperfections.draw_sample_effects`; without them the pattern is pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Optional

import numpy as np

from xrdgen.config import GridConfig, SimulationConfig
from xrdgen.simulation.imperfections import NO_EFFECTS, SampleEffects, strained_lattice
from xrdgen.simulation.peaks import COEFFICIENTS, NO_TEXTURE, as_crystal, check_crystal, compiled_peaks
from xrdgen.simulation.profiles import GAUSSIAN, PSEUDO_VOIGT, line_profiles
from xrdgen.simulation.render import render_profiles

# Degrees simulated beyond each end of the grid, so that peaks just outside still add their tails.
MARGIN_DEG = {"gaussian": 2.0, "pseudo_voigt": 5.0}


class PatternSimulator:
    """Simulates patterns with the physics of `SimulationConfig` on the grid of `GridConfig`."""

    def __init__(self, simulation: SimulationConfig, grid: GridConfig):
        self.config = simulation
        self.grid = grid
        self.two_theta = grid.two_theta()
        self.n_points = grid.n_points
        self._step = (grid.two_theta_max - grid.two_theta_min) / (self.n_points - 1)
        self.wavelength = simulation.wavelength_kalpha1
        self._kalpha2 = simulation.wavelength_kalpha2 if simulation.kalpha2 else None

    def peaks(self, crystal, margin_deg: float = 0.0, effects: SampleEffects = NO_EFFECTS) -> tuple[np.ndarray, np.ndarray]:
        """Merged Kα1 peaks inside the grid's range widened by `margin_deg` (2θ in degrees, max 1).

        `effects` strains the lattice, textures and damps the intensities; shifts and widths are the
        profile's (`render`).
        """
        crystal = as_crystal(crystal)
        check_crystal(crystal)
        lattice = crystal.lattice
        if effects.lattice_strain is not None:
            lattice = strained_lattice(lattice, effects.lattice_strain)
        hkl = NO_TEXTURE if effects.preferred_hkl is None else np.asarray(effects.preferred_hkl, dtype=np.float64)
        lo = max(0.0, self.grid.two_theta_min - margin_deg)
        hi = min(180.0, self.grid.two_theta_max + margin_deg)
        return compiled_peaks(
            lattice,
            crystal.frac_coords,
            crystal.numbers,
            crystal.occupancies,
            COEFFICIENTS,
            effects.debye_waller_b,
            self.wavelength,
            lo,
            hi,
            hkl,
            float(effects.march_dollase_r),
        )

    def draw_profile(self, rng: Optional[np.random.Generator], crystallite_size_nm: Optional[float] = None) -> dict:
        """The profile parameters of one pattern: {'crystallite_size_nm'} or {'u', 'v', 'w', 'eta'}."""
        cfg = self.config
        if cfg.profile == "gaussian":
            if crystallite_size_nm is None:
                crystallite_size_nm = _require(rng).uniform(*cfg.crystallite_size_nm)
            return {"crystallite_size_nm": float(crystallite_size_nm)}
        rng = _require(rng)
        return {"u": rng.uniform(*cfg.caglioti_u), "v": 0.0, "w": rng.uniform(*cfg.caglioti_w), "eta": rng.uniform(*cfg.eta)}

    def render(
        self, two_theta: np.ndarray, intensity: np.ndarray, profile: dict, effects: SampleEffects = NO_EFFECTS
    ) -> np.ndarray:
        """Peaks (Kα1, degrees) onto the grid with the given profile parameters; float64, unnormalised."""
        cfg = self.config
        gaussian = cfg.profile == "gaussian"
        size = effects.crystallite_size_nm if effects.crystallite_size_nm is not None else profile.get("crystallite_size_nm", 0.0)
        centres, areas, lo, hi = line_profiles(
            np.asarray(two_theta, dtype=np.float64),
            np.asarray(intensity, dtype=np.float64),
            self.wavelength,
            self._kalpha2 or 0.0,
            cfg.kalpha2_ratio,
            GAUSSIAN if gaussian else PSEUDO_VOIGT,
            float(size),
            cfg.scherrer_k,
            float(profile.get("u", 0.0)),
            float(profile.get("v", 0.0)),
            float(profile.get("w", 0.0)),
            effects.microstrain,
            effects.asymmetry,
            effects.zero_shift_deg,
            effects.displacement_over_radius,
        )
        out = np.zeros(self.n_points)
        render_profiles(
            out, self.grid.two_theta_min, self._step, centres, areas, lo, hi, 1.0 if gaussian else float(profile["eta"])
        )
        return out

    def simulate(
        self,
        crystal,
        rng: Optional[np.random.Generator] = None,
        crystallite_size_nm: Optional[float] = None,
        effects: SampleEffects = NO_EFFECTS,
    ) -> np.ndarray:
        """Pattern, float32 (n_points,), maximum 1. `rng` draws the profile (size or Caglioti, η).

        `effects` (from `imperfections.draw_sample_effects`) adds the sample and instrument effects;
        the default adds none. Their crystallite size, when drawn, replaces `crystallite_size_nm`.
        """
        if effects.crystallite_size_nm is not None and self.config.profile == "gaussian":
            crystallite_size_nm = effects.crystallite_size_nm
            effects = replace(effects, crystallite_size_nm=None)
        profile = self.draw_profile(rng, crystallite_size_nm)
        tt, inten = self.peaks(crystal, MARGIN_DEG[self.config.profile], effects)
        pattern = self.render(tt, inten, profile, effects)
        top = pattern.max() if pattern.size else 0.0
        if not top > 0.0:
            raise ValueError(
                f"no reflection between {self.grid.two_theta_min}° and {self.grid.two_theta_max}° 2θ at λ = {self.wavelength} Å"
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
