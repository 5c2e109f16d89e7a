"""Peak profiles summed onto the 2θ grid, each evaluated exactly only where the fine grid needs it.

Every peak p has an area a_p, a centre c_p and split widths: FWHM Γ_lo below the centre and Γ_hi
above it (equal without asymmetry). Its profile is η·G + (1 - η)·L with

    G(d) = 2 / (√(2π) (σ_lo + σ_hi)) · exp(-d² / 2σ²),   σ = Γ / (2 √(2 ln 2)),
    L(d) = 2 / (π (γ_lo + γ_hi)) · γ² / (d² + γ²),         γ = Γ / 2,

σ and γ those of the side of d; both have unit area, so a peak adds exactly a_p to the pattern's
integral (Toraya's split pseudo-Voigt; symmetric when Γ_lo = Γ_hi).

Why levels: a Lorentzian's tails never end (1.3 % of its area lies beyond ±50 Γ), so summing them
point by point costs thousands of grid points per peak. Far from its centre a profile is smooth on
the scale of the distance, so it is evaluated on coarser grids there. Level ℓ has step 8^ℓ · h
(h the grid step; four levels, the coarsest spans the grid with ~20 nodes) and

    pattern = I₁[ I₂[ I₃[A₃] + C₂ ] + C₁ ] + C₀,

where I_ℓ is 4-point (cubic Lagrange) interpolation from level ℓ to the next finer one, A₃ holds
every Lorentzian at every coarsest node (no truncation: the tails reach the whole grid), and C_ℓ
holds, for nodes within R_ℓ of a peak, its exact value minus the interpolation of its level-(ℓ+1)
values. I is linear, so a peak is exact wherever it has a correction and interpolated from a coarser
level only beyond R_ℓ, where the cubic interpolation error 0.0234 · H⁴ · |L⁗(d)| ≈ 2.8 A γ² H⁴ / d⁶
(H the coarser step) is below TOLERANCE times the reference height, a lower bound of the pattern's
maximum (0.6 a / Γ of its highest peak). A profile resolved on a level (Γ ≥ 16 steps, 12 for a
Gaussian; 64 for split profiles, whose second derivative jumps at the centre) needs no finer
corrections, and a Gaussian part is simply added on the coarsest level that resolves it, out to where
it falls below GAUSSIAN_TOLERANCE of the reference (at most ±6σ). A weak Lorentzian is instead drawn
directly on the fine grid when that is cheaper: out to where its tail is DIRECT_TOLERANCE of the
reference, the rest of its tail dropped. Widths below 3 grid steps are averaged over each grid bin
near the centre (differences of erf and arctan), so that even a peak narrower than one step keeps
its area.

Cost: a few hundred evaluations per peak, against 100 Γ / h before. Accuracy (tests/test_simulation.py
against every profile evaluated at every point, on real patterns): < 2e-4 of the maximum, against
4e-3 for the former ±50 Γ truncation; a Lorentzian's area is kept within 5e-4 (1e-3 below 0.01°).
Point values of a split profile near its kink miss up to ~1e-4 of its area (4e-4 at 3.5 steps).
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

FWHM_PER_SIGMA = 2.0 * math.sqrt(2.0 * math.log(2.0))  # 2.3548...
GAUSSIAN_WINDOW_SIGMAS = 6.0  # area outside ±6σ is 2e-9
GAUSSIAN_TOLERANCE = 1e-6  # a Gaussian is cut where it falls below this times the reference height
GAUSSIAN_RESOLVED_STEPS = 12.0  # Γ >= 12 steps: cubic interpolation within 1e-4 of a Gaussian's height
LEVEL_RATIO = 8  # each level's step is 8 times the finer one's
N_LEVELS = 4  # fine grid + three coarser levels
RESOLVED_STEPS = 16.0  # a profile with Γ >= 16 steps of a level is interpolated from it accurately
SPLIT_RESOLVED_STEPS = 64.0  # the same for split profiles (jump of the second derivative at the centre)
NARROW_STEPS = 3.0  # Γ below 3 grid steps: bin averages near the centre
TOLERANCE = 1e-4  # interpolation error allowed per peak, relative to the reference height
DIRECT_TOLERANCE = 1e-5  # height of a cut Lorentzian tail (cuts add up: stricter)


@njit(cache=True)
def _lagrange_weights():
    """W[r, s]: weight of coarse node k - 1 + s at fine offset r / 8 past node k (cubic Lagrange)."""
    w = np.empty((LEVEL_RATIO, 4))
    for r in range(LEVEL_RATIO):
        t = r / LEVEL_RATIO
        w[r, 0] = -t * (t - 1.0) * (t - 2.0) / 6.0
        w[r, 1] = (t + 1.0) * (t - 1.0) * (t - 2.0) / 2.0
        w[r, 2] = -(t + 1.0) * t * (t - 2.0) / 2.0
        w[r, 3] = (t + 1.0) * t * (t - 1.0) / 6.0
    return w


@njit(cache=True)
def _lorentz(d, amp, g_lo, g_hi):
    """Split Lorentzian point value: amp · γ² / (d² + γ²), γ of d's side."""
    g = g_lo if d < 0.0 else g_hi
    return amp * g * g / (d * d + g * g)


@njit(cache=True)
def _lorentz_bin(d, h, amp, g_lo, g_hi):
    """Average of the split Lorentzian over [d - h/2, d + h/2]: γ (atan(u₂/γ) - atan(u₁/γ)) per side."""
    lo, hi = d - 0.5 * h, d + 0.5 * h
    total = 0.0
    if lo < 0.0:
        total += g_lo * (math.atan(min(hi, 0.0) / g_lo) - math.atan(lo / g_lo))
    if hi > 0.0:
        total += g_hi * (math.atan(hi / g_hi) - math.atan(max(lo, 0.0) / g_hi))
    return amp * total / h


@njit(cache=True)
def _gauss_bin(d, h, amp, s_lo, s_hi):
    """Average of the split Gaussian over [d - h/2, d + h/2]: σ √(π/2) (erf(u₂/σ√2) - erf(u₁/σ√2)) per side."""
    lo, hi = d - 0.5 * h, d + 0.5 * h
    total = 0.0
    root2 = math.sqrt(2.0)
    if lo < 0.0:
        total += s_lo * (math.erf(min(hi, 0.0) / (s_lo * root2)) - math.erf(lo / (s_lo * root2)))
    if hi > 0.0:
        total += s_hi * (math.erf(hi / (s_hi * root2)) - math.erf(max(lo, 0.0) / (s_hi * root2)))
    return amp * total * math.sqrt(math.pi / 2.0) / h


@njit(cache=True)
def _add_gauss_side(arr, first, origin, step, centre, amp, sigma, j0, j1):
    """arr[j - first] += amp · exp(-(x_j - centre)² / 2σ²) for nodes j0..j1, by products only:
    e_{j+1} = e_j · r_j and r_{j+1} = r_j · c with r_j = exp(-(2 d_j Δ + Δ²) / 2σ²), c = exp(-Δ²/σ²)
    (exact algebra, d_j = x_j - centre)."""
    if j1 < j0:
        return
    inv2s2 = 1.0 / (2.0 * sigma * sigma)
    d = origin + j0 * step - centre
    value = amp * math.exp(-d * d * inv2s2)
    ratio = math.exp(-(2.0 * d * step + step * step) * inv2s2)
    c = math.exp(-2.0 * step * step * inv2s2)
    for j in range(j0, j1 + 1):
        arr[j - first] += value
        value *= ratio
        ratio *= c


@njit(cache=True)
def _add_lorentz(arr, shift, x0, step, j0, j1, c, amp, g_lo, g_hi):
    """arr[j + shift] += split Lorentzian point value at x0 + j · step, j0..j1 (one plain loop per side)."""
    jm = min(max(int(math.ceil((c - x0) / step)), j0), j1 + 1)  # first node at or above the centre
    g2 = g_lo * g_lo
    for j in range(j0, jm):
        d = x0 + j * step - c
        arr[j + shift] += amp * g2 / (d * d + g2)
    g2 = g_hi * g_hi
    for j in range(jm, j1 + 1):
        d = x0 + j * step - c
        arr[j + shift] += amp * g2 / (d * d + g2)


@njit(cache=True)
def _correct(arr, shift, x0, step, j0, j1, c, amp, g_lo, g_hi, coarse_values, k0, weights):
    """arr[j + shift] += L(x_j) - Σ_s W[r, s] coarse_values[k - 1 + s - k0] for nodes j = 8k + r in
    j0..j1: the exact split Lorentzian minus its interpolation from the coarser level, one pass."""
    for k in range(j0 // LEVEL_RATIO, j1 // LEVEL_RATIO + 1):
        s = k - 1 - k0
        v0, v1, v2, v3 = coarse_values[s], coarse_values[s + 1], coarse_values[s + 2], coarse_values[s + 3]
        base = k * LEVEL_RATIO
        for r in range(max(j0 - base, 0), min(j1 - base, LEVEL_RATIO - 1) + 1):
            d = x0 + (base + r) * step - c
            g = g_lo if d < 0.0 else g_hi
            arr[base + r + shift] += amp * g * g / (d * d + g * g) - (
                weights[r, 0] * v0 + weights[r, 1] * v1 + weights[r, 2] * v2 + weights[r, 3] * v3
            )


@njit(cache=True)
def _bin_core(out, x0, h, j0, j1, c, amp, g_lo, g_hi, f_min, f_max):
    """Replace point values of a narrow Lorentzian by bin averages within 3 Γ + 3 h of its centre."""
    if f_min >= NARROW_STEPS * h:
        return
    core = 3.0 * f_max + 3.0 * h
    for j in range(max(j0, int(math.ceil((c - core - x0) / h))), min(j1, int(math.floor((c + core - x0) / h))) + 1):
        d = x0 + j * h - c
        out[j] += _lorentz_bin(d, h, amp, g_lo, g_hi) - _lorentz(d, amp, g_lo, g_hi)


@njit(cache=True)
def _own_radius(gamma, relative_height, coarse):
    """Distance beyond which cubic interpolation from step `coarse` errs by less than TOLERANCE times
    the reference height, for a Lorentzian of half width `gamma` and height `relative_height` times
    the reference: 2.8 A γ² H⁴ / (d - H)⁶ <= TOLERANCE · reference."""
    far = (2.8 * relative_height * gamma * gamma / TOLERANCE) ** (1.0 / 6.0) * coarse ** (2.0 / 3.0)
    return max(far + coarse, 2.0 * gamma + 2.0 * coarse)


@njit(cache=True)
def _levels(n, h):
    """Steps, sizes and flat offsets of the levels; level ℓ >= 1 has nodes j = -2 .. size - 3 at
    x0 + j · step (array index j + 2), enough for every stencil of the next finer level."""
    steps = np.empty(N_LEVELS)
    sizes = np.empty(N_LEVELS, dtype=np.int64)
    offsets = np.zeros(N_LEVELS, dtype=np.int64)
    steps[0], sizes[0] = h, n
    total = 0
    for level in range(1, N_LEVELS):
        steps[level] = steps[level - 1] * LEVEL_RATIO
        sizes[level] = (n - 1) // LEVEL_RATIO + 6 if level == 1 else (sizes[level - 1] - 3) // LEVEL_RATIO + 5
        offsets[level] = total
        total += sizes[level]
    return steps, sizes, offsets, total


@njit(cache=True)
def render_profiles(out, x0, h, centres, areas, fwhm_lo, fwhm_hi, eta):
    """out[i] += Σ_p area_p · (η G_p + (1 - η) L_p)(x0 + i h); see the module docstring.

    Errors are bounded relative to the reference height, a lower bound of the pattern's maximum
    (0.6 a / Γ of the highest peak), so a weak peak may be cut or corrected where its own height
    allows: each Lorentzian takes the cheaper of a direct window (to where its tail falls below
    TOLERANCE times the reference) and the levels.
    """
    n = out.shape[0]
    weights = _lagrange_weights()
    steps, sizes, offsets, total = _levels(n, h)
    coarse = np.zeros(total)
    used = np.zeros(N_LEVELS, dtype=np.bool_)
    top = N_LEVELS - 1
    scratch = np.empty(sizes[1] + 8)
    radius = np.zeros(N_LEVELS)
    reference = 0.0
    for p in range(centres.shape[0]):
        reference = max(reference, 0.6 * areas[p] / max(0.5 * (fwhm_lo[p] + fwhm_hi[p]), h))
    if not reference > 0.0:
        return

    for p in range(centres.shape[0]):
        c, a = centres[p], areas[p]
        f_lo, f_hi = fwhm_lo[p], fwhm_hi[p]
        f_min, f_max = min(f_lo, f_hi), max(f_lo, f_hi)
        needed = SPLIT_RESOLVED_STEPS if f_lo != f_hi else RESOLVED_STEPS
        resolved = 0  # coarsest level on which the profile is resolved
        for level in range(1, N_LEVELS):
            if f_min >= needed * steps[level]:
                resolved = level

        s_lo, s_hi = f_lo / FWHM_PER_SIGMA, f_hi / FWHM_PER_SIGMA
        amp = a * eta * 2.0 / (math.sqrt(2.0 * math.pi) * (s_lo + s_hi))
        if eta > 0.0 and amp > GAUSSIAN_TOLERANCE * reference:
            # Gaussian part: on the coarsest level that resolves it, out to where it falls below
            # GAUSSIAN_TOLERANCE times the reference height (at most ±6σ).
            g_level = 0
            g_needed = SPLIT_RESOLVED_STEPS if f_lo != f_hi else GAUSSIAN_RESOLVED_STEPS
            for level in range(1, N_LEVELS):
                if f_min >= g_needed * steps[level]:
                    g_level = level
            sigmas = min(GAUSSIAN_WINDOW_SIGMAS, math.sqrt(2.0 * math.log(amp / (GAUSSIAN_TOLERANCE * reference))))
            step = steps[g_level]
            if g_level == 0:
                first, last = 0, n - 1
                arr = out
            else:
                first, last = -2, sizes[g_level] - 3
                arr = coarse[offsets[g_level] : offsets[g_level] + sizes[g_level]]
                used[g_level] = True
            j_c = int(math.floor((c - x0) / step))  # last node below or at the centre
            narrow = g_level == 0 and f_min < NARROW_STEPS * h
            reach = h if narrow else 0.0  # a bin average reaches half a step beyond its node
            j_lo = max(first, int(math.ceil((c - sigmas * s_lo - reach - x0) / step)))
            j_hi = min(last, int(math.floor((c + sigmas * s_hi + reach - x0) / step)))
            if narrow:
                for j in range(j_lo, j_hi + 1):
                    arr[j - first] += _gauss_bin(x0 + j * h - c, h, amp, s_lo, s_hi)
            else:
                below = x0 + j_c * step == c
                _add_gauss_side(arr, first, x0, step, c, amp, s_lo, j_lo, min(j_c - 1 if below else j_c, j_hi))
                _add_gauss_side(arr, first, x0, step, c, amp, s_hi, max(j_c if below else j_c + 1, j_lo), j_hi)

        if eta >= 1.0:
            continue
        # Lorentzian part.
        g_lo, g_hi = 0.5 * f_lo, 0.5 * f_hi
        amp = a * (1.0 - eta) * 2.0 / (math.pi * (g_lo + g_hi))
        relative = amp / reference
        # Option 1: direct, out to where the tail amp γ² / d² is DIRECT_TOLERANCE · reference.
        reach = math.sqrt(max(relative / DIRECT_TOLERANCE, 1.0))
        cut_lo = max(g_lo * reach, 3.0 * f_max + h)
        cut_hi = max(g_hi * reach, 3.0 * f_max + h)
        # Option 2: every coarsest node, corrections on finer levels near the centre; radii from
        # the finest corrected level up, nested so that each level's stencils only reach coarser
        # nodes where this peak is exact.
        inner = 0.0
        cost = sizes[top]
        for level in range(resolved, top):
            radius[level] = max(_own_radius(0.5 * f_max, relative, steps[level + 1]), inner)
            inner = radius[level] + 3.0 * steps[level + 1]
            cost += 2.0 * radius[level] / steps[level]
        if (cut_lo + cut_hi) / h <= 2.0 * cost:  # a direct point costs half a corrected node
            j0 = max(0, int(math.ceil((c - cut_lo - x0) / h)))
            j1 = min(n - 1, int(math.floor((c + cut_hi - x0) / h)))
            _add_lorentz(out, 0, x0, h, j0, j1, c, amp, g_lo, g_hi)
            _bin_core(out, x0, h, j0, j1, c, amp, g_lo, g_hi, f_min, f_max)
            continue
        base = offsets[top]
        for q in range(sizes[top]):
            coarse[base + q] += _lorentz(x0 + (q - 2) * steps[top] - c, amp, g_lo, g_hi)
        used[top] = True
        for level in range(top - 1, resolved - 1, -1):
            step, cstep = steps[level], steps[level + 1]
            if level == 0:
                first, last = 0, n - 1
            else:
                first, last = -2, sizes[level] - 3
                used[level] = True
            j0 = max(first, int(math.ceil((c - radius[level] - x0) / step)))
            j1 = min(last, int(math.floor((c + radius[level] - x0) / step)))
            if j1 < j0:
                continue
            k0 = j0 // LEVEL_RATIO - 1
            for k in range(k0, j1 // LEVEL_RATIO + 3):
                scratch[k - k0] = _lorentz(x0 + k * cstep - c, amp, g_lo, g_hi)
            if level == 0:
                arr, shift = out, 0
            else:
                arr, shift = coarse[offsets[level] : offsets[level] + sizes[level]], 2
            _correct(arr, shift, x0, step, j0, j1, c, amp, g_lo, g_hi, scratch, k0, weights)
            if level == 0:
                _bin_core(out, x0, h, j0, j1, c, amp, g_lo, g_hi, f_min, f_max)

    # Coarse to fine: every level adds the interpolation of the next coarser one.
    for level in range(top - 1, -1, -1):
        if not used[level + 1]:
            continue
        used[level] = True
        src = offsets[level + 1]
        if level == 0:
            for i in range(n):
                k = i // LEVEL_RATIO
                r = i - k * LEVEL_RATIO
                s = src + k + 1
                out[i] += (
                    weights[r, 0] * coarse[s]
                    + weights[r, 1] * coarse[s + 1]
                    + weights[r, 2] * coarse[s + 2]
                    + weights[r, 3] * coarse[s + 3]
                )
        else:
            dst = offsets[level]
            for q in range(sizes[level]):
                j = q - 2
                k = j // LEVEL_RATIO
                r = j - k * LEVEL_RATIO
                s = src + k + 1
                coarse[dst + q] += (
                    weights[r, 0] * coarse[s]
                    + weights[r, 1] * coarse[s + 1]
                    + weights[r, 2] * coarse[s + 2]
                    + weights[r, 3] * coarse[s + 3]
                )
