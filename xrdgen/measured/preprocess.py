"""Bring a measured pattern onto the grid a trained model expects, by the steps the training patterns
went through, in order:

1. 2θ is converted to the model's wavelength through the d-spacing (Bragg, λ = 2 d sin θ):
   sin θ' = sin θ · λ_model / λ_measured; points whose θ' would not exist (sin θ' > 1) are dropped.
2. The pattern is resampled by linear interpolation onto the model's grid (GridConfig), but only
   inside the measured 2θ range.
3. Grid points the measurement does not cover are filled, and the covered fraction is reported.
   Choice (``fill="edge"``, default): each uncovered side takes the median intensity of the
   nearest 0.5° of measured data, so the filled part continues the background without a step that
   a convolutional network could mistake for a peak flank. ``fill="zero"`` fills with the measured
   minimum instead (0 after step 4), matching patterns simulated with nothing outside the range.
4. The minimum is subtracted and the pattern scaled to a maximum of 1 (as every training pattern).
5. If the model was trained on sqrt-scaled inputs (meta.json `sqrt_scale`), the square root is taken
   (steps 4-5 through `scale_input`, the scaling the training patterns got).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal, Optional

import numpy as np

from xrdgen.config import GridConfig
from xrdgen.errors import UserError
from xrdgen.measured.pattern import MeasuredPattern
from xrdgen.simulation.imperfections import scale_input

_EDGE_WINDOW_DEG = 0.5


@dataclass
class ModelInput:
    """A measured pattern on the model's grid, and what it took to get it there."""

    x: np.ndarray  # float32 (n_points,), the model's input
    two_theta: np.ndarray  # the model's grid (float64)
    covered_fraction: float  # share of grid points inside the measured range
    covered_range: tuple[float, float]  # measured 2θ range at the model's wavelength
    wavelength: float  # Å, the measurement's wavelength used for the conversion
    wavelength_source: str  # "file", "command line" or "assumed (model's)"
    points_dropped: int  # measured points beyond 2θ = 180° after the conversion
    notes: list[str] = field(default_factory=list)  # what the reader and the conversion dropped


def convert_wavelength(two_theta: np.ndarray, from_wavelength: float, to_wavelength: float) -> np.ndarray:
    """2θ of the same d-spacings at another wavelength (Bragg: λ = 2 d sin θ); NaN where unreachable."""
    sin_theta = np.sin(np.radians(two_theta) / 2.0) * (to_wavelength / from_wavelength)
    out = np.full_like(two_theta, np.nan, dtype=np.float64)
    ok = sin_theta < 1.0
    out[ok] = 2.0 * np.degrees(np.arcsin(sin_theta[ok]))
    return out


def preprocess(
    pattern: MeasuredPattern,
    grid: GridConfig,
    model_wavelength: float,
    sqrt_scale: bool = False,
    wavelength: Optional[float] = None,
    fill: Literal["edge", "zero"] = "edge",
) -> ModelInput:
    """The model's input for a measured pattern (steps 1-5 of the module docstring); the reader's notes
    are carried over and a note is added for points lost to the wavelength conversion.

    `wavelength` (the command line's) overrides the file's; with neither, the model's is assumed.
    """
    if wavelength is not None:
        source_wavelength, said_by = float(wavelength), "command line"
    elif pattern.wavelength is not None:
        source_wavelength, said_by = float(pattern.wavelength), "file"
    else:
        source_wavelength, said_by = float(model_wavelength), "assumed (model's)"

    two_theta = pattern.two_theta
    intensity = pattern.intensity
    if not math.isclose(source_wavelength, model_wavelength, rel_tol=1e-9):
        two_theta = convert_wavelength(two_theta, source_wavelength, model_wavelength)
    reachable = np.isfinite(two_theta)
    dropped = int(np.count_nonzero(~reachable))
    two_theta, intensity = two_theta[reachable], intensity[reachable]
    if len(two_theta) < 2:
        raise UserError(f"{pattern.source}: no measured point is reachable at the model's wavelength {model_wavelength} Å")

    grid_two_theta = grid.two_theta()
    lo, hi = float(two_theta[0]), float(two_theta[-1])
    covered = (grid_two_theta >= lo) & (grid_two_theta <= hi)
    if not covered.any():
        raise UserError(
            f"{pattern.source}: the measured range {lo:.2f}–{hi:.2f}° (at {model_wavelength} Å) "
            f"does not overlap the model's grid {grid.two_theta_min:g}–{grid.two_theta_max:g}°"
        )
    y = np.empty_like(grid_two_theta)
    y[covered] = np.interp(grid_two_theta[covered], two_theta, intensity)
    below, above = grid_two_theta < lo, grid_two_theta > hi
    if fill == "edge":
        y[below] = np.median(intensity[two_theta <= lo + _EDGE_WINDOW_DEG])
        y[above] = np.median(intensity[two_theta >= hi - _EDGE_WINDOW_DEG])
    elif fill == "zero":
        y[below | above] = y[covered].min()
    else:
        raise UserError(f"fill must be 'edge' or 'zero', not {fill!r}")

    y = y - y.min()
    if not y.max() > 0:
        raise UserError(f"{pattern.source}: the pattern is flat on the model's grid (no peaks to classify)")
    y = scale_input(y, sqrt_scale)
    return ModelInput(
        x=y.astype(np.float32),
        two_theta=grid_two_theta,
        covered_fraction=float(covered.mean()),
        covered_range=(lo, hi),
        wavelength=source_wavelength,
        wavelength_source=said_by,
        points_dropped=dropped,
        notes=list(pattern.notes)
        + ([f"dropped {dropped} point(s) beyond 2θ = 180° at the model's wavelength"] if dropped else []),
    )
