"""Transferability scores computed before target training, and how well they predict gains.

Shapes: ``source_probs: float[N, Z]`` — the source model's softmax over its Z source classes on N
labelled target training images; ``features: float[N, D]`` — its penultimate features on the
same images; ``labels: int[N]`` — the target labels in ``[0, K)``. Higher = more transferable
for all four scores.

* :func:`leep` — Log Expected Empirical Prediction (Nguyen et al., ICML 2020, §3): the empirical
  joint P̂(y, z) = (1/N) Σ_{i: y_i = y} θ(x_i)_z, conditional P̂(y | z) = P̂(y, z) / P̂(z), and
  LEEP = (1/N) Σ_i log Σ_z P̂(y_i | z) θ(x_i)_z.
* :func:`nce` — Negative Conditional Entropy (Tran et al., "Transferability and hardness of
  supervised classification tasks", ICCV 2019, §3): with hard source labels z_i = argmax θ(x_i),
  NCE = −H(Y | Z) = Σ_{y,z} P̂(y, z) log P̂(y | z).
* :func:`h_score` — H-score (Bao et al., "An information-theoretic approach to transferability
  in task transfer learning", ICIP 2019, Definition 2): H(f) = tr(cov(f)⁻¹ cov(E[f | Y])),
  pseudo-inverse for a singular feature covariance.
* :func:`logme` — Log of Maximum Evidence (You et al., "LogME: practical assessment of
  pre-trained models for transfer learning", ICML 2021, Algorithm 1): per target class k a
  Bayesian linear regression y_k = F w + ε, w ~ N(0, α⁻¹I), ε ~ N(0, β⁻¹I); the evidence
  L(α, β) = (N/2) log β + (D/2) log α − (N/2) log 2π − (β/2)||F m − y||² − (α/2) mᵀm − ½ log|A|,
  A = αI + βFᵀF, m = βA⁻¹Fᵀy, is maximised by the fixed-point iteration γ = Σ_i βσ_i/(α + βσ_i),
  α ← γ / mᵀm, β ← (N − γ) / ||F m − y||² (σ_i the eigenvalues of FᵀF); LogME = mean_k L_k / N.

:func:`correlate_with_gains` judges any measure (score or domain gap) by its Spearman ρ with the
observed gains across the grid, per strategy.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from benchmark.analysis.stats import spearman_ci
from benchmark.analysis.transfer import format_budget

TRANSFERABILITY_MEASURES = ("leep", "logme", "nce", "h_score")
"""Names used in the store's measures frame (``measure`` column) for transferability scores."""

ALL_BUDGETS = "mean over budgets"


def _labels(labels: np.ndarray, n: int) -> np.ndarray:
    y = np.asarray(labels).reshape(-1)
    if y.size != n:
        raise ValueError(f"labels has {y.size} entries but the scores/features have {n} rows")
    if y.size and (y.min() < 0 or not np.issubdtype(y.dtype, np.integer)):
        raise ValueError("labels must be non-negative integers int[N]")
    return y.astype(np.int64)


def _joint(labels: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """P̂(y, z): float[K, Z] from per-example source distributions ``weights: float[N, Z]``."""
    k = int(labels.max()) + 1
    joint = np.zeros((k, weights.shape[1]))
    np.add.at(joint, labels, weights)
    return joint / len(labels)


def leep(source_probs: np.ndarray, labels: np.ndarray) -> float:
    """LEEP score (≤ 0; closer to 0 = more transferable). source_probs: float[N, Z] rows summing to 1."""
    theta = np.asarray(source_probs, dtype=np.float64)
    y = _labels(labels, len(theta))
    joint = _joint(y, theta)
    marginal_z = joint.sum(axis=0, keepdims=True)
    conditional = np.divide(joint, marginal_z, out=np.zeros_like(joint), where=marginal_z > 0)
    eep = (theta * conditional[y]).sum(axis=1)
    return float(np.mean(np.log(eep)))


def nce(source_probs: np.ndarray, labels: np.ndarray) -> float:
    """NCE = −H(Y | Z) with z = argmax of the source prediction (≤ 0)."""
    theta = np.asarray(source_probs, dtype=np.float64)
    y = _labels(labels, len(theta))
    z = np.argmax(theta, axis=1)
    joint = _joint(y, np.eye(theta.shape[1])[z])
    marginal_z = joint.sum(axis=0, keepdims=True)
    conditional = np.divide(joint, marginal_z, out=np.ones_like(joint), where=marginal_z > 0)
    nz = joint > 0
    return float((joint[nz] * np.log(conditional[nz])).sum())


def h_score(features: np.ndarray, labels: np.ndarray) -> float:
    """H-score of ``features: float[N, D]`` for ``labels: int[N]`` (population covariances, 1/N)."""
    f = np.asarray(features, dtype=np.float64)
    y = _labels(labels, len(f))
    f = f - f.mean(axis=0)
    cov_f = f.T @ f / len(f)
    class_means = np.zeros((int(y.max()) + 1, f.shape[1]))
    np.add.at(class_means, y, f)
    counts = np.bincount(y, minlength=len(class_means))[:, None]
    class_means = np.divide(class_means, counts, out=np.zeros_like(class_means), where=counts > 0)
    g = class_means[y]
    cov_g = g.T @ g / len(f)
    return float(np.trace(np.linalg.pinv(cov_f, rcond=1e-10, hermitian=True) @ cov_g))


def log_evidence(features: np.ndarray, target: np.ndarray, alpha: float, beta: float) -> float:
    """L(α, β) of the Bayesian linear model for one target column ``target: float[N]`` (You et al. 2021)."""
    f = np.asarray(features, dtype=np.float64)
    t = np.asarray(target, dtype=np.float64)
    sigma, v = np.linalg.eigh(f.T @ f)
    sigma = np.clip(sigma, 0, None)
    m, residual = _posterior_mean(f, t, v, sigma, alpha, beta)
    n, d = f.shape
    return float(n / 2 * math.log(beta) + d / 2 * math.log(alpha) - n / 2 * math.log(2 * math.pi)
                 - beta / 2 * residual - alpha / 2 * float(m @ m) - 0.5 * np.log(alpha + beta * sigma).sum())


def _posterior_mean(f, t, v, sigma, alpha, beta):
    projected = v.T @ (f.T @ t)
    m = v @ (beta * projected / (alpha + beta * sigma))
    r = f @ m - t
    return m, float(r @ r)


def logme(features: np.ndarray, labels: np.ndarray, *, max_iter: int = 100, tol: float = 1e-6) -> float:
    """LogME of ``features: float[N, D]`` for classification ``labels: int[N]`` (mean over one-hot columns)."""
    f = np.asarray(features, dtype=np.float64)
    y = _labels(labels, len(f))
    n, d = f.shape
    sigma, v = np.linalg.eigh(f.T @ f)
    sigma = np.clip(sigma, 0, None)
    evidences = []
    for k in range(int(y.max()) + 1):
        t = (y == k).astype(np.float64)
        alpha, beta = 1.0, 1.0
        for _ in range(max_iter):
            m, residual = _posterior_mean(f, t, v, sigma, alpha, beta)
            gamma = float((beta * sigma / (alpha + beta * sigma)).sum())
            new_alpha = gamma / max(float(m @ m), 1e-300)
            new_beta = (n - gamma) / max(residual, 1e-300)
            done = abs(new_alpha - alpha) / alpha < tol and abs(new_beta - beta) / beta < tol
            alpha, beta = new_alpha, new_beta
            if done:
                break
        evidences.append(log_evidence(f, t, alpha, beta) / n)
    return float(np.mean(evidences))


def mean_measures(measures: pd.DataFrame) -> pd.DataFrame:
    """Average a measures frame over seeds: one row per ``(source, target, measure, space)``."""
    needed = ["source", "target", "measure", "value", "space"]
    missing = [c for c in needed if c not in measures.columns]
    if missing:
        raise ValueError(f"measures frame lacks columns {missing}; expected Store.measures_frame() columns")
    m = measures.assign(value=pd.to_numeric(measures["value"], errors="coerce"))
    return (m.groupby(["source", "target", "measure", "space"], as_index=False)
            .agg(value=("value", "mean"), n_seeds=("value", "size")))


def gain_points(transfer: pd.DataFrame, measures: pd.DataFrame) -> pd.DataFrame:
    """Join gains (``transfer_table`` rows) with pair-level measures: one row per cell and measure.

    Columns: ``source, target, strategy_label, labels_per_class, gain_mean, gain_low, gain_high,
    n_pairs, measure, space, value``. Also rows with ``budget == ALL_BUDGETS`` whose gain is the
    mean over the budgets of that (source, target, strategy).
    """
    means = mean_measures(measures)
    t = transfer[np.isfinite(transfer["gain_mean"].astype(float))]
    if "variant" in t.columns:  # cells sharing a label stay apart (one identity per cell)
        t = t.assign(strategy_label=[f"{s} [{v}]" if v else s
                                     for s, v in zip(t["strategy_label"], t["variant"], strict=True)])
    cols = ["source", "target", "strategy_label", "labels_per_class", "gain_mean", "gain_low",
            "gain_high", "n_pairs"]
    per_budget = t[cols].assign(budget=t["labels_per_class"].map(format_budget))
    pooled = (t.groupby(["source", "target", "strategy_label"], as_index=False)
              .agg(gain_mean=("gain_mean", "mean"), n_pairs=("n_pairs", "min")))
    pooled = pooled.assign(labels_per_class=np.nan, gain_low=np.nan, gain_high=np.nan, budget=ALL_BUDGETS)
    points = pd.concat([per_budget, pooled[per_budget.columns]], ignore_index=True)
    return points.merge(means, on=["source", "target"], how="inner")


def correlate_with_gains(transfer: pd.DataFrame, measures: pd.DataFrame) -> pd.DataFrame:
    """Spearman ρ (Fisher-z 95% CI) between a measure and the gain over scratch, per strategy.

    One row per ``(measure, space, strategy_label, budget)``; each point is a (source, target)
    pair. ``budget`` is a budget's display name or ``ALL_BUDGETS`` (gain averaged over budgets).
    Columns: ``measure, space, strategy_label, budget, rho (Estimate), rho_value, n``.
    """
    columns = ["measure", "space", "strategy_label", "budget", "rho", "rho_value", "n"]
    points = gain_points(transfer, measures)
    if points.empty:
        return pd.DataFrame(columns=columns)
    rows = []
    keys = ["measure", "space", "strategy_label", "budget"]
    for (measure, space, label, budget), group in points.groupby(keys, sort=False):
        est = spearman_ci(group["value"].to_numpy(), group["gain_mean"].to_numpy())
        lpc = group["labels_per_class"].iloc[0]
        order = 2.0 if budget == ALL_BUDGETS else (1.0 if lpc < 0 else 0.0)
        rows.append({"measure": measure, "space": space, "strategy_label": label, "budget": budget,
                     "rho": est, "rho_value": est.mean, "n": est.n,
                     "_order": (order, 0.0 if budget == ALL_BUDGETS else float(lpc))})
    out = pd.DataFrame(rows)
    out = out.sort_values(["measure", "space", "strategy_label", "_order"]).drop(columns="_order")
    return out[columns].reset_index(drop=True)
