"""Imperfections: every drawn quantity follows its stated distribution, every step does what it says."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from xrdgen.config import AugmentationConfig, GridConfig
from xrdgen.simulation.background import background, gp_sample
from xrdgen.simulation.imperfections import Imperfections, apply_imperfections, augment, draw_imperfections, scale_input

GRID = GridConfig()
X = GRID.two_theta()
P_MIN = 1e-3  # seeded draws: a KS p-value below this would be a real mismatch
IMPERFECT = AugmentationConfig(background=True, additive_noise=True, multiplicative_noise=True, impurity=True)


def _pure(centres=(20.0, 31.5, 47.0, 70.2), widths=0.1, heights=(1.0, 0.4, 0.7, 0.2)):
    y = np.zeros_like(X)
    for c, h in zip(centres, heights):
        y += h * np.exp(-0.5 * ((X - c) / widths) ** 2)
    return y


@pytest.fixture(scope="module")
def many_draws():
    rng = np.random.default_rng(2024)
    config = IMPERFECT
    return [draw_imperfections(config, rng) for _ in range(4000)]


def test_drawn_parameters_follow_their_distributions(many_draws):
    config = IMPERFECT
    field = lambda name: np.array([getattr(d, name) for d in many_draws])  # noqa: E731
    checks = {
        "background_length_scale": stats.uniform(7.0, 33.0),
        "additive_sd": stats.uniform(0.0, config.additive_noise_sd_max),
        "multiplicative_sd": stats.uniform(0.0, config.multiplicative_noise_sd_max),
        "impurity_fraction": stats.uniform(0.0, config.impurity_fraction_max),
        # normal(0, 75) truncated to [0, 150]: scipy's bounds are in standard units.
        "background_scale": stats.truncnorm(0.0, 150.0 / 75.0, loc=0.0, scale=75.0),
    }
    for name, law in checks.items():
        assert stats.kstest(field(name), law.cdf).pvalue > P_MIN, name
    scales = field("background_scale")
    assert scales.min() >= 0.0 and scales.max() <= 150.0
    # The truncation bites: a plain half-normal would put 4.6 % above 150.
    assert np.mean(scales > 140) < 0.02


def test_switches_turn_imperfections_off():
    rng = np.random.default_rng(0)
    off = AugmentationConfig()  # the default: every imperfection off, as in the pure preset
    assert draw_imperfections(off, rng) == Imperfections()
    pure = _pure()
    out = augment(pure, off, rng, GRID, impurity=_pure(centres=(25, 60, 80, 85)))
    np.testing.assert_allclose(out, pure / pure.max(), atol=1e-7)


def test_gp_has_rbf_covariance():
    """Empirical covariance of many draws against k(d) = exp(-d²/2l²), also between spline nodes."""
    rng = np.random.default_rng(7)
    length = 10.0
    draws = gp_sample(X, length, rng, size=3000)
    assert draws.shape == (3000, len(X))
    assert abs(draws.mean()) < 0.05
    variance = draws.var(axis=0)
    assert variance.mean() == pytest.approx(1.0, abs=0.04)
    assert variance.min() > 0.85 and variance.max() < 1.15
    start = 2000  # 25° on the grid
    for lag_deg in (0.7, 2.0, 5.0, 10.0, 20.0, 30.0):
        lag = int(round(lag_deg / 0.01))
        r = np.corrcoef(draws[:, start], draws[:, start + lag])[0, 1]
        assert r == pytest.approx(np.exp(-(lag_deg**2) / (2 * length**2)), abs=0.05), lag_deg
    # Each point's marginal is standard normal.
    assert stats.kstest(draws[:, 4321], "norm").pvalue > P_MIN


def test_background_is_nonnegative_with_the_drawn_weight():
    rng = np.random.default_rng(3)
    for scale in (0.5, 75.0, 150.0):
        b = background(X, rng.uniform(7, 40), scale, rng)
        assert b.min() == pytest.approx(0.0, abs=1e-12)
        assert b.sum() == pytest.approx(scale, rel=1e-12)
    # And apply_imperfections adds exactly that to the max-1 pure pattern.
    pure = _pure()
    imp = Imperfections(background_length_scale=12.0, background_scale=100.0)
    y = apply_imperfections(pure * 3.0, imp, X, np.random.default_rng(9))
    b = background(X, 12.0, 100.0, np.random.default_rng(9))
    np.testing.assert_allclose(y, pure / pure.max() + b, atol=1e-12)


def test_additive_noise_has_the_drawn_sd():
    pure = _pure()
    residuals = []
    rng = np.random.default_rng(4)
    for sd in (0.002, 0.01, 0.02):
        y = apply_imperfections(pure, Imperfections(additive_sd=sd), X, rng)
        r = (y - pure) / sd
        assert r.std() == pytest.approx(1.0, abs=0.03)
        residuals.append(r)
    assert stats.kstest(np.concatenate(residuals), "norm").pvalue > P_MIN


def test_multiplicative_noise_has_mean_one_and_the_drawn_sd():
    pure = _pure(widths=2.0)  # broad peaks: ~2,000 points to estimate the sd from
    peaks = pure > 0.05
    rng = np.random.default_rng(5)
    factors = []
    for sd in (0.05, 0.16):
        y = apply_imperfections(pure, Imperfections(multiplicative_sd=sd), X, rng)
        f = y[peaks] / pure[peaks]
        assert f.mean() == pytest.approx(1.0, abs=4 * sd / np.sqrt(peaks.sum()))
        assert f.std() == pytest.approx(sd, rel=0.06)
        factors.append((f - 1.0) / sd)
    assert stats.kstest(np.concatenate(factors), "norm").pvalue > P_MIN


def test_impurity_mixing():
    pure, other = _pure(), 5.0 * _pure(centres=(22, 40, 60, 88))
    y = apply_imperfections(pure, Imperfections(impurity_fraction=0.04), X, np.random.default_rng(0), impurity=other)
    mix = 0.96 * pure / pure.max() + 0.04 * other / other.max()
    np.testing.assert_allclose(y, mix / mix.max(), atol=1e-12)
    assert y[np.argmin(np.abs(X - 22))] == pytest.approx(0.04 / mix.max(), rel=1e-6)  # impurity peak shows


def test_augment_output_is_reproducible_float32_max_one_and_sqrt_scaled():
    pure, other = _pure(), _pure(centres=(22, 40, 60, 88))
    config = IMPERFECT
    a = augment(pure, config, np.random.default_rng(42), GRID, impurity=other)
    b = augment(pure, config, np.random.default_rng(42), GRID, impurity=other)
    assert a.dtype == np.float32 and a.shape == X.shape
    np.testing.assert_array_equal(a, b)
    assert a.max() == pytest.approx(1.0) and a.min() == 0.0  # shifted and scaled like a measured pattern
    assert not np.allclose(a, pure / pure.max(), atol=1e-3)
    root = augment(pure, config.model_copy(update={"sqrt_scale": True}), np.random.default_rng(42), GRID, impurity=other)
    np.testing.assert_allclose(root, np.sqrt(a), atol=1e-6)
    np.testing.assert_allclose(scale_input(4 * pure, True), np.sqrt(pure / pure.max()), atol=1e-6)


def test_augment_refuses_mismatched_input():
    with pytest.raises(ValueError, match="8501"):
        augment(np.ones(100), IMPERFECT, np.random.default_rng(0), GRID)
    with pytest.raises(ValueError, match="rng"):
        augment(_pure(), IMPERFECT, None, GRID)
    small = GridConfig(two_theta_min=10, two_theta_max=50, step=0.02)
    out = augment(np.exp(-((small.two_theta() - 30) ** 2)), IMPERFECT, np.random.default_rng(1), small)
    assert out.shape == (small.n_points,)
