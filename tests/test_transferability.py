"""Transferability scores against the published formulas, recomputed here by brute force."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from benchmark.analysis.transferability import (
    ALL_BUDGETS,
    correlate_with_gains,
    h_score,
    leep,
    log_evidence,
    logme,
    nce,
)

RNG = np.random.default_rng(7)
N, Z, K, D = 60, 4, 3, 5
LABELS = np.arange(N) % K
LOGITS = RNG.normal(size=(N, Z)) + 2.0 * np.eye(Z)[LABELS]  # source classes 0..2 track y
PROBS = np.exp(LOGITS) / np.exp(LOGITS).sum(1, keepdims=True)
FEATURES = RNG.normal(size=(N, D)) + 1.5 * np.eye(D)[LABELS]


def test_leep_matches_the_definition_by_loops():
    joint = np.zeros((K, Z))
    for i in range(N):
        for z in range(Z):
            joint[LABELS[i], z] += PROBS[i, z] / N
    cond = joint / joint.sum(0)
    expected = np.mean([math.log(sum(cond[LABELS[i], z] * PROBS[i, z] for z in range(Z))) for i in range(N)])
    assert leep(PROBS, LABELS) == pytest.approx(expected)
    assert leep(PROBS, LABELS) > leep(PROBS, RNG.permutation(LABELS))


def test_nce_is_minus_conditional_entropy_of_hard_labels():
    z = PROBS.argmax(1)
    h = 0.0
    for zz in set(z):
        mask = z == zz
        pz = mask.mean()
        for y in range(K):
            pyz = np.mean(LABELS[mask] == y)
            if pyz > 0:
                h -= pz * pyz * math.log(pyz)
    assert nce(PROBS, LABELS) == pytest.approx(-h)
    perfect = np.eye(Z)[LABELS]  # the source predicts y exactly: H(Y|Z) = 0
    assert nce(perfect, LABELS) == pytest.approx(0.0)


def test_h_score_matches_the_covariance_formula():
    f = FEATURES
    cov_f = np.cov(f, rowvar=False, bias=True)
    g = np.stack([f[LABELS == LABELS[i]].mean(0) for i in range(N)])
    cov_g = np.cov(g, rowvar=False, bias=True)
    assert h_score(f, LABELS) == pytest.approx(np.trace(np.linalg.inv(cov_f) @ cov_g))
    assert h_score(f, LABELS) > h_score(f, RNG.permutation(LABELS))


def _gaussian_log_marginal(f, t, alpha, beta):
    """log N(t; 0, I/β + F Fᵀ/α): the evidence of the Bayesian linear model, computed directly."""
    cov = np.eye(len(f)) / beta + f @ f.T / alpha
    _, logdet = np.linalg.slogdet(cov)
    return -0.5 * (len(f) * math.log(2 * math.pi) + logdet + t @ np.linalg.solve(cov, t))


def test_log_evidence_equals_the_gaussian_marginal_likelihood():
    t = (LABELS == 1).astype(float)
    for alpha, beta in [(0.5, 2.0), (3.0, 0.7)]:
        assert log_evidence(FEATURES, t, alpha, beta) == pytest.approx(
            _gaussian_log_marginal(FEATURES, t, alpha, beta))


def test_logme_fixed_point_reaches_the_brute_force_maximum_evidence():
    grid = np.logspace(-3, 3, 61)
    brute = []
    for k in range(K):
        t = (LABELS == k).astype(float)
        best = max(_gaussian_log_marginal(FEATURES, t, a, b) for a in grid for b in grid)
        brute.append(best / N)
    expected = float(np.mean(brute))
    got = logme(FEATURES, LABELS)
    # The fixed point is the exact maximiser; the grid (ratio 10^0.1) is within a hair of it.
    assert expected - 1e-9 <= got <= expected + 2e-3
    assert got > logme(FEATURES, RNG.permutation(LABELS))


def test_correlate_with_gains_per_strategy():
    pairs = [(f"s{i}", "t") for i in range(6)]
    rows, measures = [], []
    for i, (source, target) in enumerate(pairs):
        for label, sign in (("finetune_full", 1.0), ("linear_probe", -1.0)):
            for lpc in (1, -1):
                gain = sign * 0.01 * i + (0.1 if lpc < 0 else 0.0)
                rows.append({"source": source, "target": target, "strategy_label": label,
                             "labels_per_class": lpc, "gain_mean": gain, "gain_low": gain - 0.01,
                             "gain_high": gain + 0.01, "n_pairs": 3})
        for seed in (0, 1):
            measures.append({"source": source, "target": target, "measure": "leep",
                             "value": float(i * i) + seed * 0.1, "space": "features", "seed": seed})
    table = correlate_with_gains(pd.DataFrame(rows), pd.DataFrame(measures))
    table = table.set_index(["strategy_label", "budget"])
    assert table.loc[("finetune_full", "1"), "rho_value"] == pytest.approx(1.0)
    assert table.loc[("linear_probe", "all"), "rho_value"] == pytest.approx(-1.0)
    assert table.loc[("linear_probe", ALL_BUDGETS), "n"] == 6
    assert list(table.loc["finetune_full"].index) == ["1", "all", ALL_BUDGETS]
