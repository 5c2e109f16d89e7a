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
    """Physics of the pure pattern: radiation, profile and peak broadening.

    `crystallite_size_nm` is the Scherrer size of the Gaussian profile (the method's pure patterns),
    drawn per pattern; the pseudo-Voigt profile takes its widths from Caglioti's U, W instead. The
    sample effects that change a pure pattern (small crystallites, Debye–Waller damping, ...) are
    under `augmentation`, each once. The defaults are the `pure` preset's.
    """

    anode: Optional[Literal["Cu", "Mo", "Cr", "Fe", "Co", "Ag"]] = "Cu"
    wavelength: Optional[float] = Field(None, description="Å; overrides the anode's Kα1")
    kalpha2: bool = False
    kalpha2_ratio: float = Field(0.5, ge=0.0, le=1.0, description="I(Kα2)/I(Kα1)")
    profile: Literal["gaussian", "pseudo_voigt"] = "gaussian"
    crystallite_size_nm: tuple[float, float] = Field((20.0, 100.0), description="Scherrer size of the Gaussian profile")
    caglioti_u: tuple[float, float] = (0.0, 0.01)
    caglioti_w: tuple[float, float] = (0.0, 0.01)
    eta: tuple[float, float] = (0.0, 1.0)
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


IMPERFECTION = "imperfection"  # the method's, added to the simulated pattern (`augment`)
SAMPLE_EFFECT = "sample"  # beyond the method, applied while the pattern is simulated (`draw_sample_effects`)


def _effect(kind: str, group: Optional[str] = None):
    """The switch of one effect, off by default (the default section is the `pure` preset).

    `kind` sorts it into the imperfections or the sample effects; `group` is the ablation variant
    that switches it together with others (default: a variant of its own). The effect lists
    (`IMPERFECTIONS`, `SAMPLE_EFFECTS`), the pattern presets and the ablation's groups are read
    from these fields, so an effect is listed here and nowhere else.
    """
    return Field(False, json_schema_extra={"effect": kind, "ablation_group": group})


class AugmentationConfig(_Section):
    """Experimental imperfections added to a pure pattern (background, noise, impurity) and sample and
    instrument effects applied while it is simulated; each one switchable, all off by default.

    Formulas and literature ranges in xrdgen/simulation/imperfections.py. A fixed Debye–Waller B for
    every pattern is the range [B, B]. `small_crystallite_size_nm` replaces the Gaussian profile's
    `simulation.crystallite_size_nm` and adds its Scherrer width to the pseudo-Voigt's Caglioti width.
    """

    background: bool = _effect(IMPERFECTION)
    background_length_scale: tuple[float, float] = (7.0, 40.0)
    background_scale_sd: float = Field(75.0, ge=0.0)
    background_scale_max: float = Field(150.0, ge=0.0)
    additive_noise: bool = _effect(IMPERFECTION)
    additive_noise_sd_max: float = Field(0.02, ge=0.0)
    multiplicative_noise: bool = _effect(IMPERFECTION)
    multiplicative_noise_sd_max: float = Field(0.16, ge=0.0)
    impurity: bool = _effect(IMPERFECTION)
    impurity_fraction_max: float = Field(0.05, ge=0.0, le=1.0)
    sqrt_scale: bool = False
    preferred_orientation: bool = _effect(SAMPLE_EFFECT)
    march_dollase_r: tuple[float, float] = Field((0.7, 1.0), description="March–Dollase r (1 = random powder)")
    zero_shift: bool = _effect(SAMPLE_EFFECT, group="peak_shift")
    zero_shift_max_deg: float = Field(0.1, ge=0.0, description="2θ zero error drawn from U[-max, max]")
    sample_displacement: bool = _effect(SAMPLE_EFFECT, group="peak_shift")
    sample_displacement_max_mm: float = Field(0.2, ge=0.0, description="height error s drawn from U[-max, max]")
    goniometer_radius_mm: float = Field(240.0, gt=0.0)
    lattice_strain: bool = _effect(SAMPLE_EFFECT)
    lattice_strain_max: float = Field(0.04, ge=0.0, lt=0.5, description="relative change of each free lattice parameter")
    microstrain: bool = _effect(SAMPLE_EFFECT)
    microstrain_max: float = Field(0.005, ge=0.0, description="ε of the 4ε·tanθ broadening, drawn from U[0, max]")
    axial_asymmetry: bool = _effect(SAMPLE_EFFECT)
    axial_asymmetry_max: float = Field(0.05, ge=0.0, le=1.0, description="A of the split widths Γ(1 ± A·cot 2θ)")
    debye_waller: bool = _effect(SAMPLE_EFFECT)
    debye_waller_b: tuple[float, float] = Field((0.3, 1.5), description="Å², isotropic B of every element, drawn per pattern")
    small_crystallites: bool = _effect(SAMPLE_EFFECT)
    small_crystallite_size_nm: tuple[float, float] = Field((3.0, 100.0), description="Scherrer size drawn per pattern")

    @model_validator(mode="after")
    def _ranges(self):
        _check_range(self.background_length_scale, "background_length_scale")
        for name in ("march_dollase_r", "small_crystallite_size_nm"):
            if _check_range(getattr(self, name), name)[0] <= 0:
                raise ValueError(f"{name}: values must be positive")
        if _check_range(self.debye_waller_b, "debye_waller_b")[0] < 0:
            raise ValueError("debye_waller_b: values must be non-negative")
        return self


def _effects_of(kind: str) -> tuple[str, ...]:
    """The switches of one kind, in the order of their fields."""
    fields = AugmentationConfig.model_fields.items()
    return tuple(name for name, field in fields if (field.json_schema_extra or {}).get("effect") == kind)


def ablation_group(effect: str) -> str:
    """The ablation variant that switches `effect` on (its own name unless the field names a group)."""
    return AugmentationConfig.model_fields[effect].json_schema_extra["ablation_group"] or effect


IMPERFECTIONS = _effects_of(IMPERFECTION)
SAMPLE_EFFECTS = _effects_of(SAMPLE_EFFECT)
