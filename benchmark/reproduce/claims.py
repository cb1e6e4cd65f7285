"""Claims, verdicts and the per-seed statistics they rest on (pure pandas/numpy, no JAX).

A reproduction checks a paper's *claims* (orderings, trends, signs), not its absolute numbers:
our data and scale differ. Each claim gets one of four verdicts, decided by rules fixed before
any run (never tuned until a claim passes):

* ``reproduced``: the 95% CI over seeds of the claim's statistic lies wholly on the claimed side.
* ``partly``: the point estimate is on the claimed side but the CI reaches the other side (or
  there are too few seeds for a CI), or only some of the claim's sub-cases pass.
* ``not reproduced``: the point estimate is on the wrong side (or exactly zero).
* ``not measured``: the runs needed are missing (not run yet, failed, or a measure the engine
  did not record).

Every interval here comes from :mod:`benchmark.analysis.stats` (Student-t over seeds for a
per-seed statistic, paired bootstrap for paired differences), so the reproduction pages and
``tbench report`` agree on every number.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from benchmark.analysis.stats import Estimate, mean_ci

REPRODUCED = "reproduced"
PARTLY = "partly"
NOT_REPRODUCED = "not reproduced"
NOT_MEASURED = "not measured"
VERDICTS = (REPRODUCED, PARTLY, NOT_REPRODUCED, NOT_MEASURED)

NO_ESTIMATE = Estimate(math.nan, math.nan, math.nan, 0)


@dataclasses.dataclass(frozen=True)
class Claim:
    """One row of a reproduction table: *paper says / we measured / verdict*.

    claim_id: short stable key (``anb_falls``); statement: the claim in words;
    paper_says: what the paper reports (numbers and where: figure/table);
    measured: what we measured, with the 95% CI and the seed count;
    verdict: one of :data:`VERDICTS`; rule: the pre-registered rule that decided it;
    estimate: the statistic behind the verdict (NaN when not measured).
    """

    claim_id: str
    statement: str
    paper_says: str
    measured: str
    verdict: str
    rule: str
    estimate: Estimate = NO_ESTIMATE

    def row(self) -> dict[str, object]:
        """Flat dict for the CSV: text fields plus ``mean, ci_low, ci_high, seeds``."""
        return {
            "claim": self.claim_id, "statement": self.statement, "paper_says": self.paper_says,
            "we_measured": self.measured, "verdict": self.verdict, "rule": self.rule,
            "mean": self.estimate.mean, "ci_low": self.estimate.low, "ci_high": self.estimate.high,
            "seeds": self.estimate.n,
        }


def sign_verdict(est: Estimate, expected_sign: int) -> str:
    """Verdict for a claim "the statistic is > 0" (``expected_sign=+1``) or "< 0" (``-1``).

    reproduced: the whole CI on the expected side; partly: only the mean is (CI crosses 0, or
    n < 2); not reproduced: the mean is 0 or on the other side; not measured: no data.
    """
    if expected_sign not in (1, -1):
        raise ValueError("expected_sign must be +1 or -1")
    if est.n == 0 or math.isnan(est.mean):
        return NOT_MEASURED
    signed_mean = est.mean * expected_sign
    if signed_mean <= 0:
        return NOT_REPRODUCED
    if est.has_ci and min(est.low * expected_sign, est.high * expected_sign) > 0:
        return REPRODUCED
    return PARTLY


def combine(verdicts: Sequence[str]) -> str:
    """One verdict for a claim made of sub-cases (each strategy, each pair).

    All measured sub-cases reproduced → reproduced; none reproduced nor partly → not
    reproduced; anything in between → partly. Unmeasured sub-cases are ignored unless all are.
    """
    measured = [v for v in verdicts if v != NOT_MEASURED]
    if not measured:
        return NOT_MEASURED
    if all(v == REPRODUCED for v in measured):
        return REPRODUCED
    if all(v == NOT_REPRODUCED for v in measured):
        return NOT_REPRODUCED
    return PARTLY


def per_seed_slope(frame: pd.DataFrame, x: str, y: str, *, seed: str = "seed") -> pd.Series:
    """Least-squares slope of ``y`` on ``x`` within each seed: ``float[seeds]`` indexed by seed.

    Seeds with fewer than two distinct ``x`` values give no slope (dropped). A trend claim
    ("falls as n grows") is then a sign claim on the mean slope, with a t-CI over seeds.
    """
    slopes = {}
    for key, group in frame.groupby(seed):
        g = group[np.isfinite(group[x].astype(float)) & np.isfinite(group[y].astype(float))]
        xs, ys = g[x].to_numpy(float), g[y].to_numpy(float)
        if np.unique(xs).size < 2:
            continue
        xc = xs - xs.mean()
        slopes[key] = float((xc * (ys - ys.mean())).sum() / (xc * xc).sum())
    return pd.Series(slopes, dtype=float)


def slope_ci(frame: pd.DataFrame, x: str, y: str) -> Estimate:
    """Mean per-seed slope of ``y`` on ``x`` with its Student-t 95% CI over seeds."""
    return mean_ci(per_seed_slope(frame, x, y).to_numpy())


def paired(frame: pd.DataFrame, left: pd.Series, right: pd.Series, value: str = "accuracy") -> pd.DataFrame:
    """Rows ``left`` and ``right`` of ``frame`` (boolean masks) joined on seed.

    Returns columns ``seed, a, b`` (``a`` from ``left``, ``b`` from ``right``), one row per seed
    present on both sides with finite values (a seed with several rows on one side is averaged).
    """
    a = frame[left].groupby("seed")[value].mean().rename("a")
    b = frame[right].groupby("seed")[value].mean().rename("b")
    both = pd.concat([a, b], axis=1, join="inner").reset_index()
    return both[np.isfinite(both["a"]) & np.isfinite(both["b"])]


def difference_ci(pairs: pd.DataFrame) -> Estimate:
    """Mean of ``a − b`` over paired seeds with a Student-t 95% CI (the per-seed statistic)."""
    return mean_ci((pairs["a"] - pairs["b"]).to_numpy())


def fmt(est: Estimate, digits: int = 3, scale: float = 1.0, unit: str = "") -> str:
    """``+0.012 [+0.004, +0.020] (5 seeds)``, signed, or ``no runs`` when empty."""
    if est.n == 0 or math.isnan(est.mean):
        return "no runs"
    seeds = f"{est.n} seed{'s' if est.n != 1 else ''}"
    m = f"{est.mean * scale:+.{digits}f}{unit}"
    if not est.has_ci:
        return f"{m} ({seeds}, no CI)"
    return f"{m} [{est.low * scale:+.{digits}f}, {est.high * scale:+.{digits}f}]{unit} ({seeds})"


def fmt_level(est: Estimate, digits: int = 3) -> str:
    """Unsigned ``0.812 [0.790, 0.834] (5 seeds)`` for accuracies and distances."""
    if est.n == 0 or math.isnan(est.mean):
        return "no runs"
    seeds = f"{est.n} seed{'s' if est.n != 1 else ''}"
    if not est.has_ci:
        return f"{est.mean:.{digits}f} ({seeds}, no CI)"
    return f"{est.mean:.{digits}f} [{est.low:.{digits}f}, {est.high:.{digits}f}] ({seeds})"
