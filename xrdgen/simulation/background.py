"""The Gaussian-process background of the imperfections: b(2θ) with RBF kernel k(d) = exp(-d² / 2l²).

The GP is sampled exactly on nodes spaced l/5 (covariance factor cached per node count, since in
units of l it depends on nothing else) and interpolated to the grid by cubic Lagrange polynomials,
which is smooth at that scale. `background` makes it non-negative and of a given weight.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Optional

import numpy as np
from numba import njit

GP_NODES_PER_LENGTH_SCALE = 5


@lru_cache(maxsize=512)
def _rbf_factor(n_nodes: int) -> np.ndarray:
    """A with A Aᵀ = K, K_ij = exp(-(i - j)² / (2 · nodes_per_length²)): the RBF covariance on the nodes."""
    lag = np.arange(n_nodes)[:, None] - np.arange(n_nodes)[None, :]
    cov = np.exp(-(lag**2) / (2.0 * GP_NODES_PER_LENGTH_SCALE**2))
    values, vectors = np.linalg.eigh(cov)  # robust where Cholesky fails: K is nearly singular
    return np.ascontiguousarray(vectors * np.sqrt(np.clip(values, 0.0, None)))


@njit(cache=True)
def _interpolate_nodes(values, first, spacing, x):
    """Cubic Lagrange interpolation of node values (node k at first + k · spacing) at ascending points
    x: per node interval the cubic c0 + c1 t + c2 t² + c3 t³ through its four nearest nodes."""
    n_nodes, n_draws = values.shape
    out = np.empty((n_draws, x.shape[0]))
    for s in range(n_draws):
        k_now = -1
        c0 = c1 = c2 = c3 = 0.0
        for i in range(x.shape[0]):
            u = (x[i] - first) / spacing
            k = min(max(int(math.floor(u)), 1), n_nodes - 3)
            if k != k_now:
                a, b, c, d = values[k - 1, s], values[k, s], values[k + 1, s], values[k + 2, s]
                c0, c1 = b, -a / 3.0 - b / 2.0 + c - d / 6.0
                c2, c3 = a / 2.0 - b + c / 2.0, (d - a) / 6.0 + (b - c) / 2.0
                k_now = k
            t = u - k
            out[s, i] = c0 + t * (c1 + t * (c2 + t * c3))
    return out


def gp_sample(x: np.ndarray, length_scale: float, rng: np.random.Generator, size: Optional[int] = None) -> np.ndarray:
    """Draw(s) of a zero-mean GP with kernel exp(-d² / 2 l²) at the points x (ascending)."""
    x = np.asarray(x, dtype=np.float64)
    spacing = length_scale / GP_NODES_PER_LENGTH_SCALE
    n_nodes = int(math.ceil((x[-1] - x[0]) / spacing)) + 4  # one node before x[0], two after x[-1]
    draws = _rbf_factor(n_nodes) @ rng.standard_normal((n_nodes, 1 if size is None else size))
    values = _interpolate_nodes(draws, x[0] - spacing, spacing, x)
    return values[0] if size is None else values


def background(x: np.ndarray, length_scale: float, scale: float, rng: np.random.Generator) -> np.ndarray:
    """(b - min b) / Σ(b - min b) · scale for a GP draw b: non-negative, summing to `scale` over the grid."""
    if scale == 0.0:
        return np.zeros(len(x))
    b = gp_sample(x, length_scale, rng)
    b -= b.min()
    return b / b.sum() * scale
