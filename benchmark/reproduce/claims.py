"""Claims, verdicts and the per-seed statistics they rest on (pure pandas/numpy, no JAX).

A reproduction checks a paper's *claims* (orderings, trends, signs), not its absolute numbers:
our data and scale differ. A claim is made of one or more *cases* (each strategy, pair or
budget it speaks about); each case is a per-seed statistic with the side of 0 the paper claims.

Correction: **Bonferroni across every case on the page**. With m cases, each case's interval
is the Student-t interval at confidence ``1 − 0.05/m`` (same recipe as ``tbench report``,
:mod:`benchmark.analysis.stats`), so the page's family-wise error rate is at most 5%. Bonferroni
rather than BH because a verdict here reads an *interval* (BH adjusts p-values, not intervals)
and it holds under any dependence between cases (they share seeds and scratch runs).

Verdicts (one vocabulary, no "partly"):

* ``reproduced``: every supporting case's adjusted CI lies wholly on the claimed side (and, for
  a magnitude claim, reaches the claimed size), and no case refutes.
* ``refuted``: some case's adjusted CI lies wholly on the other side (or a guard case fails:
  e.g. AnB+ wholly below baseB at one n).
* ``no evidence``: anything else: an adjusted CI that contains 0, or fewer than 2 seeds.
* ``not measured``: the runs needed are missing (not run yet, failed, or a measure the engine
  did not record).

These rules were revised after earlier results of these suites had been seen (the git history
shows it); they are not pre-registered, and the pages say so.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from benchmark.analysis.stats import ALPHA, NO_ESTIMATE, Estimate, mean_ci

REPRODUCED = "reproduced"
REFUTED = "refuted"
NO_EVIDENCE = "no evidence"
NOT_MEASURED = "not measured"
VERDICTS = (REPRODUCED, REFUTED, NO_EVIDENCE, NOT_MEASURED)
CORRECTION = "Bonferroni across every case on this page"
PROVENANCE = ("Verdict rules were written and revised after earlier results of these suites had been seen "
              "(see the git history of benchmark/reproduce); they are not pre-registered.")


@dataclasses.dataclass(frozen=True)
class Case:
    """One tested statistic of a claim: per-seed ``values`` whose mean the paper puts on ``sign``'s side.

    kind: ``"claim"`` supports or refutes; ``"guard"`` can only refute (AnB+ must not be wholly
    below baseB at any n). min_upper: for magnitude claims, the adjusted CI's upper end must
    reach it for the case to support the claim.
    """

    label: str
    values: tuple[float, ...]
    sign: int = 1
    kind: str = "claim"
    min_upper: float | None = None
    digits: int = 3

    @classmethod
    def of(cls, label: str, values: Sequence[float] | np.ndarray | pd.Series, sign: int = 1,
           **kw) -> Case:
        x = np.asarray(values, dtype=float).reshape(-1)
        return cls(label, tuple(float(v) for v in x[np.isfinite(x)]), sign, **kw)


@dataclasses.dataclass(frozen=True)
class ClaimSpec:
    """A claim before judgement: its text, its cases, and the text when nothing was measured."""

    claim_id: str
    statement: str
    paper_says: str
    rule: str
    cases: tuple[Case, ...]
    measured_prefix: str = ""
    unmeasured: str = "no runs"


@dataclasses.dataclass(frozen=True)
class Claim:
    """One row of a reproduction table: *paper says / we measured / verdict*.

    measured: each case's mean with its raw 95% CI and the Bonferroni-adjusted CI, and seeds;
    verdict: one of :data:`VERDICTS`; rule: how it was decided; estimate / adjusted: the
    statistic behind the verdict when the claim has one case (NaN otherwise).
    """

    claim_id: str
    statement: str
    paper_says: str
    measured: str
    verdict: str
    rule: str
    estimate: Estimate = NO_ESTIMATE
    adjusted: Estimate = NO_ESTIMATE
    confidence: float = math.nan

    def row(self) -> dict[str, object]:
        """Flat dict for the CSV: text fields plus ``mean, ci_low, ci_high, adj_*, seeds``."""
        return {
            "claim": self.claim_id, "statement": self.statement, "paper_says": self.paper_says,
            "we_measured": self.measured, "verdict": self.verdict, "rule": self.rule,
            "mean": self.estimate.mean, "ci_low": self.estimate.low, "ci_high": self.estimate.high,
            "adj_confidence": self.confidence, "adj_ci_low": self.adjusted.low,
            "adj_ci_high": self.adjusted.high, "seeds": self.estimate.n,
        }


def case_verdict(case: Case, adjusted: Estimate) -> str:
    """A case's verdict from its adjusted interval (guards return ``reproduced`` when they hold)."""
    if adjusted.n == 0 or math.isnan(adjusted.mean):
        return NOT_MEASURED
    if not adjusted.has_ci:
        return NO_EVIDENCE
    low, high = sorted((adjusted.low * case.sign, adjusted.high * case.sign))
    if high < 0:
        return REFUTED
    if case.kind == "guard":
        return REPRODUCED
    if low > 0:
        if case.min_upper is not None and adjusted.high < case.min_upper:
            return NO_EVIDENCE
        return REPRODUCED
    return NO_EVIDENCE


def combine(verdicts: Sequence[str], kinds: Sequence[str] | None = None) -> str:
    """One verdict from case verdicts: any refuted → refuted; every measured claim case
    reproduced (guards holding) → reproduced; nothing measured → not measured; else no evidence."""
    kinds = list(kinds) if kinds is not None else ["claim"] * len(verdicts)
    measured = [(v, k) for v, k in zip(verdicts, kinds, strict=True) if v != NOT_MEASURED]
    if not any(k == "claim" for _, k in measured):
        return NOT_MEASURED
    if any(v == REFUTED for v, _ in measured):
        return REFUTED
    if all(v == REPRODUCED for v, _ in measured):
        return REPRODUCED
    return NO_EVIDENCE


def judge(specs: Sequence[ClaimSpec], *, alpha: float = ALPHA) -> list[Claim]:
    """Judge a page's claims together: Bonferroni over every measured case of every claim."""
    m = sum(1 for s in specs for c in s.cases if c.values)
    confidence = 1 - alpha / max(m, 1)
    out = []
    for spec in specs:
        parts, verdicts, kinds, raws, adjs = [], [], [], [], []
        for case in spec.cases:
            raw, adj = mean_ci(case.values), mean_ci(case.values, confidence=confidence)
            verdicts.append(case_verdict(case, adj))
            kinds.append(case.kind)
            if case.kind == "claim":
                raws.append(raw)
                adjs.append(adj)
            parts.append(f"{case.label}: {fmt(raw, case.digits)}"
                         + (f", adjusted [{adj.low:+.{case.digits}f}, {adj.high:+.{case.digits}f}]"
                            if adj.has_ci else ""))
        measured = [p for p, c in zip(parts, spec.cases, strict=True) if c.values]
        text = spec.measured_prefix + ("; ".join(measured) if measured else spec.unmeasured)
        single = len(raws) == 1
        out.append(Claim(spec.claim_id, spec.statement, spec.paper_says, text,
                         combine(verdicts, kinds), spec.rule,
                         raws[0] if single else NO_ESTIMATE, adjs[0] if single else NO_ESTIMATE,
                         confidence))
    return out


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


def paired(frame: pd.DataFrame, left: pd.Series, right: pd.Series, value: str = "accuracy") -> pd.DataFrame:
    """Rows ``left`` and ``right`` of ``frame`` (boolean masks) joined on seed.

    Returns columns ``seed, a, b`` (``a`` from ``left``, ``b`` from ``right``), one row per seed
    present on both sides with finite values (a seed with several rows on one side is averaged).
    """
    a = frame[left].groupby("seed")[value].mean().rename("a")
    b = frame[right].groupby("seed")[value].mean().rename("b")
    both = pd.concat([a, b], axis=1, join="inner").reset_index()
    return both[np.isfinite(both["a"]) & np.isfinite(both["b"])]


def differences(pairs: pd.DataFrame) -> np.ndarray:
    """Per-seed ``a − b`` of :func:`paired` rows."""
    return (pairs["a"] - pairs["b"]).to_numpy(float)


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
