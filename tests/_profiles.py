"""Peak-shape measurements shared by the simulation tests."""

from __future__ import annotations

import numpy as np


def half_maximum(x: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """(left half-maximum point, peak position, right half-maximum point) of the single peak in y,
    by linear interpolation between grid points."""
    top = int(np.argmax(y))
    half = y[top] / 2
    left = top - int(np.argmax(y[top::-1] < half))
    right = top + int(np.argmax(y[top:] < half))
    xl = np.interp(half, [y[left], y[left + 1]], [x[left], x[left + 1]])
    xr = np.interp(half, [y[right], y[right - 1]], [x[right], x[right - 1]])
    return float(xl), float(x[top]), float(xr)


def fwhm(x: np.ndarray, y: np.ndarray) -> float:
    """Full width at half maximum of the single peak in y."""
    xl, _, xr = half_maximum(x, y)
    return xr - xl
