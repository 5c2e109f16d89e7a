"""Where each peak sits and how wide it is: Scherrer, Caglioti, microstrain, asymmetry, shifts, Kα2.

All widths are FWHM in degrees 2θ; `render.py` turns them into unit-area profiles on the grid.

- Scherrer (the method's Gaussian profile, as the original): β = K λ / (L cos θ) in radians of 2θ,
  K = 0.9, λ and the crystallite size L in the same unit.
- Caglioti (the method's pseudo-Voigt): Γ_θ² = U tan² θ + V tan θ + W (degrees²). Γ_θ is a width in
  θ, not in 2θ: the original (ML4pXRDs, `train_dataset/generate_background_noise_utils.py`,
  `peak_function_pseudo_voigt`) evaluates the profile at θ = x/2 with Gaussian σ = Γ/(2√(2 ln 2)) and
  Lorentzian γ = Γ/2 "with respect to the width in theta". On the 2θ axis the FWHM is therefore
  2 Γ_θ, the width `line_profiles` gives; the pseudo-Voigt η·G + (1-η)·L has that FWHM in both parts.
- Microstrain (Stokes & Wilson 1944; Williamson & Hall, Acta Metall. 1, 22 (1953)): β = 4 ε tan θ
  in radians of 2θ for an upper-limit strain ε.
- Independent broadenings combine in quadrature, Γ² = Σ Γ_i² (exact for Gaussians; for the single-Γ
  pseudo-Voigt a documented approximation of the Voigt convolution).
- Axial-divergence asymmetry: split widths Γ_lo = Γ (1 + k) below the centre and Γ_hi = Γ (1 - k)
  above it, k = A cot 2θ clipped to ±0.5 (the cot 2θ dependence of axial divergence, Finger, Cox &
  Jephcoat, J. Appl. Cryst. 27, 892 (1994); the split profile of Toraya, J. Appl. Cryst. 23, 485
  (1990)). The mean width stays Γ; peaks below 90° tail towards low angles, above 90° the reverse.
- Zero shift z and sample displacement s: Δ2θ = z - 2 s cos θ / R (radians; goniometer radius R;
  Klug & Alexander, X-ray Diffraction Procedures, 2nd ed. 1974, ch. 5).
- Kα2 (optional): each Kα1 peak gets a twin at sin θ₂ = (λ₂/λ₁) sin θ₁ with a fixed intensity ratio.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

GAUSSIAN, PSEUDO_VOIGT = 0, 1  # profile kinds of `line_profiles`
MAX_ASYMMETRY = 0.5  # |k| of the split widths
MIN_FWHM_DEG = 1e-6  # keeps a zero Caglioti width finite


@njit(cache=True)
def line_profiles(
    two_theta,
    intensity,
    wavelength_1,
    wavelength_2,
    ratio,
    kind,
    size_nm,
    scherrer_k,
    u,
    v,
    w,
    strain,
    asymmetry,
    zero_shift_deg,
    displacement_over_radius,
):
    """Every line's (centre, area, FWHM below, FWHM above) in degrees 2θ, Kα2 twins appended.

    `kind` GAUSSIAN: Scherrer width of `size_nm`; PSEUDO_VOIGT: Caglioti width, with the Scherrer width
    of `size_nm` added in quadrature when it is > 0. `strain` (ε), `asymmetry` (A), the zero shift and
    the displacement s/R are 0 when off; `wavelength_2` <= 0 means no Kα2.
    """
    n1 = two_theta.shape[0]
    n = 2 * n1 if wavelength_2 > 0.0 else n1
    centres, areas = np.empty(n), np.empty(n)
    fwhm_lo, fwhm_hi = np.empty(n), np.empty(n)
    count = 0
    for line in range(2 if wavelength_2 > 0.0 else 1):
        wavelength = wavelength_1 if line == 0 else wavelength_2
        for p in range(n1):
            sin_theta = math.sin(math.radians(two_theta[p] / 2.0))
            if line == 1:
                sin_theta *= wavelength_2 / wavelength_1
                if sin_theta >= 1.0:
                    continue
            theta = math.asin(sin_theta)
            cos_theta, tan_theta = math.cos(theta), math.tan(theta)
            width2 = 0.0
            if kind == GAUSSIAN or size_nm > 0.0:
                scherrer = math.degrees(scherrer_k * wavelength / (size_nm * 10.0 * cos_theta))
                width2 += scherrer * scherrer
            if kind == PSEUDO_VOIGT:
                width2 += 4.0 * max(u * tan_theta * tan_theta + v * tan_theta + w, 0.0)
            if strain > 0.0:
                micro = math.degrees(4.0 * strain * tan_theta)
                width2 += micro * micro
            width = max(math.sqrt(width2), MIN_FWHM_DEG)
            k = 0.0
            if asymmetry > 0.0:
                cot = math.cos(2.0 * theta) / max(math.sin(2.0 * theta), 1e-12)
                k = min(max(asymmetry * cot, -MAX_ASYMMETRY), MAX_ASYMMETRY)
            centre = two_theta[p] if line == 0 else math.degrees(2.0 * theta)
            centres[count] = centre + zero_shift_deg - math.degrees(2.0 * displacement_over_radius * cos_theta)
            areas[count] = intensity[p] * (ratio if line == 1 else 1.0)
            fwhm_lo[count] = width * (1.0 + k)
            fwhm_hi[count] = width * (1.0 - k)
            count += 1
    return centres[:count], areas[:count], fwhm_lo[:count], fwhm_hi[:count]
