"""The measured pattern every reader returns, and the one check of its 2θ axis that all readers share.

Points a diffractometer cannot have measured — 2θ ≤ 0° or ≥ 180° (RRUFF CSVs start at 2θ = 0 with
zero counts) — are dropped with a note instead of rejecting the file; so are runs of exactly zero
counts at either end (padding, not measurement: a detector counting for seconds never reads exactly
0 over a run of points, and treating the padding as measured would hide the real covered range).
So are isolated points out of 2θ order between in-order neighbours (RRUFF R040182 has 2θ = 4.76
between 44.75 and 44.77, a dropped digit). What cannot be repaired (too few points, a duplicated,
reversed or shuffled 2θ axis, a wavelength out of range) is a one-line `UserError` naming the file
and the point.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

import numpy as np

from xrdgen.config import WAVELENGTH_RANGE
from xrdgen.errors import UserError


@dataclass
class MeasuredPattern:
    """A pattern as measured: 2θ in degrees (strictly increasing, inside (0°, 180°)), intensity in the
    file's units; `notes` says what the reader dropped or assumed (the CLI prints them)."""

    two_theta: np.ndarray
    intensity: np.ndarray
    wavelength: Optional[float]  # Å, from the file; None when the file does not say
    source: str
    metadata: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.two_theta)


def is_float(text: str) -> bool:
    """Whether a file's field reads as a number (every reader's test for a data row)."""
    try:
        float(text)
        return True
    except ValueError:
        return False


def check_wavelength(path: Path | str, value: float, where: str) -> float:
    """A wavelength read from a file, or a one-line error when it is outside `WAVELENGTH_RANGE`."""
    lo, hi = WAVELENGTH_RANGE
    if not lo < value < hi:
        raise UserError(f"{path}: wavelength {value:g} Å {where} is outside {lo:g}–{hi:g} Å")
    return float(value)


def _stray_points(two_theta: np.ndarray) -> np.ndarray:
    """Isolated points out of 2θ order (a mistyped value such as 4.76 between 44.75 and 44.77).

    A point is stray when its neighbours are in order without it but not with it. Returned only if
    there are few (at most 1 in 1000, and at least one allowed) and the axis is strictly increasing
    once they are dropped; anything else (a reversed, shuffled or duplicated axis) stays an error.
    """
    if len(two_theta) < 3 or np.all(np.diff(two_theta) > 0):
        return np.zeros(0, dtype=np.int64)
    prev, mid, nxt = two_theta[:-2], two_theta[1:-1], two_theta[2:]
    stray = np.flatnonzero((prev < nxt) & ((mid <= prev) | (mid >= nxt))) + 1
    if len(stray) > max(1, len(two_theta) // 1000) or not np.all(np.diff(np.delete(two_theta, stray)) > 0):
        return np.zeros(0, dtype=np.int64)
    return stray


def checked_pattern(
    path: Path | str,
    two_theta: np.ndarray,
    intensity: np.ndarray,
    wavelength: Optional[float],
    metadata: dict,
    where: Callable[[int], str] = lambda i: f"2θ point {i + 1}",
) -> MeasuredPattern:
    """Drop unphysical and padding points (with notes), then require a strictly increasing 2θ axis.

    `where(i)` names the i-th point of the file as read (a line number for text files).
    """
    two_theta = np.asarray(two_theta, dtype=np.float64)
    intensity = np.asarray(intensity, dtype=np.float64)
    if len(two_theta) != len(intensity):
        raise UserError(f"{path}: {len(two_theta)} 2θ values but {len(intensity)} intensities")
    if not (np.all(np.isfinite(two_theta)) and np.all(np.isfinite(intensity))):
        i = int(np.argmin(np.isfinite(two_theta) & np.isfinite(intensity)))
        raise UserError(f"{path}: {where(i)}: NaN or infinite value")
    notes: list[str] = []
    index = np.arange(len(two_theta))
    outside = (two_theta <= 0) | (two_theta >= 180)
    if outside.any():
        bad = two_theta[outside]
        notes.append(f"dropped {int(outside.sum())} point(s) at 2θ outside (0°, 180°) ({bad.min():g}–{bad.max():g}°)")
        index = index[~outside]
    nonzero = np.flatnonzero(intensity[index] != 0)
    if len(nonzero) >= 2:  # a single zero at an end is a reading; a run of them is padding
        lead, trail = int(nonzero[0]), len(index) - 1 - int(nonzero[-1])
        start, stop = (lead if lead > 1 else 0), len(index) - (trail if trail > 1 else 0)
        for count, side in ((lead, "leading"), (trail, "trailing")):
            if count > 1:
                notes.append(f"dropped {count} {side} point(s) with zero counts (padding, not measured)")
        index = index[start:stop]
    if len(index) < 2:
        raise UserError(f"{path}: only {len(index)} data point inside (0°, 180°); a pattern needs at least 2")
    kept = two_theta[index]
    stray = _stray_points(kept)
    if len(stray):
        lines = ", ".join(f"{where(int(index[i]))} ({kept[i]:g}°)" for i in stray)
        notes.append(f"dropped {len(stray)} point(s) out of 2θ order between in-order neighbours: {lines}")
        index = np.delete(index, stray)
        kept = two_theta[index]
    step = np.diff(kept)
    if np.any(step == 0):
        i = int(np.argmax(step == 0)) + 1
        raise UserError(f"{path}: {where(int(index[i]))}: duplicated 2θ value {kept[i]:g}")
    if np.any(step < 0):
        i = int(np.argmax(step < 0)) + 1
        raise UserError(f"{path}: {where(int(index[i]))}: 2θ decreases ({kept[i - 1]:g} then {kept[i]:g})")
    if wavelength is not None:
        wavelength = check_wavelength(path, wavelength, "in the file")
    return MeasuredPattern(kept.copy(), intensity[index].copy(), wavelength, str(path), metadata, notes)
