"""Peak profiles on the 2θ grid: Gaussian with Scherrer width, pseudo-Voigt with Caglioti width, Kα2.

Every profile has unit area in degrees 2θ, so a peak of intensity I contributes I to the integral of
the pattern (before the pattern is scaled to a maximum of 1), and each peak is only evaluated within a
window of a few widths around its centre.

- Scherrer (seed S4.1, as the original): FWHM in 2θ radians β = K λ / (L cos θ), with K = 0.9, λ and L
  (crystallite size) in the same unit; the Gaussian σ = FWHM / (2 √(2 ln 2)).
- Caglioti (seed S4.2): Γ² = U tan² θ + V tan θ + W in degrees², Γ the FWHM of both parts of the
  pseudo-Voigt η·G + (1 - η)·L.
- Kα2 (optional): each Kα1 peak gets a twin at sin θ₂ = (λ₂/λ₁) sin θ₁ with a fixed intensity ratio.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))  # 2.3548...
GAUSSIAN_WINDOW_SIGMAS = 6.0  # area outside ±6σ is 2e-9
LORENTZ_WINDOW_FWHMS = 50.0  # area outside ±50Γ is 1.3 % (the pseudo-Voigt tails are long)
EXACT_CORE_STEPS = 10  # pseudo-Voigt: bin-averaged within max(3Γ, 10 steps), point values beyond


def scherrer_fwhm_deg(two_theta_deg, wavelength_angstrom: float, size_nm: float, k: float = 0.9):
    """Scherrer FWHM in degrees 2θ: β = K λ / (L cos θ) (λ in Å, L in nm converted to Å)."""
    theta = np.radians(np.asarray(two_theta_deg, dtype=np.float64) / 2.0)
    return np.degrees(k * wavelength_angstrom / (size_nm * 10.0 * np.cos(theta)))


def caglioti_fwhm_deg(two_theta_deg, u: float, v: float, w: float):
    """Caglioti FWHM in degrees: Γ = sqrt(U tan² θ + V tan θ + W), floored at 1e-6° to stay finite."""
    tan_theta = np.tan(np.radians(np.asarray(two_theta_deg, dtype=np.float64) / 2.0))
    return np.sqrt(np.maximum(u * tan_theta**2 + v * tan_theta + w, 1e-12))


def kalpha2_doublet(two_theta_deg, intensity, wavelength_1: float, wavelength_2: float, ratio: float):
    """Kα1 peaks plus their Kα2 twins (2θ₂ from sin θ₂ = λ₂/λ₁ sin θ₁, intensity × ratio), sorted."""
    two_theta_deg = np.asarray(two_theta_deg, dtype=np.float64)
    sin2 = np.sin(np.radians(two_theta_deg / 2.0)) * (wavelength_2 / wavelength_1)
    ok = sin2 < 1.0
    tt2 = np.degrees(2.0 * np.arcsin(sin2[ok]))
    tt = np.concatenate([two_theta_deg, tt2])
    inten = np.concatenate([intensity, ratio * np.asarray(intensity)[ok]])
    order = np.argsort(tt, kind="stable")
    return tt[order], inten[order]


@njit(cache=True)
def add_gaussians(out, grid_min, step, centres, areas, fwhms):
    """out[i] += Σ_p area_p · N(x_i; centre_p, σ_p), point values, each within ±6σ.

    exp is evaluated twice per peak: along the grid e_{i+1} = e_i · r_i and r_{i+1} = r_i · c with
    r_i = exp(-(2 d_i Δ + Δ²) / 2σ²) and c = exp(-Δ²/σ²), which is exact algebra (d_i = x_i - centre).
    """
    n = out.shape[0]
    for p in range(centres.shape[0]):
        sigma = fwhms[p] / FWHM_PER_SIGMA
        half = GAUSSIAN_WINDOW_SIGMAS * sigma
        i0 = max(0, int(math.ceil((centres[p] - half - grid_min) / step)))
        i1 = min(n - 1, int(math.floor((centres[p] + half - grid_min) / step)))
        if i1 < i0:
            continue
        inv2s2 = 1.0 / (2.0 * sigma * sigma)
        d = grid_min + i0 * step - centres[p]
        value = areas[p] / (sigma * math.sqrt(2.0 * math.pi)) * math.exp(-d * d * inv2s2)
        ratio = math.exp(-(2.0 * d * step + step * step) * inv2s2)
        c = math.exp(-2.0 * step * step * inv2s2)
        for i in range(i0, i1 + 1):
            out[i] += value
            value *= ratio
            ratio *= c


@njit(cache=True)
def add_pseudo_voigts(out, grid_min, step, centres, areas, fwhms, eta):
    """out[i] += Σ_p area_p · (η G + (1-η) L)(x_i), G and L of FWHM Γ_p, unit area each.

    Caglioti widths can be narrower than the grid step, so near the centre each value is the average
    of the profile over its grid bin (differences of the CDFs: erf and arctan), which keeps the area
    exact however narrow the peak; farther out the Lorentzian tail is smooth and point values suffice.
    """
    n = out.shape[0]
    for p in range(centres.shape[0]):
        gamma = fwhms[p]
        hwhm = 0.5 * gamma
        sigma = gamma / FWHM_PER_SIGMA
        core = max(3.0 * gamma, EXACT_CORE_STEPS * step)
        half = max(LORENTZ_WINDOW_FWHMS * gamma, core)
        i0 = max(0, int(math.ceil((centres[p] - half - grid_min) / step)))
        i1 = min(n - 1, int(math.floor((centres[p] + half - grid_min) / step)))
        if i1 < i0:
            continue
        g_norm = 1.0 / (sigma * math.sqrt(2.0))
        for i in range(i0, i1 + 1):
            d = grid_min + i * step - centres[p]
            if abs(d) <= core:
                lo, hi = d - 0.5 * step, d + 0.5 * step
                gauss = 0.5 * (math.erf(hi * g_norm) - math.erf(lo * g_norm)) / step
                lorentz = (math.atan(hi / hwhm) - math.atan(lo / hwhm)) / (math.pi * step)
            else:
                gauss = 0.0
                lorentz = hwhm / (math.pi * (d * d + hwhm * hwhm))
            out[i] += areas[p] * (eta * gauss + (1.0 - eta) * lorentz)
