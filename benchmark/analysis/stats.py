"""Means and 95% confidence intervals over seeds, and paired differences between strategies.

Every number the report shows is an :class:`Estimate`: a mean, its CI bounds and the number of
seeds ``n`` behind it. With ``n < 2`` there is no interval (bounds are NaN) and the report says so.

* :func:`mean_ci` — Student-t interval ``mean ± t_{0.975, n-1} · s / sqrt(n)`` (the default), or
  a percentile bootstrap over seeds (Efron & Tibshirani 1993, §13.3).
* :func:`paired_bootstrap_ci` — CI of ``mean(a_i - b_i)`` over paired seeds: seeds are
  resampled *as pairs*, so seed-to-seed variation shared by both arms cancels.

Bootstraps are seeded (``numpy.random.default_rng(seed)``) and therefore deterministic.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
from scipy import stats as _scipy_stats

CONFIDENCE = 0.95
N_BOOTSTRAP = 10_000


@dataclasses.dataclass(frozen=True)
class Estimate:
    """A mean with its ``confidence`` interval ``[low, high]`` over ``n`` seeds (NaN bounds if n < 2)."""

    mean: float
    low: float
    high: float
    n: int

    @property
    def has_ci(self) -> bool:
        return self.n >= 2 and not (math.isnan(self.low) or math.isnan(self.high))

    def format(self, digits: int = 3, scale: float = 1.0) -> str:
        """``0.812 [0.790, 0.834] n=5``; ``0.812 (n=1, no CI)`` when there is no interval."""
        if math.isnan(self.mean):
            return f"— (n={self.n})"
        m = f"{self.mean * scale:.{digits}f}"
        if not self.has_ci:
            return f"{m} (n={self.n}, no CI)"
        return f"{m} [{self.low * scale:.{digits}f}, {self.high * scale:.{digits}f}] n={self.n}"


def _clean(values: Sequence[float] | np.ndarray) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    return x[np.isfinite(x)]


def mean_ci(
    values: Sequence[float] | np.ndarray,
    *,
    confidence: float = CONFIDENCE,
    method: str = "t",
    n_bootstrap: int = N_BOOTSTRAP,
    seed: int = 0,
) -> Estimate:
    """Mean of ``values: float[n]`` (non-finite entries dropped) with a two-sided CI.

    method: ``"t"`` (Student-t, exact for normal seeds, the default) or ``"bootstrap"``
    (percentile bootstrap with ``n_bootstrap`` resamples from ``default_rng(seed)``).
    With a zero standard deviation the interval collapses to the mean.
    """
    x = _clean(values)
    n = int(x.size)
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0)
    mean = float(x.mean())
    if n < 2:
        return Estimate(mean, math.nan, math.nan, n)
    if method == "t":
        half = float(_scipy_stats.t.ppf(0.5 + confidence / 2, df=n - 1)) * float(x.std(ddof=1)) / math.sqrt(n)
        return Estimate(mean, mean - half, mean + half, n)
    if method == "bootstrap":
        rng = np.random.default_rng(seed)
        idx = rng.integers(0, n, size=(n_bootstrap, n))
        low, high = _percentiles(x[idx].mean(axis=1), confidence)
        return Estimate(mean, low, high, n)
    raise ValueError(f"unknown CI method {method!r}; use 't' or 'bootstrap'")


def paired_bootstrap_ci(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    *,
    confidence: float = CONFIDENCE,
    n_bootstrap: int = N_BOOTSTRAP,
    seed: int = 0,
) -> Estimate:
    """Mean paired difference ``mean(a_i - b_i)`` with a percentile-bootstrap CI.

    a, b: float[n], element i of both from the same seed (pairs with a non-finite side are
    dropped). Resamples the n pairs with replacement ``n_bootstrap`` times.
    """
    a_arr = np.asarray(a, dtype=np.float64).reshape(-1)
    b_arr = np.asarray(b, dtype=np.float64).reshape(-1)
    if a_arr.shape != b_arr.shape:
        raise ValueError(f"paired arrays differ in length: {a_arr.size} vs {b_arr.size}")
    d = a_arr - b_arr
    d = d[np.isfinite(d)]
    n = int(d.size)
    if n == 0:
        return Estimate(math.nan, math.nan, math.nan, 0)
    mean = float(d.mean())
    if n < 2:
        return Estimate(mean, math.nan, math.nan, n)
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, n, size=(n_bootstrap, n))
    low, high = _percentiles(d[idx].mean(axis=1), confidence)
    return Estimate(mean, low, high, n)


def spearman_ci(x: Sequence[float], y: Sequence[float], *, confidence: float = CONFIDENCE) -> Estimate:
    """Spearman rank correlation ρ of paired ``x, y: float[n]`` with a Fisher-z CI.

    The interval is ``tanh(atanh(ρ) ± z · sqrt(1.06 / (n - 3)))`` (Fieller, Hartley & Pearson
    1957, the variance of z for Spearman's ρ); NaN bounds for n < 4, NaN ρ when either side is
    constant.
    """
    xa = np.asarray(x, dtype=np.float64)
    ya = np.asarray(y, dtype=np.float64)
    keep = np.isfinite(xa) & np.isfinite(ya)
    xa, ya = xa[keep], ya[keep]
    n = int(xa.size)
    if n < 2 or np.ptp(xa) == 0 or np.ptp(ya) == 0:
        return Estimate(math.nan, math.nan, math.nan, n)
    rho = float(_scipy_stats.spearmanr(xa, ya).statistic)
    if n < 4:
        return Estimate(rho, math.nan, math.nan, n)
    z = math.atanh(min(max(rho, -0.999999), 0.999999))
    half = float(_scipy_stats.norm.ppf(0.5 + confidence / 2)) * math.sqrt(1.06 / (n - 3))
    return Estimate(rho, math.tanh(z - half), math.tanh(z + half), n)


def _percentiles(samples: np.ndarray, confidence: float) -> tuple[float, float]:
    tail = (1 - confidence) / 2 * 100
    low, high = np.percentile(samples, [tail, 100 - tail])
    return float(low), float(high)


CHANCE_P = 1e-3
"""A run is "at chance" when its test accuracy is not above 1/K at this one-sided binomial p."""


def above_chance_p(accuracy: float, n: int, num_classes: int) -> float:
    """One-sided binomial p-value of ``accuracy`` on ``n`` test examples against guessing 1/K.

    ``P(X ≥ correct)`` for ``X ~ Binomial(n, 1/K)``; small means better than chance. A model
    that collapsed to one class (loss stuck near ln K, no NaN) scores about 1/K and gets p ≈ 0.5.
    """
    if n <= 0 or num_classes < 2:
        return float("nan")
    correct = int(round(float(accuracy) * n))
    return float(_scipy_stats.binom.sf(correct - 1, n, 1.0 / num_classes))
