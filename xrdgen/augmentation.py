"""Experimental imperfections added to a pure simulated pattern (seed S4.2), each one switchable.

For one pattern (`augment`), with every draw independent and taken from the caller's `rng`:

1. Impurity phase: I = (1 - a) · I_pure + a · I_impurity, a ~ U[0, 0.05], both scaled to max 1, the
   mixture scaled to max 1 again. The impurity is a pure pattern of another crystal (usually of a
   random space group) supplied by the caller; without one this step is skipped.
2. Background: a Gaussian-process draw b(2θ) with RBF kernel k(d) = a² exp(-d² / 2l²), a = 1 and
   l ~ U[7, 40] degrees, made non-negative and of known weight: (b - min b) / Σ(b - min b) · s with
   s ~ normal(0, 75) truncated to [0, 150]. The pure pattern (max 1) is added to it.
3. Additive noise N(0, σ_a²) per point, σ_a ~ U[0, 0.02].
4. Multiplicative noise N(1, σ_m²) per point, σ_m ~ U[0, 0.16].
5. Shifted to a minimum of 0 and scaled to max 1, as the original did and as measured patterns are
   prepared (`xrdgen.measured`); optionally square-rooted (the original trained on √I;
   `scale_input` applies the same to measured patterns so that both look alike to the network).

The GP is sampled exactly on nodes spaced l/5 (covariance factor cached per node count, since in units
of l it depends on nothing else) and spline-interpolated to the grid, which is smooth at that scale.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from typing import Optional

import numpy as np
from scipy.interpolate import CubicSpline

from xrdgen.config import AugmentationConfig, GridConfig

GP_NODES_PER_LENGTH_SCALE = 5


@dataclass(frozen=True)
class Imperfections:
    """Everything drawn for one pattern; zero (or None) means that imperfection is off."""

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
    """Draw the parameters of one pattern's imperfections from their stated distributions."""
    return Imperfections(
        impurity_fraction=float(rng.uniform(0.0, config.impurity_fraction_max)) if config.impurity and with_impurity else 0.0,
        background_length_scale=float(rng.uniform(*config.background_length_scale)) if config.background else None,
        background_scale=draw_background_scale(config, rng) if config.background else 0.0,
        additive_sd=float(rng.uniform(0.0, config.additive_noise_sd_max)) if config.additive_noise else 0.0,
        multiplicative_sd=float(rng.uniform(0.0, config.multiplicative_noise_sd_max)) if config.multiplicative_noise else 0.0,
    )


@lru_cache(maxsize=512)
def _rbf_factor(n_nodes: int) -> np.ndarray:
    """A with A Aᵀ = K, K_ij = exp(-(i - j)² / (2 · nodes_per_length²)): the RBF covariance on the nodes."""
    lag = np.arange(n_nodes)[:, None] - np.arange(n_nodes)[None, :]
    cov = np.exp(-(lag**2) / (2.0 * GP_NODES_PER_LENGTH_SCALE**2))
    values, vectors = np.linalg.eigh(cov)  # robust where Cholesky fails: K is nearly singular
    return vectors * np.sqrt(np.clip(values, 0.0, None))


def gp_sample(x: np.ndarray, length_scale: float, rng: np.random.Generator, size: Optional[int] = None) -> np.ndarray:
    """Draw(s) of a zero-mean GP with kernel exp(-d² / 2 l²) at the points x (ascending)."""
    x = np.asarray(x, dtype=np.float64)
    spacing = length_scale / GP_NODES_PER_LENGTH_SCALE
    n_nodes = int(math.ceil((x[-1] - x[0]) / spacing)) + 2
    nodes = x[0] + spacing * np.arange(n_nodes)
    draws = _rbf_factor(n_nodes) @ rng.standard_normal((n_nodes, 1 if size is None else size))
    values = CubicSpline(nodes, draws, axis=0)(x).T
    return values[0] if size is None else values


def background(x: np.ndarray, length_scale: float, scale: float, rng: np.random.Generator) -> np.ndarray:
    """(b - min b) / Σ(b - min b) · scale for a GP draw b: non-negative, summing to `scale` over the grid."""
    if scale == 0.0:
        return np.zeros(len(x))
    b = gp_sample(x, length_scale, rng)
    b -= b.min()
    return b / b.sum() * scale


def apply_imperfections(pattern: np.ndarray, imperfections: Imperfections, x: np.ndarray,
                        rng: np.random.Generator, impurity: Optional[np.ndarray] = None) -> np.ndarray:
    """Steps 1-4 with given parameters; float64, not yet scaled (so tests can check each step)."""
    y = _unit_max(pattern)
    if imperfections.impurity_fraction > 0.0 and impurity is not None:
        a = imperfections.impurity_fraction
        y = _unit_max((1.0 - a) * y + a * _unit_max(impurity))
    if imperfections.background_length_scale is not None and imperfections.background_scale > 0.0:
        y = y + background(x, imperfections.background_length_scale, imperfections.background_scale, rng)
    if imperfections.additive_sd > 0.0:
        y = y + rng.normal(0.0, imperfections.additive_sd, y.shape)
    if imperfections.multiplicative_sd > 0.0:
        y = y * rng.normal(1.0, imperfections.multiplicative_sd, y.shape)
    return y


def scale_input(pattern: np.ndarray, sqrt_scale: bool) -> np.ndarray:
    """What the network sees: max 1, and √ of the (clipped non-negative) values when `sqrt_scale`."""
    y = _unit_max(pattern)
    if sqrt_scale:
        y = np.sqrt(np.clip(y, 0.0, None))
    return y.astype(np.float32)


def augment(pattern: np.ndarray, config: Optional[AugmentationConfig] = None, rng: Optional[np.random.Generator] = None,
            impurity: Optional[np.ndarray] = None, grid: Optional[GridConfig] = None) -> np.ndarray:
    """A pure pattern with freshly drawn imperfections, float32, min 0, max 1 (√-scaled if configured).

    `grid` gives the 2θ of each point (the background's length scale is in degrees); default grid
    5-90° at 0.01°. `impurity` is the pure pattern of another crystal on the same grid.
    """
    config = config or AugmentationConfig()
    if rng is None:
        raise ValueError("augment draws random imperfections: pass rng=numpy.random.default_rng(seed)")
    x = (grid or GridConfig()).two_theta()
    pattern = np.asarray(pattern, dtype=np.float64)
    if pattern.shape != x.shape or (impurity is not None and np.shape(impurity) != x.shape):
        raise ValueError(f"patterns must have the grid's {len(x)} points, got {pattern.shape}"
                         + ("" if impurity is None else f" and {np.shape(impurity)}"))
    imperfections = draw_imperfections(config, rng, with_impurity=impurity is not None)
    y = apply_imperfections(pattern, imperfections, x, rng, impurity)
    return scale_input(y - y.min(), config.sqrt_scale)


def _unit_max(y) -> np.ndarray:
    y = np.asarray(y, dtype=np.float64)
    top = y.max()
    if not top > 0.0:
        raise ValueError("a pattern must have a positive maximum")
    return y / top
