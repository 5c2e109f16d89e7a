"""X-ray atomic scattering factors: pymatgen's coefficient table, loaded once as arrays indexed by Z.

Why pymatgen's table: the simulator is proven against pymatgen's XRDCalculator, so both must use the
same fit. The form factor of an element at s = sin(θ)/λ = |g|/2 (Å⁻¹) is (De Graef & McHenry,
*Structure of Materials*, ch. 12, as pymatgen writes it)

    f(s) = Z - 41.78214 · s² · Σ_i a_i · exp(-b_i · s²),   i = 1..4.

Elements missing from the table (Es and heavier) have no form factor; `missing_elements` names them
so that callers can refuse such a crystal with a clear message instead of a wrong pattern.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pymatgen.analysis.diffraction as diffraction
from pymatgen.core.periodic_table import Element

# Prefactor of the s² term in the fit above (pymatgen's constant).
FORM_FACTOR_PREFACTOR = 41.78214
MAX_Z = 118


def _load_table() -> tuple[np.ndarray, np.ndarray]:
    """(MAX_Z + 1, 4, 2) coefficients (a_i, b_i) per Z and a (MAX_Z + 1,) mask of known elements."""
    path = Path(diffraction.__file__).parent / "atomic_scattering_params.json"
    params = json.loads(path.read_text())
    coeffs = np.zeros((MAX_Z + 1, 4, 2), dtype=np.float64)
    known = np.zeros(MAX_Z + 1, dtype=bool)
    for symbol, pairs in params.items():
        z = Element(symbol).Z
        coeffs[z, : len(pairs)] = np.asarray(pairs, dtype=np.float64)
        known[z] = True
    return coeffs, known


COEFFICIENTS, KNOWN = _load_table()


def missing_elements(numbers: np.ndarray) -> list[str]:
    """Symbols of the atomic numbers without a form factor (empty when all are known)."""
    numbers = np.asarray(numbers)
    bad = (numbers < 1) | (numbers > MAX_Z)
    bad[~bad] = ~KNOWN[numbers[~bad]]
    return sorted({Element.from_Z(int(z)).symbol if 1 <= z <= MAX_Z else f"Z={int(z)}" for z in numbers[bad]})
