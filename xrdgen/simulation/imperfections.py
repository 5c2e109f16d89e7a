"""What a measured pattern has that a pure one lacks, each imperfection switchable under `augmentation:`.

Two stages, every parameter drawn per pattern from the caller's `rng` (distributions below; a
switched-off imperfection draws nothing, so the pure preset consumes no random numbers here).

Sample and instrument (`draw_sample_effects`, applied by `PatternSimulator.simulate(effects=...)`,
beyond the method):

- Preferred orientation, March–Dollase (Dollase, J. Appl. Cryst. 19, 267 (1986)): each reflection's
  intensity × P(α) = (r² cos²α + sin²α / r)^(-3/2), α the angle between its reciprocal vector and
  the normal of a low-index plane (h, k, l ∈ {-1, 0, 1}, one of 13, uniform); r ~ U[0.7, 1] (r = 1 is
  a random powder, r < 1 platelets; refined r of textured lab samples lie mostly in 0.7–1, e.g.
  Dollase's own examples and Zolotoyabko, J. Appl. Cryst. 42, 513 (2009)). P averages to 1 over the
  sphere, so the powder's total intensity is kept.
- Zero shift Δ2θ = z, z ~ U[-0.1°, 0.1°], and sample displacement Δ2θ = -2 s cos θ / R,
  s ~ U[-0.2, 0.2] mm, R = 240 mm (Klug & Alexander 1974, ch. 5; typical Bragg–Brentano values).
- Symmetry-preserving lattice strain: every free lattice parameter × (1 + e), e ~ U[-0.04, 0.04]
  (XRD-AutoAnalyzer, Szymanski et al., Chem. Mater. 33, 4204 (2021): strain up to 4 %). Lengths that
  are equal stay equal, angles of 60°, 90° and 120° stay fixed and equal angles stay equal, so the
  metric keeps the crystal system's constraints and the fractional coordinates keep the symmetry.
- Microstrain broadening 4 ε tan θ (Williamson–Hall), ε ~ U[0, 0.005] (1e-4 to a few 1e-3 in
  annealed to milled powders, e.g. Mote et al., J. Theor. Appl. Phys. 6, 6 (2012)).
- Axial-divergence asymmetry: split widths Γ(1 ± A cot 2θ), A ~ U[0, 0.05] (see `profiles.py`).
- Isotropic Debye–Waller damping: intensity × exp(-2 B sin²θ / λ²), B ~ U[0.3, 1.5] Å² (room
  temperature B of most elements and simple compounds, Peng et al., Acta Cryst. A52, 456 (1996)).
- Small crystallites: Scherrer size L ~ U[3, 100] nm (XRD-AutoAnalyzer draws 1–100 nm); with the
  Gaussian profile it replaces the size drawn from `simulation.crystallite_size_nm`, with the
  pseudo-Voigt its width adds in quadrature to the Caglioti width.

Pattern (`augment`, the method's imperfections):

1. Impurity phase: I = (1 - a) · I_pure + a · I_impurity, a ~ U[0, 0.05], both scaled to max 1, the
   mixture scaled to max 1 again. The impurity is a pattern of another crystal supplied by the
   caller; without one this step is skipped.
2. Background: a Gaussian-process draw b(2θ) with RBF kernel k(d) = a² exp(-d² / 2l²), a = 1 and
   l ~ U[7, 40] degrees, made non-negative and of known weight: (b - min b) / Σ(b - min b) · s with
   s ~ normal(0, 75) truncated to [0, 150]. The pattern (max 1) is added to it.
3. Additive noise N(0, σ_a²) per point, σ_a ~ U[0, 0.02].
4. Multiplicative noise N(1, σ_m²) per point, σ_m ~ U[0, 0.16].
5. Shifted to a minimum of 0 and scaled to max 1, as the original did and as measured patterns are
   prepared (`xrdgen.measured.preprocess`); optionally square-rooted (the original trained on √I;
   `scale_input` applies the same to measured patterns so that both look alike to the network).

The background is `background.py`'s; noise is drawn in compiled loops from the caller's generator.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Optional

import numpy as np
from numba import njit

from xrdgen.config import SAMPLE_EFFECTS, AugmentationConfig, GridConfig
from xrdgen.simulation.background import background

# Plane normals for preferred orientation: (h, k, l) in {-1, 0, 1}³ without 0, one of each ± pair.
LOW_INDEX_PLANES = tuple(hkl for hkl in itertools.product((-1, 0, 1), repeat=3) if hkl > (0, 0, 0))
SPECIAL_ANGLES = np.radians([60.0, 90.0, 120.0])  # kept by the lattice strain
LENGTH_TOL = 1e-4  # relative: lengths this close are equal by symmetry
ANGLE_TOL = 1e-3  # radians
UNIFORMS_PER_EFFECT = {"preferred_orientation": 2, "lattice_strain": 6}  # the others draw one


@dataclass(frozen=True)
class SampleEffects:
    """Sample and instrument effects drawn for one pattern; the defaults mean "none"."""

    preferred_hkl: Optional[tuple[int, int, int]] = None
    march_dollase_r: float = 1.0
    zero_shift_deg: float = 0.0
    displacement_over_radius: float = 0.0  # s / R
    lattice_strain: Optional[tuple[float, ...]] = None  # e for (a, b, c, alpha, beta, gamma)
    microstrain: float = 0.0
    asymmetry: float = 0.0
    debye_waller_b: float = 0.0  # Å²
    crystallite_size_nm: Optional[float] = None


NO_EFFECTS = SampleEffects()


def draw_sample_effects(config: AugmentationConfig, rng: np.random.Generator) -> SampleEffects:
    """Draw one pattern's sample and instrument effects from their stated distributions.

    One call to the generator for all of them (a uniform u per drawn value, in the order of the
    switches in `AugmentationConfig`; the plane is LOW_INDEX_PLANES[⌊13 u⌋]); nothing is drawn for
    switched-off effects.
    """
    switched_on = [name for name in SAMPLE_EFFECTS if getattr(config, name)]
    if not switched_on:
        return NO_EFFECTS
    u = iter(rng.random(sum(UNIFORMS_PER_EFFECT.get(name, 1) for name in switched_on)).tolist())

    def uniform(lo: float, hi: float) -> float:
        return lo + (hi - lo) * next(u)

    values: dict = {}
    if config.preferred_orientation:
        values["preferred_hkl"] = LOW_INDEX_PLANES[min(int(next(u) * len(LOW_INDEX_PLANES)), len(LOW_INDEX_PLANES) - 1)]
        values["march_dollase_r"] = uniform(*config.march_dollase_r)
    if config.zero_shift:
        values["zero_shift_deg"] = uniform(-config.zero_shift_max_deg, config.zero_shift_max_deg)
    if config.sample_displacement:
        s = uniform(-config.sample_displacement_max_mm, config.sample_displacement_max_mm)
        values["displacement_over_radius"] = s / config.goniometer_radius_mm
    if config.lattice_strain:
        values["lattice_strain"] = tuple(uniform(-config.lattice_strain_max, config.lattice_strain_max) for _ in range(6))
    if config.microstrain:
        values["microstrain"] = uniform(0.0, config.microstrain_max)
    if config.axial_asymmetry:
        values["asymmetry"] = uniform(0.0, config.axial_asymmetry_max)
    if config.debye_waller:
        values["debye_waller_b"] = uniform(*config.debye_waller_b)
    if config.small_crystallites:
        values["crystallite_size_nm"] = uniform(*config.small_crystallite_size_nm)
    return SampleEffects(**values)


def strained_lattice(lattice: np.ndarray, strain: tuple[float, ...]) -> np.ndarray:
    """Lattice rows with each free parameter × (1 + e); equal lengths/angles share the first one's e.

    Angles of 60°, 90° and 120° are kept, so cubic, tetragonal, hexagonal, rhombohedral, orthorhombic
    and monoclinic cells stay so. A draw that would close no cell returns the lattice unchanged.
    """
    return _strained_lattice(np.asarray(lattice, dtype=np.float64), np.asarray(strain, dtype=np.float64))


@njit(cache=True)
def _strained_lattice(lattice, strain):
    """Compiled `strained_lattice` (the same parameters as `geometry.lattice_parameters` / `lattice_matrix`)."""
    params = np.empty(6)
    for i in range(3):
        params[i] = math.sqrt(lattice[i, 0] ** 2 + lattice[i, 1] ** 2 + lattice[i, 2] ** 2)
    for i, (p, q) in enumerate(((1, 2), (0, 2), (0, 1))):
        dot = lattice[p, 0] * lattice[q, 0] + lattice[p, 1] * lattice[q, 1] + lattice[p, 2] * lattice[q, 2]
        params[3 + i] = math.acos(min(max(dot / (params[p] * params[q]), -1.0), 1.0))
    new = params.copy()
    for i in range(6):
        lo = 0 if i < 3 else 3
        if i >= 3 and np.min(np.abs(params[i] - SPECIAL_ANGLES)) < ANGLE_TOL:
            continue
        tol = LENGTH_TOL * params[i] if i < 3 else ANGLE_TOL
        first = i
        for j in range(lo, i):
            if abs(params[j] - params[i]) <= tol:
                first = j
                break
        new[i] = params[i] * (1.0 + strain[first])
    a, b, c, alpha, beta, gamma = new[0], new[1], new[2], new[3], new[4], new[5]
    ca, cb, cg, sg = math.cos(alpha), math.cos(beta), math.cos(gamma), math.sin(gamma)
    cy = (ca - cb * cg) / sg
    cz2 = 1.0 - cb * cb - cy * cy
    if not cz2 > 1e-12:
        return lattice.copy()
    out = np.zeros((3, 3))
    out[0, 0] = a
    out[1, 0], out[1, 1] = b * cg, b * sg
    out[2, 0], out[2, 1], out[2, 2] = c * cb, c * cy, c * math.sqrt(cz2)
    return out


@dataclass(frozen=True)
class Imperfections:
    """Everything drawn for one pattern's pattern-stage imperfections; zero (or None) means off."""

    impurity_fraction: float = 0.0
    background_length_scale: Optional[float] = None
    background_scale: float = 0.0
    additive_sd: float = 0.0
    multiplicative_sd: float = 0.0


def draw_background_scale(config: AugmentationConfig, rng: np.random.Generator) -> float:
    """s ~ normal(0, sd) truncated to [0, max]: |N(0, sd)| drawn again until it is <= max."""
    if config.background_scale_sd == 0.0 or config.background_scale_max == 0.0:
        return 0.0
    while True:
        value = abs(rng.normal(0.0, config.background_scale_sd))
        if value <= config.background_scale_max:
            return float(value)


def draw_imperfections(config: AugmentationConfig, rng: np.random.Generator, with_impurity: bool = True) -> Imperfections:
    """Draw the parameters of one pattern's pattern-stage imperfections from their stated distributions."""
    return Imperfections(
        impurity_fraction=float(rng.uniform(0.0, config.impurity_fraction_max)) if config.impurity and with_impurity else 0.0,
        background_length_scale=float(rng.uniform(*config.background_length_scale)) if config.background else None,
        background_scale=draw_background_scale(config, rng) if config.background else 0.0,
        additive_sd=float(rng.uniform(0.0, config.additive_noise_sd_max)) if config.additive_noise else 0.0,
        multiplicative_sd=float(rng.uniform(0.0, config.multiplicative_noise_sd_max)) if config.multiplicative_noise else 0.0,
    )


@njit(cache=True)
def _apply(pattern, impurity, fraction, background, additive_sd, multiplicative_sd, generator):
    """Steps 1-4 in two passes: (y, min y, max y), y float64. `fraction` 0 skips the impurity, an empty
    `background` (already non-negative and weighted) skips it, a zero sd skips that noise."""
    n = pattern.shape[0]
    y = np.empty(n)
    top = pattern.max()
    if fraction > 0.0:
        top_impurity = impurity.max()
        peak = 0.0
        for i in range(n):
            y[i] = (1.0 - fraction) * pattern[i] / top + fraction * impurity[i] / top_impurity
            peak = max(peak, y[i])
    else:
        y[:] = pattern
        peak = top
    with_background = background.shape[0] == n
    low, high = np.inf, -np.inf
    for i in range(n):
        v = y[i] / peak
        if with_background:
            v += background[i]
        if additive_sd > 0.0:
            v += additive_sd * generator.standard_normal()
        if multiplicative_sd > 0.0:
            v *= 1.0 + multiplicative_sd * generator.standard_normal()
        y[i] = v
        low, high = min(low, v), max(high, v)
    return y, low, high


@njit(cache=True)
def _finish(y, low, high, sqrt_scale):
    """float32 (y - low) / (high - low), √ of it when `sqrt_scale`: the network's input."""
    out = np.empty(y.shape[0], dtype=np.float32)
    span = high - low
    for i in range(y.shape[0]):
        out[i] = (y[i] - low) / span
    if sqrt_scale:
        for i in range(y.shape[0]):
            out[i] = math.sqrt(out[i])
    return out


NO_BACKGROUND = np.zeros(0)


def _apply_imperfections(pattern, imperfections: Imperfections, x, rng, impurity):
    """(y, min, max) of steps 1-4; the public `apply_imperfections` returns y."""
    pattern = np.asarray(pattern, dtype=np.float64)
    if not pattern.max() > 0.0:
        raise ValueError("a pattern must have a positive maximum")
    fraction = imperfections.impurity_fraction if impurity is not None else 0.0
    if fraction > 0.0:
        impurity = np.asarray(impurity, dtype=np.float64)
        if not impurity.max() > 0.0:
            raise ValueError("a pattern must have a positive maximum")
    b = NO_BACKGROUND
    if imperfections.background_length_scale is not None and imperfections.background_scale > 0.0:
        b = background(x, imperfections.background_length_scale, imperfections.background_scale, rng)
    return _apply(
        pattern,
        impurity if fraction > 0.0 else pattern,
        fraction,
        b,
        imperfections.additive_sd,
        imperfections.multiplicative_sd,
        rng,
    )


def apply_imperfections(
    pattern: np.ndarray,
    imperfections: Imperfections,
    x: np.ndarray,
    rng: np.random.Generator,
    impurity: Optional[np.ndarray] = None,
) -> np.ndarray:
    """Steps 1-4 with given parameters; float64, not yet scaled (so tests can check each step)."""
    return _apply_imperfections(pattern, imperfections, x, rng, impurity)[0]


def scale_input(pattern: np.ndarray, sqrt_scale: bool) -> np.ndarray:
    """What the network sees: max 1, and √ of the (clipped non-negative) values when `sqrt_scale`."""
    y = _unit_max(pattern)
    if sqrt_scale:
        y = np.sqrt(np.clip(y, 0.0, None))
    return y.astype(np.float32)


def augment(
    pattern: np.ndarray,
    config: AugmentationConfig,
    rng: np.random.Generator,
    grid: GridConfig,
    impurity: Optional[np.ndarray] = None,
) -> np.ndarray:
    """A pattern with freshly drawn pattern-stage imperfections, float32, min 0, max 1 (√ if configured).

    `grid` gives the 2θ of each point (the background's length scale is in degrees); `impurity` is
    the pattern of another crystal on the same grid. The sample and instrument effects are not
    applied here: they change the peaks, see `draw_sample_effects` and `PatternSimulator.simulate`.
    """
    if rng is None:
        raise ValueError("augment draws random imperfections: pass rng=numpy.random.default_rng(seed)")
    x = _grid_points(grid.two_theta_min, grid.two_theta_max, grid.n_points)
    pattern = np.asarray(pattern, dtype=np.float64)
    if pattern.shape != x.shape or (impurity is not None and np.shape(impurity) != x.shape):
        raise ValueError(
            f"patterns must have the grid's {len(x)} points, got {pattern.shape}"
            + ("" if impurity is None else f" and {np.shape(impurity)}")
        )
    imperfections = draw_imperfections(config, rng, with_impurity=impurity is not None)
    y, low, high = _apply_imperfections(pattern, imperfections, x, rng, impurity)
    return _finish(y, low, high, config.sqrt_scale)  # = scale_input(y - y.min(), sqrt_scale), one pass


@lru_cache(maxsize=8)
def _grid_points(lo: float, hi: float, n: int) -> np.ndarray:
    """The grid's 2θ values, made once per grid (read-only)."""
    x = np.linspace(lo, hi, n)
    x.flags.writeable = False
    return x


def _unit_max(y) -> np.ndarray:
    y = np.asarray(y, dtype=np.float64)
    top = y.max()
    if not top > 0.0:
        raise ValueError("a pattern must have a positive maximum")
    return y / top
