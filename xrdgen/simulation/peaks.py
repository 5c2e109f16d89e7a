"""Peak positions and intensities of a powder pattern, compiled: the same physics as pymatgen's XRDCalculator.

Steps (pymatgen's `XRDCalculator.get_pattern`, following De Graef & McHenry ch. 11-12):

1. Reciprocal lattice a*, b*, c* (crystallographic, no 2π). Every reflection g = h a* + k b* + l c*
   with g_min <= |g| <= g_max, where |g| = 2 sin(θ)/λ (Bragg), lies inside the limiting sphere 2/λ.
   They are enumerated exactly: |h| <= g_max |a| bounds h, and for each (h, k) the admissible l form
   the interval where the quadratic |g(l)|² <= g_max².
2. Only one Friedel half-space (h, k, l) > 0 lexicographically is visited: form factors are real (no
   anomalous dispersion), so I(-g) = I(g) and the intensity is doubled, as pymatgen does.
3. Structure factor F(g) = Σ_e f_e(s) · DW(s) · Σ_{j ∈ e} occ_j · exp(2πi g·r_j), s = |g|/2, with
   f_e from `scattering.py` and DW = exp(-B s²) optional. The phases exp(2πi (h x + k y + l z)) are
   products of per-axis tables, so no sin/cos in the loop. Along one (h, k) row s² is a quadratic in
   l, so every exp(-b s²) of the form factors is carried from l to l + 1 by two multiplications
   (e_{l+1} = e_l r_l, r_{l+1} = r_l c: exact algebra) instead of one exp per reflection.
4. I = |F|² · LP · P with the Lorentz-polarization factor LP = (1 + cos² 2θ) / (sin² θ cos θ) and
   the March–Dollase preferred-orientation factor P (1 without texture, see `imperfections.py`),
   evaluated per reflection so that the equivalent planes of a merged peak each get their own.
5. Reflections closer than TWO_THETA_TOL in 2θ are merged (symmetry-equivalent planes and accidental
   coincidences) by summing their intensities; merged peaks weaker than RELATIVE_INTENSITY_TOL of the
   strongest are dropped (systematic absences that cancel only to rounding error).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit
from pymatgen.core import Structure

from xrdgen.crystal import Crystal
from xrdgen.simulation.scattering import COEFFICIENTS, FORM_FACTOR_PREFACTOR, missing_elements

TWO_THETA_TOL = 1e-5  # degrees, as pymatgen's AbstractDiffractionPatternCalculator
RELATIVE_INTENSITY_TOL = 1e-5  # pymatgen keeps peaks above 1e-3 on its 0-100 scale
NO_TEXTURE = np.zeros(3)  # preferred-orientation direction meaning "random powder"


@njit(cache=True)
def _reciprocal_rows(lattice):
    """a* = (b × c)/V etc.: rows of the crystallographic reciprocal lattice (inverse transpose)."""
    a, b, c = lattice[0], lattice[1], lattice[2]
    recip = np.empty((3, 3))
    recip[0] = np.cross(b, c)
    recip[1] = np.cross(c, a)
    recip[2] = np.cross(a, b)
    volume = np.dot(a, recip[0])
    return recip / volume


@njit(cache=True)
def _phase_tables(coords, n_max):
    """(cos, sin) tables: [m + n_max, j] = cos/sin(2π m x_j) for m in [-n_max, n_max], by powers
    of exp(2πi x_j) (one sin/cos per site instead of one per entry; error ~ m · 1e-16)."""
    re = np.empty((2 * n_max + 1, coords.shape[0]))
    im = np.empty((2 * n_max + 1, coords.shape[0]))
    for j in range(coords.shape[0]):
        angle = 2.0 * math.pi * coords[j]
        w_re, w_im = math.cos(angle), math.sin(angle)
        re[n_max, j], im[n_max, j] = 1.0, 0.0
        v_re, v_im = 1.0, 0.0
        for m in range(1, n_max + 1):
            v_re, v_im = v_re * w_re - v_im * w_im, v_re * w_im + v_im * w_re
            re[n_max + m, j], im[n_max + m, j] = v_re, v_im
            re[n_max - m, j], im[n_max - m, j] = v_re, -v_im
    return re, im


@njit(cache=True)
def _reflections(lattice, frac_coords, numbers, occupancies, coefficients, dw_b, wavelength, tt_min, tt_max, po_hkl, po_r):
    """Steps 1-4: 2θ (degrees, unsorted) and unscaled intensity of every reflection in the range."""
    g_min = 2.0 * math.sin(math.radians(tt_min) / 2.0) / wavelength
    g_max = 2.0 * math.sin(math.radians(min(tt_max, 180.0)) / 2.0) / wavelength
    g_min2, g_max2 = g_min * g_min, g_max * g_max
    recip = _reciprocal_rows(lattice)
    metric = recip @ recip.T
    bounds = np.empty(3, dtype=np.int64)
    for axis in range(3):
        bounds[axis] = int(math.floor(g_max * math.sqrt(np.dot(lattice[axis], lattice[axis])) + 1e-9))
    n_h, n_k, n_l = bounds[0], bounds[1], bounds[2]

    # Preferred orientation: unit normal n of the plane (po_hkl), Cartesian; g·n = h a*·n + k b*·n + l c*·n.
    texture = po_r != 1.0 and (po_hkl[0] != 0.0 or po_hkl[1] != 0.0 or po_hkl[2] != 0.0)
    normal = po_hkl[0] * recip[0] + po_hkl[1] * recip[1] + po_hkl[2] * recip[2]
    if texture:
        normal = normal / math.sqrt(np.dot(normal, normal))
    an, bn, cn = np.dot(recip[0], normal), np.dot(recip[1], normal), np.dot(recip[2], normal)
    r2, inv_r = po_r * po_r, 1.0 / po_r

    # Sites sorted by element, so that each element's partial structure factor is one contiguous
    # sum; phases as separate real and imaginary tables (plain float loops vectorise).
    n_sites = numbers.shape[0]
    order = np.argsort(numbers, kind="mergesort")
    elements = np.empty(n_sites, dtype=np.int64)
    seg = np.zeros(n_sites + 1, dtype=np.int64)
    n_elements = 0
    for idx in range(n_sites):
        z = numbers[order[idx]]
        if n_elements == 0 or elements[n_elements - 1] != z:
            elements[n_elements] = z
            seg[n_elements] = idx
            n_elements += 1
    seg[n_elements] = n_sites
    coords = np.empty((n_sites, 3))
    occ = np.empty(n_sites)
    for idx in range(n_sites):
        coords[idx] = frac_coords[order[idx]]
        occ[idx] = occupancies[order[idx]]
    n_terms = coefficients.shape[1]

    h_re, h_im = _phase_tables(coords[:, 0], n_h)
    k_re, k_im = _phase_tables(coords[:, 1], n_k)
    l_re, l_im = _phase_tables(coords[:, 2], n_l)
    hk_re = np.empty(n_sites)
    hk_im = np.empty(n_sites)
    # exp(-b s²) carried along l: value e, step ratio r and ratio of ratios c per (element, term);
    # the last row is the Debye-Waller exp(-B s²).
    e_val = np.empty(n_elements * n_terms + 1)
    e_ratio = np.empty(n_elements * n_terms + 1)
    e_step = np.empty(n_elements * n_terms + 1)
    b_of = np.empty(n_elements * n_terms + 1)
    for e in range(n_elements):
        for i in range(n_terms):
            b_of[e * n_terms + i] = coefficients[elements[e], i, 1]
    b_of[n_elements * n_terms] = dw_b
    n_exp = n_elements * n_terms + 1

    capacity = (2 * n_h + 1) * (2 * n_k + 1) * (2 * n_l + 1) // 2 + 1
    two_theta = np.empty(capacity)
    intensity = np.empty(capacity)
    count = 0
    g_ll = metric[2, 2]
    for h in range(0, n_h + 1):
        for k in range(-n_k if h > 0 else 0, n_k + 1):
            # |g|² = g_ll l² + lin l + const; admissible l lie between the roots of |g|² = g_max².
            lin = 2.0 * (h * metric[0, 2] + k * metric[1, 2])
            const = h * h * metric[0, 0] + k * k * metric[1, 1] + 2.0 * h * k * metric[0, 1]
            disc = lin * lin - 4.0 * g_ll * (const - g_max2)
            if disc < 0.0:
                continue
            root = math.sqrt(disc)
            l_lo = int(math.ceil((-lin - root) / (2.0 * g_ll) - 1e-9))
            l_hi = int(math.floor((-lin + root) / (2.0 * g_ll) + 1e-9))
            l_lo = max(l_lo, -n_l)
            l_hi = min(l_hi, n_l)
            if h == 0 and k == 0:
                l_lo = max(l_lo, 1)  # Friedel half-space, and no (000)
            if l_lo > l_hi:
                continue
            for j in range(n_sites):
                a_re, a_im = h_re[h + n_h, j], h_im[h + n_h, j]
                b_re, b_im = k_re[k + n_k, j], k_im[k + n_k, j]
                hk_re[j] = occ[j] * (a_re * b_re - a_im * b_im)
                hk_im[j] = occ[j] * (a_re * b_im + a_im * b_re)
            # s² = (g_ll l² + lin l + const) / 4: exp(-b s²) at l_lo, its ratio to l_lo + 1, and the
            # constant ratio of consecutive ratios exp(-b g_ll / 2).
            s2_lo = (g_ll * l_lo * l_lo + lin * l_lo + const) / 4.0
            d_lo = (g_ll * (2 * l_lo + 1) + lin) / 4.0
            for t in range(n_exp):
                b = b_of[t]
                e_val[t] = math.exp(-b * s2_lo)
                e_ratio[t] = math.exp(-b * d_lo)
                e_step[t] = math.exp(-b * g_ll / 2.0)
            dot_hk = h * an + k * bn
            for li in range(l_lo, l_hi + 1):
                g2 = g_ll * li * li + lin * li + const
                if g2 <= g_max2 and g2 >= g_min2 and g2 > 0.0:
                    s2 = g2 / 4.0
                    sin_theta = wavelength * math.sqrt(g2) / 2.0
                    if sin_theta < 1.0:
                        f_re, f_im = 0.0, 0.0
                        row_re, row_im = l_re[li + n_l], l_im[li + n_l]
                        for e in range(n_elements):
                            p_re, p_im = 0.0, 0.0
                            for j in range(seg[e], seg[e + 1]):
                                p_re += hk_re[j] * row_re[j] - hk_im[j] * row_im[j]
                                p_im += hk_re[j] * row_im[j] + hk_im[j] * row_re[j]
                            fit = 0.0
                            for i in range(n_terms):
                                fit += coefficients[elements[e], i, 0] * e_val[e * n_terms + i]
                            f = elements[e] - FORM_FACTOR_PREFACTOR * s2 * fit
                            f_re += f * p_re
                            f_im += f * p_im
                        dw = e_val[n_exp - 1]  # exp(-B s²), 1 when B = 0
                        sin2 = sin_theta * sin_theta
                        cos_2theta = 1.0 - 2.0 * sin2
                        lorentz_polarization = (1.0 + cos_2theta * cos_2theta) / (sin2 * math.sqrt(1.0 - sin2))
                        weight = 2.0 * lorentz_polarization * dw * dw
                        if texture:
                            gn = dot_hk + li * cn
                            cos2 = gn * gn / g2
                            x = r2 * cos2 + (1.0 - cos2) * inv_r
                            weight /= x * math.sqrt(x)  # (r² cos²α + sin²α / r)^(-3/2)
                        two_theta[count] = math.degrees(2.0 * math.asin(sin_theta))
                        intensity[count] = (f_re * f_re + f_im * f_im) * weight
                        count += 1
                for t in range(n_exp):
                    e_val[t] *= e_ratio[t]
                    e_ratio[t] *= e_step[t]
    return two_theta[:count], intensity[:count]


@njit(cache=True)
def _argsort(x):
    """Ascending order of x in O(n): n equal-width buckets, insertion sort inside each.

    Why not np.argsort: a comparison sort of ~600 reflections costs more than their structure
    factors; the 2θ values are spread fairly evenly, so buckets hold a few each (symmetry-equivalent
    reflections share one value and one bucket, which insertion sort passes in one step each).
    """
    n = x.shape[0]
    order = np.empty(n, dtype=np.int64)
    if n == 0:
        return order
    lo, hi = x.min(), x.max()
    scale = n / (hi - lo) if hi > lo else 0.0
    start = np.zeros(n + 1, dtype=np.int64)
    bucket = np.empty(n, dtype=np.int64)
    for i in range(n):
        bucket[i] = min(int((x[i] - lo) * scale), n - 1)
        start[bucket[i] + 1] += 1
    for b in range(n):
        start[b + 1] += start[b]
    fill = start[:n].copy()
    for i in range(n):
        order[fill[bucket[i]]] = i
        fill[bucket[i]] += 1
    for b in range(n):
        for p in range(start[b] + 1, start[b + 1]):
            item, value, q = order[p], x[order[p]], p - 1
            while q >= start[b] and x[order[q]] > value:
                order[q + 1] = order[q]
                q -= 1
            order[q + 1] = item
    return order


@njit(cache=True)
def _merge(two_theta, intensity, tol, relative_tol):
    """Step 5: sort, sum reflections within `tol` of a group's first member, drop negligible peaks."""
    order = _argsort(two_theta)
    merged_tt = np.empty(two_theta.shape[0])
    merged_i = np.empty(two_theta.shape[0])
    n = 0
    for idx in order:
        if n > 0 and two_theta[idx] - merged_tt[n - 1] < tol:
            merged_i[n - 1] += intensity[idx]
        else:
            merged_tt[n] = two_theta[idx]
            merged_i[n] = intensity[idx]
            n += 1
    if n == 0:
        return merged_tt[:0], merged_i[:0]
    top = merged_i[:n].max()
    kept = 0
    for idx in range(n):
        if merged_i[idx] > relative_tol * top:
            merged_tt[kept] = merged_tt[idx]
            merged_i[kept] = merged_i[idx] / top
            kept += 1
    return merged_tt[:kept], merged_i[:kept]


@njit(cache=True)
def compiled_peaks(lattice, frac_coords, numbers, occupancies, coefficients, dw_b, wavelength, tt_min, tt_max, po_hkl, po_r):
    """Merged peaks, intensities scaled to a maximum of 1 (all arrays already validated)."""
    tt, inten = _reflections(
        lattice, frac_coords, numbers, occupancies, coefficients, dw_b, wavelength, tt_min, tt_max, po_hkl, po_r
    )
    return _merge(tt, inten, TWO_THETA_TOL, RELATIVE_INTENSITY_TOL)


def as_crystal(crystal) -> Crystal:
    """Accept a Crystal or a pymatgen Structure (converted once)."""
    if isinstance(crystal, Crystal):
        return crystal
    if isinstance(crystal, Structure):
        return Crystal.from_structure(crystal)
    raise TypeError(f"expected a Crystal or a pymatgen Structure, got {type(crystal).__name__}")


def check_crystal(crystal: Crystal) -> None:
    """Refuse what the compiled code cannot simulate, with a message naming the problem."""
    if crystal.n_sites == 0:
        raise ValueError("the crystal has no atoms")
    missing = missing_elements(crystal.numbers)
    if missing:
        raise ValueError(f"no X-ray scattering factors for {', '.join(missing)}")
    if not crystal.volume > 1e-6:
        raise ValueError("the lattice is degenerate (zero volume)")


def peaks(
    crystal,
    wavelength: float = 1.54056,
    two_theta_min: float = 0.0,
    two_theta_max: float = 90.0,
    debye_waller_b: float = 0.0,
    preferred_hkl=NO_TEXTURE,
    march_dollase_r: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Merged peak list of a crystal: 2θ in degrees (ascending) and intensities scaled to max 1.

    `crystal` is a `Crystal` or a pymatgen `Structure`; `debye_waller_b` (Å²) multiplies every form
    factor by exp(-B s²), like pymatgen's `debye_waller_factors` with one B for all elements;
    `preferred_hkl` and `march_dollase_r` weight each reflection by the March–Dollase factor around
    the normal of the plane (hkl) (r = 1: none). Returns empty arrays when no reflection is in range.
    """
    crystal = as_crystal(crystal)
    check_crystal(crystal)
    return compiled_peaks(
        crystal.lattice,
        crystal.frac_coords,
        crystal.numbers,
        crystal.occupancies,
        COEFFICIENTS,
        float(debye_waller_b),
        float(wavelength),
        float(two_theta_min),
        float(two_theta_max),
        np.asarray(preferred_hkl, dtype=np.float64),
        float(march_dollase_r),
    )
