"""The one statistics recipe of transferbench: paired differences, Student-t intervals, BH q-values.

Every interval the report, the reproduction pages and their CSVs show comes from here, so they
agree on every number. An :class:`Estimate` is a mean, its CI bounds and the number of seeds
``n`` behind it; with ``n < 2`` there is no interval (bounds are NaN) and pages say so.

* :func:`mean_ci` — Student-t interval ``mean ± t_{1-α/2, n-1} · s / sqrt(n)`` of per-seed
  values (an accuracy, a per-seed slope, a per-seed paired difference).
* :func:`paired_t` — the paired comparison: differences ``a_i − b_i`` of two arms on the same
  seed, their t-interval and two-sided one-sample t p-value (``H0: mean difference = 0``).
* :func:`bh_qvalues` — Benjamini–Hochberg adjusted p-values (q-values) across one report's
  verdicts (``scipy.stats.false_discovery_control``, method ``"bh"``).

Why Student t and not a bootstrap: a suite gives 5 seeds per cell. At n = 5 the percentile
bootstrap of the mean under-covers badly (its resampling distribution is too narrow by about
``sqrt((n-1)/n)`` and uses normal rather than t tails: measured ~84% coverage for a nominal 95%
on normal differences, ~74% at n = 3), and BCa is no better at such n. The t-interval is exact
when the per-seed differences are normal, and the differences here (accuracy of two arms trained
with the same seed, on the same test split) are light-tailed and bounded, where the t-interval
stays near nominal: ``tests/test_stats_coverage.py`` simulates n = 5 with normal and with
skewed, bounded accuracy-like differences and checks ≥ 93% coverage.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
from scipy import stats as _scipy_stats

CONFIDENCE = 0.95
ALPHA = 1 - CONFIDENCE
MIN_SEEDS_FOR_VERDICT = 5
"""A transfer verdict needs at least this many paired seeds; fewer shows "too few seeds"."""
FDR = 0.05
"""Benjamini–Hochberg level: a side is called only when the verdict's q-value is below it."""
INTERVAL_METHOD = "paired Student t, 95%"
CORRECTION = "Benjamini–Hochberg (q < 0.05) across this report's verdicts"


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

    def negated(self) -> Estimate:
        """The estimate of ``−x`` (bounds swapped): NTG from a gain."""
        return Estimate(-self.mean, -self.high, -self.low, self.n)


NO_ESTIMATE = Estimate(math.nan, math.nan, math.nan, 0)


def _clean(values: Sequence[float] | np.ndarray) -> np.ndarray:
    x = np.asarray(values, dtype=np.float64).reshape(-1)
    return x[np.isfinite(x)]


def mean_ci(values: Sequence[float] | np.ndarray, *, confidence: float = CONFIDENCE) -> Estimate:
    """Mean of ``values: float[n]`` (non-finite entries dropped) with its two-sided Student-t CI.

    With a zero standard deviation the interval collapses to the mean; n < 2 gives NaN bounds.
    """
    x = _clean(values)
    n = int(x.size)
    if n == 0:
        return NO_ESTIMATE
    mean = float(x.mean())
    if n < 2:
        return Estimate(mean, math.nan, math.nan, n)
    half = float(_scipy_stats.t.ppf(0.5 + confidence / 2, df=n - 1)) * float(x.std(ddof=1)) / math.sqrt(n)
    return Estimate(mean, mean - half, mean + half, n)


def t_pvalue(values: Sequence[float] | np.ndarray) -> float:
    """Two-sided one-sample t-test p-value of ``mean(values) = 0`` (NaN for n < 2).

    Consistent with :func:`mean_ci`: p < 1 − confidence exactly when the CI excludes 0. Values
    that are all equal give p = 0 (a nonzero constant) or 1 (all zero) instead of scipy's NaN.
    """
    x = _clean(values)
    if x.size < 2:
        return math.nan
    if float(np.ptp(x)) == 0.0:
        return 1.0 if x[0] == 0 else 0.0
    return float(_scipy_stats.ttest_1samp(x, 0.0).pvalue)


@dataclasses.dataclass(frozen=True)
class Paired:
    """A paired comparison: the mean difference ``a − b`` with its t-CI, and its t p-value."""

    diff: Estimate
    p: float


def paired_t(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray, *,
             confidence: float = CONFIDENCE) -> Paired:
    """``mean(a_i − b_i)`` over paired seeds with its Student-t CI and two-sided p-value.

    a, b: float[n], element i of both from the same seed; pairs with a non-finite side are
    dropped. Pairing cancels the seed-to-seed variation both arms share (same data order,
    same initialisation of the layers they share).
    """
    a_arr = np.asarray(a, dtype=np.float64).reshape(-1)
    b_arr = np.asarray(b, dtype=np.float64).reshape(-1)
    if a_arr.shape != b_arr.shape:
        raise ValueError(f"paired arrays differ in length: {a_arr.size} vs {b_arr.size}")
    d = a_arr - b_arr
    d = d[np.isfinite(d)]
    return Paired(mean_ci(d, confidence=confidence), t_pvalue(d))


def bh_qvalues(pvalues: Sequence[float] | np.ndarray) -> np.ndarray:
    """Benjamini–Hochberg q-values of ``pvalues: float[m]``; NaN entries stay NaN and are not counted.

    q_i = min_{j: p_j ≥ p_i} (m · p_j / rank_j), capped at 1 (Benjamini & Hochberg 1995); calling
    every q < α controls the false discovery rate at α for independent or positively dependent
    tests. Computed by ``scipy.stats.false_discovery_control(method="bh")``.
    """
    p = np.asarray(pvalues, dtype=np.float64).reshape(-1)
    q = np.full(p.shape, np.nan)
    keep = np.isfinite(p)
    if keep.any():
        q[keep] = _scipy_stats.false_discovery_control(np.clip(p[keep], 0.0, 1.0), method="bh")
    return q


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
