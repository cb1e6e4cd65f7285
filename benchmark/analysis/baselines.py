"""Simple transferability baselines computed before target training, from the labelled budget only.

Recent critiques of transferability scores find that plain baselines match them (Agostinelli et
al., "How stable are transferability metrics evaluations?", ECCV 2022; Sorkhei et al. 2025: a
k-NN score beats 23 metrics). These are those baselines, on the *labelled budget* of a target
(what a practitioner holds before training), never on target test data:

* :func:`knn_loo_accuracy` — leave-one-out k-NN accuracy of the budget on some representation
  (the source model's features, or raw pixels): how well the representation already separates
  the target's classes with the labels one has.
* :func:`probe_val_accuracy` — a logistic-regression probe fit on the budget's train part and
  scored on its validation part (the engine's per-class 80/20 split of each budget).
* :func:`label_overlap` — Jaccard overlap of the source's and target's class names.

Shapes: ``features: float[N, D]``, ``labels: int[N]`` in ``[0, K)``. numpy / scikit-learn only.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

KNN_K = 3
"""Neighbours of the leave-one-out k-NN (odd; fixed before any result, not tuned)."""
PROBE_C = 1.0
"""Inverse L2 strength of the validation probe (scikit-learn's default; not tuned)."""


def _normalised(features: np.ndarray) -> np.ndarray:
    """Centred on the budget's mean, each row scaled to unit length (cosine geometry)."""
    f = np.asarray(features, dtype=np.float64)
    f = f - f.mean(axis=0, keepdims=True)
    norms = np.linalg.norm(f, axis=1, keepdims=True)
    return np.divide(f, norms, out=np.zeros_like(f), where=norms > 0)


def knn_loo_accuracy(features: np.ndarray, labels: np.ndarray, *, k: int = KNN_K) -> float:
    """Leave-one-out accuracy of a k-NN vote (cosine similarity) over ``features: float[N, D]``.

    Each example is classified by the majority label of its ``k`` most similar *other* examples;
    a tied vote goes to the label of the nearest among the tied. NaN when N < 2.
    """
    f = _normalised(features)
    y = np.asarray(labels).reshape(-1).astype(np.int64)
    n = len(y)
    if n != len(f):
        raise ValueError(f"labels has {n} entries but features has {len(f)} rows")
    if n < 2:
        return float("nan")
    k = min(int(k), n - 1)
    sim = f @ f.T
    np.fill_diagonal(sim, -np.inf)  # leave one out: an example never votes for itself
    order = np.argsort(-sim, axis=1, kind="stable")[:, :k]  # nearest first
    neighbours = y[order]
    correct = 0
    for i in range(n):
        votes = np.bincount(neighbours[i], minlength=int(y.max()) + 1)
        best = np.flatnonzero(votes == votes.max())
        guess = best[0] if len(best) == 1 else next(v for v in neighbours[i] if v in best)
        correct += int(guess == y[i])
    return correct / n


def probe_val_accuracy(train_features: np.ndarray, train_labels: np.ndarray,
                       val_features: np.ndarray, val_labels: np.ndarray, *, c: float = PROBE_C) -> float:
    """Accuracy on ``val`` of a standardised multinomial logistic regression fit on ``train``.

    NaN when either part is empty; the majority class's share when train has one class only.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    xt, xv = np.asarray(train_features, np.float64), np.asarray(val_features, np.float64)
    yt, yv = np.asarray(train_labels).reshape(-1), np.asarray(val_labels).reshape(-1)
    if len(yt) == 0 or len(yv) == 0:
        return float("nan")
    if len(np.unique(yt)) < 2:
        return float(np.mean(yv == yt[0]))
    model = make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=2000))
    model.fit(xt, yt)
    return float(np.mean(model.predict(xv) == yv))


def label_overlap(source_classes: Sequence[str], target_classes: Sequence[str]) -> float:
    """Jaccard overlap ``|S ∩ T| / |S ∪ T|`` of two class-name lists (1: the same label set).

    A trivial baseline: a label-noisy source keeps its class names, so it scores 1.
    """
    s, t = {str(c) for c in source_classes}, {str(c) for c in target_classes}
    union = s | t
    return len(s & t) / len(union) if union else float("nan")
