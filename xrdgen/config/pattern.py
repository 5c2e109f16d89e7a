"""The pattern sections: the 2θ grid, the physics of the pure pattern, the imperfections added to it."""

from __future__ import annotations

from typing import Literal, Optional

import numpy as np
from pydantic import Field, model_validator

from xrdgen.config.base import _check_range, _Section
from xrdgen.config.constants import ANODE_KALPHA2, ANODE_WAVELENGTHS, WAVELENGTH_RANGE


class GridConfig(_Section):
    """The 2θ grid every pattern lives on (default 5–90° at 0.01°, 8501 points)."""

    two_theta_min: float = Field(5.0, ge=0.0, lt=180.0)
    two_theta_max: float = Field(90.0, gt=0.0, le=180.0)
    step: float = Field(0.01, gt=0.0, le=1.0)

    @model_validator(mode="after")
    def _ordered(self):
        if self.two_theta_min >= self.two_theta_max:
            raise ValueError("two_theta_min must be below two_theta_max")
        return self

    @property
    def n_points(self) -> int:
        return int(round((self.two_theta_max - self.two_theta_min) / self.step)) + 1

    def two_theta(self) -> np.ndarray:
        """The grid itself, float64, endpoints included."""
        return np.linspace(self.two_theta_min, self.two_theta_max, self.n_points)


class SimulationConfig(_Section):
    """Physics of the pure pattern: radiation, profile and peak broadening."""

    anode: Optional[Literal["Cu", "Mo", "Cr", "Fe", "Co", "Ag"]] = "Cu"
    wavelength: Optional[float] = Field(None, description="Å; overrides the anode's Kα1")
    kalpha2: bool = False
    kalpha2_ratio: float = Field(0.5, ge=0.0, le=1.0, description="I(Kα2)/I(Kα1)")
    profile: Literal["gaussian", "pseudo_voigt"] = "gaussian"
    crystallite_size_nm: tuple[float, float] = (20.0, 100.0)
    caglioti_u: tuple[float, float] = (0.0, 0.01)
    caglioti_w: tuple[float, float] = (0.0, 0.01)
    eta: tuple[float, float] = (0.0, 1.0)
    debye_waller: bool = False
    debye_waller_b: float = Field(1.0, ge=0.0, description="Å²; isotropic B of every element, only with debye_waller")
    scherrer_k: float = Field(0.9, gt=0.0)

    @model_validator(mode="after")
    def _ranges(self):
        lo, hi = WAVELENGTH_RANGE
        if self.wavelength is not None and not lo < self.wavelength < hi:
            raise ValueError(f"wavelength {self.wavelength:g} Å is outside {lo:g}–{hi:g} Å")
        _check_range(self.crystallite_size_nm, "crystallite_size_nm")
        if self.crystallite_size_nm[0] <= 0:
            raise ValueError("crystallite_size_nm must be positive")
        for name in ("caglioti_u", "caglioti_w", "eta"):
            _check_range(getattr(self, name), name)
        if self.anode is None and self.wavelength is None:
            raise ValueError("give an anode or a wavelength")
        if self.kalpha2 and self.anode is None:
            raise ValueError("kalpha2 needs an anode (its Kα2 wavelength)")
        return self

    @property
    def wavelength_kalpha1(self) -> float:
        return self.wavelength if self.wavelength is not None else ANODE_WAVELENGTHS[self.anode]

    @property
    def wavelength_kalpha2(self) -> Optional[float]:
        return ANODE_KALPHA2[self.anode] if self.kalpha2 and self.anode else None


class AugmentationConfig(_Section):
    """Experimental imperfections added to a pure pattern (background, noise, impurity); each one switchable."""

    background: bool = True
    background_length_scale: tuple[float, float] = (7.0, 40.0)
    background_scale_sd: float = Field(75.0, ge=0.0)
    background_scale_max: float = Field(150.0, ge=0.0)
    additive_noise: bool = True
    additive_noise_sd_max: float = Field(0.02, ge=0.0)
    multiplicative_noise: bool = True
    multiplicative_noise_sd_max: float = Field(0.16, ge=0.0)
    impurity: bool = True
    impurity_fraction_max: float = Field(0.05, ge=0.0, le=1.0)
    sqrt_scale: bool = False
    # Sample and instrument effects beyond the method, applied while the pattern is
    # simulated; formulas and literature ranges in xrdgen/simulation/imperfections.py.
    preferred_orientation: bool = False
    march_dollase_r: tuple[float, float] = Field((0.7, 1.0), description="March–Dollase r (1 = random powder)")
    zero_shift: bool = False
    zero_shift_max_deg: float = Field(0.1, ge=0.0, description="2θ zero error drawn from U[-max, max]")
    sample_displacement: bool = False
    sample_displacement_max_mm: float = Field(0.2, ge=0.0, description="height error s drawn from U[-max, max]")
    goniometer_radius_mm: float = Field(240.0, gt=0.0)
    lattice_strain: bool = False
    lattice_strain_max: float = Field(0.04, ge=0.0, lt=0.5, description="relative change of each free lattice parameter")
    microstrain: bool = False
    microstrain_max: float = Field(0.005, ge=0.0, description="ε of the 4ε·tanθ broadening, drawn from U[0, max]")
    axial_asymmetry: bool = False
    axial_asymmetry_max: float = Field(0.05, ge=0.0, le=1.0, description="A of the split widths Γ(1 ± A·cot 2θ)")
    debye_waller: bool = False
    debye_waller_b: tuple[float, float] = Field((0.3, 1.5), description="Å², isotropic B drawn per pattern")
    small_crystallites: bool = False
    crystallite_size_nm: tuple[float, float] = Field((3.0, 100.0), description="Scherrer size drawn per pattern")

    @model_validator(mode="after")
    def _ranges(self):
        _check_range(self.background_length_scale, "background_length_scale")
        for name in ("march_dollase_r", "crystallite_size_nm"):
            if _check_range(getattr(self, name), name)[0] <= 0:
                raise ValueError(f"{name}: values must be positive")
        if _check_range(self.debye_waller_b, "debye_waller_b")[0] < 0:
            raise ValueError("debye_waller_b: values must be non-negative")
        return self
