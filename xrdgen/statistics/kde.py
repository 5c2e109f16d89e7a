"""The kernel density estimates the generator samples from.

- Lattice KDE: scipy's `gaussian_kde` with Scott's rule over the unit-volume lattice parameters of
  one crystal system, or `DiagonalGaussianKDE` where a full-covariance KDE is undefined.
- Volume KDE: the denseness factor f = V_cell / V_atomic conditioned on V_atomic, as statsmodels'
  `KDEMultivariateConditional` with Gaussian kernels and normal-reference bandwidths
  (`volume_bandwidth`) defines it, sampled *exactly* as the mixture it is (`sample_denseness`)
  instead of the original's bounded rejection sampler. The functions take the (V_atomic, f) rows
  of one KDE: one space group's, or all space groups pooled (`model.Statistics.volume_kde`).
"""

from __future__ import annotations

import numpy as np
from scipy.stats import gaussian_kde

# Redraws before a sampler gives up (a KDE with almost no mass in the physical region).
MAX_REDRAWS = 10_000


class DiagonalGaussianKDE:
    """Fallback KDE for too few or degenerate samples: independent Gaussians around each sample.

    Bandwidth per column = Scott's factor n^(-1/(d+4)) × the column's standard deviation, or 5% of
    the column's mean magnitude where the samples do not vary. Same `resample(size, seed)` and
    `evaluate(points)` interface as scipy's `gaussian_kde`.
    """

    def __init__(self, samples: np.ndarray):
        self.dataset = np.asarray(samples, dtype=np.float64).T  # (d, n) like gaussian_kde
        d, n = self.dataset.shape
        std = self.dataset.std(axis=1)
        fallback = 0.05 * np.maximum(np.abs(self.dataset).mean(axis=1), 1e-3)
        self.bandwidth = np.where(std > 0, std * n ** (-1.0 / (d + 4)), fallback)

    def resample(self, size: int = 1, seed=None) -> np.ndarray:
        rng = np.random.default_rng(seed) if not isinstance(seed, np.random.Generator) else seed
        picks = rng.integers(self.dataset.shape[1], size=size)
        return self.dataset[:, picks] + self.bandwidth[:, None] * rng.standard_normal((self.dataset.shape[0], size))

    def evaluate(self, points: np.ndarray) -> np.ndarray:
        points = np.asarray(points, dtype=np.float64).reshape(self.dataset.shape[0], -1)
        z = (points[:, :, None] - self.dataset[:, None, :]) / self.bandwidth[:, None, None]
        norm = np.prod(np.sqrt(2 * np.pi) * self.bandwidth)
        return np.exp(-0.5 * (z * z).sum(axis=0)).mean(axis=1) / norm

    __call__ = evaluate


def lattice_kde(samples: np.ndarray):
    """scipy `gaussian_kde` (Scott's rule) over (n, d) samples, or a `DiagonalGaussianKDE`.

    The diagonal one stands in with fewer than d + 2 samples, or samples whose covariance is
    singular (a full-covariance KDE is then undefined).
    """
    samples = np.asarray(samples, dtype=np.float64)
    d = samples.shape[1]
    if len(samples) >= d + 2:
        try:
            return gaussian_kde(samples.T, bw_method="scott")
        except np.linalg.LinAlgError:
            pass
    return DiagonalGaussianKDE(samples)


def normal_reference_bandwidth(data: np.ndarray) -> np.ndarray:
    """statsmodels' normal-reference rule: 1.06 · std · n^(-1/(4+q)) per column, q = number of columns."""
    data = np.asarray(data, dtype=np.float64)
    n, q = data.shape
    return 1.06 * data.std(axis=0) * n ** (-1.0 / (4 + q))


def volume_bandwidth(volume_samples: np.ndarray) -> np.ndarray:
    """Normal-reference (h_f, h_V) of (V_atomic, f) rows, in statsmodels' column order (f, V_atomic).

    A column without spread (one structure, or identical ones) has no normal-reference bandwidth;
    it gets 5% of the column's mean magnitude instead, so the KDE stays defined.
    """
    columns = np.asarray(volume_samples, dtype=np.float64).reshape(-1, 2)[:, ::-1]
    bandwidth = normal_reference_bandwidth(columns) if len(columns) > 1 else np.zeros(2)
    return np.where(bandwidth > 0, bandwidth, 0.05 * np.abs(columns).mean(axis=0))


def _mixture_weights(v_atomic: float, v_samples: np.ndarray, bw_v: float) -> np.ndarray:
    """K_hV(V - V_i) relative to the largest (so a V far outside the data picks its nearest samples)."""
    z = (float(v_atomic) - v_samples) / bw_v
    log_w = -0.5 * z * z
    return np.exp(log_w - log_w.max())


def sample_denseness(
    volume_samples: np.ndarray, bandwidth: tuple[float, float], v_atomic: float, rng: np.random.Generator
) -> float:
    """Denseness factor f drawn exactly from statsmodels' conditional KDE p(f | V_atomic).

    `volume_samples` is (n, 2): (V_atomic, f) rows; `bandwidth` is (h_f, h_V). With Gaussian
    kernels K_h, the conditional density is a mixture:
        p(f | V) = Σ_i K_hV(V - V_i) K_hf(f - f_i) / Σ_i K_hV(V - V_i),
    so a draw is (1) pick sample i with weight K_hV(V - V_i), (2) f = f_i + h_f · N(0, 1).
    Draws with f <= 0 are redrawn (the density is truncated to f > 0). Weights are computed
    relative to the largest, so a V_atomic far outside the data still picks its nearest
    samples instead of dividing 0 by 0 as statsmodels' pdf would.
    """
    bw_f, bw_v = bandwidth
    f_samples = volume_samples[:, 1]
    cdf = np.cumsum(_mixture_weights(v_atomic, volume_samples[:, 0], bw_v))
    for _ in range(MAX_REDRAWS):
        i = int(np.searchsorted(cdf, rng.random() * cdf[-1], side="right"))
        i = min(i, len(cdf) - 1)
        f = f_samples[i] + bw_f * rng.standard_normal()
        if f > 0:
            return float(f)
    raise RuntimeError(f"no positive denseness factor in {MAX_REDRAWS} draws at V_atomic={v_atomic}")


def denseness_pdf(volume_samples: np.ndarray, bandwidth: tuple[float, float], f: np.ndarray, v_atomic: float) -> np.ndarray:
    """The untruncated conditional density p(f | V_atomic) that `sample_denseness` draws from."""
    bw_f, bw_v = bandwidth
    weights = _mixture_weights(v_atomic, volume_samples[:, 0], bw_v)
    weights /= weights.sum()
    f = np.atleast_1d(np.asarray(f, dtype=np.float64))
    u = (f[:, None] - volume_samples[None, :, 1]) / bw_f
    return (np.exp(-0.5 * u * u) / (np.sqrt(2 * np.pi) * bw_f)) @ weights
