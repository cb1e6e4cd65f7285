"""Predicting negative transfer before training: how well each pre-training score ranks the pairs.

Input: a ``transfer_table`` (one verdict row per cell) and the store's measures frame. A *pair
row* is one cell with a verdict (source, target, strategy, budget; at least 5 paired seeds) and
the mean over seeds of every score in :data:`SCORES` for its (source, target) — for budget
scores (``NAME_lpcK``), the one of the cell's own budget. Per group (strategy × budget) and score:

* weighted Kendall τ (Vigna 2015, hyperbolic weights, ``scipy.stats.weightedtau``'s definition)
  and Spearman ρ between the *oriented* score and the observed mean gain. Each score's
  orientation is declared in :data:`SCORES` before any result (higher = predicts more gain), so
  an AUROC below 0.5 means the score points the wrong way; it is never flipped to fit the data.
* AUROC for "negative transfer" (the cell's verdict: NTG interval wholly above 0 and q < 0.05)
  and for "positive transfer", ``sklearn.metrics.roc_auc_score``; undefined (None) for a group
  without both outcomes.
* 95% percentile-bootstrap CIs over pairs (``n_boot`` resamples, seeded); a resample without
  both outcomes has no AUROC and is not counted (``n_boot_auroc`` says how many were).
* the learned combination: median-imputed, standardised pre-training scores (within the budget
  only) → L2 logistic regression (``COMBO_C``, balanced classes; fixed, not tuned), evaluated
  leave-one-source-out: the pairs of each source are scored by a model fit on the other sources'
  pairs only (:func:`loso_predictions`). Its bootstrap resamples its out-of-fold predictions.

numpy / pandas / scipy / scikit-learn only; no JAX.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
from scipy import stats as _st

from benchmark.analysis.transfer import INCONCLUSIVE, NEGATIVE, POSITIVE, display_label

COMBO_C = 0.1
"""Inverse L2 strength of the combination (about as many scores as a third of the pairs)."""
N_BOOT = 1000


@dataclasses.dataclass(frozen=True)
class Score:
    """A pre-training score: where it is stored, which way it points, what kind it is."""

    key: str  # "space:measure" (budget scores without their _lpcK suffix)
    direction: int  # +1: higher predicts more gain; -1: higher predicts less gain
    kind: str  # gap | transferability | baseline | trivial | derived
    note: str
    beyond_budget: bool = False  # reads target train labels outside the budget

    @property
    def space(self) -> str:
        return self.key.split(":", 1)[0]

    @property
    def measure(self) -> str:
        return self.key.split(":", 1)[1]


_FULL = "target train labels beyond the budget (≤ 1,000 images)"
SCORES: tuple[Score, ...] = (
    Score("features:knn_loo", +1, "baseline", "k-NN leave-one-out accuracy of the budget, source features"),
    Score("features:probe_val", +1, "baseline", "linear probe on the budget's train part, its validation accuracy"),
    Score("features:leep", +1, "transferability", "LEEP on the budget"),
    Score("features:logme", +1, "transferability", "LogME on the budget"),
    Score("features:nce", +1, "transferability", "NCE on the budget"),
    Score("features:h_score", +1, "transferability", "H-score on the budget"),
    Score("derived:knn_advantage", +1, "derived", "k-NN accuracy on source features minus on pixels"),
    Score("derived:probe_advantage", +1, "derived", "probe accuracy on source features minus on pixels"),
    Score("pixels:knn_loo", -1, "baseline", "k-NN accuracy of the budget on pixels (an easy target gains less)"),
    Score("pixels:probe_val", -1, "baseline", "probe accuracy on pixels (an easy target gains less)"),
    Score("features:proxy_a_distance", -1, "gap", "proxy A-distance, source-model features"),
    Score("features:mmd2_rbf", -1, "gap", "MMD², source-model features"),
    Score("features:frechet_distance", -1, "gap", "Fréchet distance, source-model features"),
    Score("pixels:proxy_a_distance", -1, "gap", "proxy A-distance, pixels"),
    Score("pixels:mmd2_rbf", -1, "trivial", "MMD², pixels"),
    Score("pixels:frechet_distance", -1, "gap", "Fréchet distance, pixels"),
    Score("data:log10_source_train_size", +1, "trivial", "log10 of the source's train-set size"),
    Score("data:label_overlap", +1, "trivial", "Jaccard overlap of class names"),
    Score("full:leep", +1, "transferability", "LEEP on " + _FULL, beyond_budget=True),
    Score("full:logme", +1, "transferability", "LogME on " + _FULL, beyond_budget=True),
    Score("full:nce", +1, "transferability", "NCE on " + _FULL, beyond_budget=True),
    Score("full:h_score", +1, "transferability", "H-score on " + _FULL, beyond_budget=True),
)
BY_KEY = {s.key: s for s in SCORES}
COMBINATION_INPUTS = tuple(s.key for s in SCORES if not s.beyond_budget and s.kind != "derived")
COMBINATION = "combination:logistic_loso"
_BUDGET_SCORES = {"knn_loo", "probe_val", "leep", "logme", "nce", "h_score"}


def _lpc_suffix(labels_per_class: int) -> str:
    return f"_lpc{'all' if int(labels_per_class) < 0 else int(labels_per_class)}"


def score_lookup(measures: pd.DataFrame) -> dict[tuple[str, str, str, str], float]:
    """``{(source, target, space, measure): mean over seeds}`` of a measures frame."""
    m = measures.assign(value=pd.to_numeric(measures["value"], errors="coerce"))
    return m.groupby(["source", "target", "space", "measure"])["value"].mean().to_dict()


def pair_scores(source: str, target: str, labels_per_class: int, lookup: dict) -> dict[str, float]:
    """Every score of :data:`SCORES` for one pair at one budget (NaN where not measured)."""
    row: dict[str, float] = {}
    for s in SCORES:
        if s.space == "derived":
            continue
        space = "features" if s.space == "full" else s.space
        budget = s.space != "full" and s.measure in _BUDGET_SCORES
        row[s.key] = lookup.get((source, target, space, s.measure + (_lpc_suffix(labels_per_class) if budget else "")),
                                math.nan)
    row["derived:knn_advantage"] = row["features:knn_loo"] - row["pixels:knn_loo"]
    row["derived:probe_advantage"] = row["features:probe_val"] - row["pixels:probe_val"]
    return row


def group_name(strategy_label: str, variant: str, labels_per_class: int) -> str:
    """``finetune_full @ 10 labels/class``: what one evaluation pools (one strategy, one budget)."""
    return f"{display_label(strategy_label, variant)} @ {_budget(int(labels_per_class))}"


PAIR_COLUMNS = ["group", "strategy_label", "labels_per_class", "source", "target", "gain", "gain_low",
                "gain_high", "q_value", "verdict", "negative", "positive", *(s.key for s in SCORES)]


def pair_frame(table: pd.DataFrame, measures: pd.DataFrame) -> pd.DataFrame:
    """One row per verdict cell, with its outcome and every score of :data:`SCORES` (NaN if absent).

    table: ``transfer_table`` rows; rows without a verdict (reference rows, too few seeds) are
    left out. measures: ``Store.measures_frame()`` (averaged over seeds here). Columns:
    :data:`PAIR_COLUMNS` (one per score key after the outcome).
    """
    t = table[table["verdict"].isin([NEGATIVE, POSITIVE, INCONCLUSIVE])]
    lookup = score_lookup(measures)
    rows = []
    for _, r in t.iterrows():
        lpc = int(r["labels_per_class"])
        rows.append({"group": group_name(r["strategy_label"], r["variant"], lpc),
                     "strategy_label": r["strategy_label"], "labels_per_class": lpc,
                     "source": r["source"], "target": r["target"], "gain": float(r["gain_mean"]),
                     "gain_low": float(r["gain_low"]), "gain_high": float(r["gain_high"]),
                     "q_value": float(r["q_value"]), "verdict": r["verdict"],
                     "negative": r["verdict"] == NEGATIVE, "positive": r["verdict"] == POSITIVE,
                     **pair_scores(r["source"], r["target"], lpc, lookup)})
    return pd.DataFrame(rows, columns=PAIR_COLUMNS)


def _budget(lpc: int) -> str:
    return "all labels" if lpc < 0 else f"{lpc} labels/class"


# -- the metrics, for one array and for a batch of bootstrap resamples (rows) -----------------

def auroc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """``roc_auc_score(labels, scores)``; None when ``labels`` lacks either class."""
    from sklearn.metrics import roc_auc_score

    y = np.asarray(labels, bool)
    if y.all() or not y.any():
        return None
    return float(roc_auc_score(y, np.asarray(scores, np.float64)))


def batch_auroc(labels: np.ndarray, scores: np.ndarray) -> np.ndarray:
    """AUROC of each row of ``labels: bool[B, n]``, ``scores: float[B, n]`` (Mann–Whitney U with
    mid-ranks, equal to ``roc_auc_score``); NaN for a row without both classes."""
    y = np.asarray(labels, bool)
    ranks = _st.rankdata(scores, axis=1)
    n1 = y.sum(axis=1)
    n0 = y.shape[1] - n1
    u = (ranks * y).sum(axis=1) - n1 * (n1 + 1) / 2
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((n1 > 0) & (n0 > 0), u / (n1 * n0), np.nan)


def batch_spearman(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Spearman ρ of each row pair of ``x, y: float[B, n]`` (mid-ranks); NaN for a constant row."""
    rx, ry = _st.rankdata(x, axis=1), _st.rankdata(y, axis=1)
    rx, ry = rx - rx.mean(axis=1, keepdims=True), ry - ry.mean(axis=1, keepdims=True)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (rx * ry).sum(1) / np.sqrt((rx * rx).sum(1) * (ry * ry).sum(1))


def _rank_weights(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Hyperbolic weights 1/(r+1) of the decreasing lexicographic rank r by (x, y), per row."""
    n = x.shape[1]
    perm = np.lexsort((y, x), axis=1)[:, ::-1]
    rank = np.empty_like(perm)
    np.put_along_axis(rank, perm, np.broadcast_to(np.arange(n), perm.shape), axis=1)
    return 1.0 / (rank + 1.0)


def batch_weighted_tau(x: np.ndarray, y: np.ndarray, chunk: int = 250) -> np.ndarray:
    """``scipy.stats.weightedtau(x_b, y_b).statistic`` for each row of ``x, y: float[B, n]``
    (rank=True: the mean over the rankings by (x, y) and by (y, x); additive hyperbolic weights),
    vectorised; equal to scipy's value, ties included.

    With pair weights w_i + w_j, every pair sum is ``Σ_i w_i · rowsum_i`` of a symmetric matrix,
    so the O(n²) sign products are computed once per row and shared by both rankings.
    """
    x, y = np.atleast_2d(np.asarray(x, np.float64)), np.atleast_2d(np.asarray(y, np.float64))
    n = x.shape[1]
    out = []
    for i in range(0, len(x), chunk):
        xb, yb = x[i:i + chunk], y[i:i + chunk]
        dx = xb[:, :, None] - xb[:, None, :]
        dy = yb[:, :, None] - yb[:, None, :]
        concord = np.sign(dx * dy).sum(2)
        tie_x, tie_y = (dx == 0).sum(2) - 1.0, (dy == 0).sum(2) - 1.0  # minus the diagonal
        taus = []
        for w in (_rank_weights(xb, yb), _rank_weights(yb, xb)):
            tot = (n - 1) * w.sum(1)
            with np.errstate(invalid="ignore", divide="ignore"):
                taus.append((w * concord).sum(1) / np.sqrt((tot - (w * tie_x).sum(1)) * (tot - (w * tie_y).sum(1))))
        out.append((taus[0] + taus[1]) / 2)
    return np.concatenate(out) if out else np.zeros(0)


def _ci(values: np.ndarray) -> tuple[float | None, float | None, int]:
    v = values[np.isfinite(values)]
    if v.size < 2:
        return None, None, int(v.size)
    lo, hi = np.percentile(v, [2.5, 97.5])
    return float(lo), float(hi), int(v.size)


def _num(x: float | None) -> float | None:
    return None if x is None or not math.isfinite(float(x)) else float(x)


def score_metrics(rank_score: np.ndarray, neg_score: np.ndarray, pos_score: np.ndarray, gain: np.ndarray,
                  negative: np.ndarray, positive: np.ndarray, idx: np.ndarray) -> tuple[dict, np.ndarray]:
    """Point estimates and bootstrap CIs of one score over n pairs (all arrays float/bool[n]).

    ``rank_score`` is correlated with gain (τ_w, ρ); ``neg_score`` ranks pairs by *risk* of
    negative transfer (AUROC of ``negative``), ``pos_score`` by chance of positive transfer.
    idx: int[B, n] bootstrap resamples. Returns the metrics and the resampled AUROC-negative
    values (for paired comparisons).
    """
    out: dict = {"n": int(len(gain)), "n_negative": int(negative.sum()), "n_positive": int(positive.sum())}
    const = np.ptp(rank_score) == 0 if len(rank_score) else True
    out["weighted_tau"] = None if const else _num(_st.weightedtau(rank_score, gain).statistic)
    out["spearman"] = None if const else _num(_st.spearmanr(rank_score, gain).statistic)
    out["auroc_negative"] = auroc(negative, neg_score)
    out["auroc_positive"] = auroc(positive, pos_score)
    boot_neg = batch_auroc(negative[idx], neg_score[idx])
    for name, values in (("weighted_tau", batch_weighted_tau(rank_score[idx], gain[idx])),
                         ("spearman", batch_spearman(rank_score[idx], gain[idx])),
                         ("auroc_negative", boot_neg),
                         ("auroc_positive", batch_auroc(positive[idx], pos_score[idx]))):
        lo, hi, valid = _ci(values) if out[name] is not None else (None, None, 0)
        out[f"{name}_low"], out[f"{name}_high"] = lo, hi
        if name.startswith("auroc"):
            out[f"n_boot_{name}"] = valid
    return out, boot_neg


# -- the learned combination ------------------------------------------------------------------

def logistic_fit_predict(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, *,
                         c: float = COMBO_C) -> np.ndarray:
    """P(y = 1) for ``x_test`` from median imputation → standardisation → L2 logistic regression
    fit on ``x_train`` only; the training share of positives when ``y_train`` has one class."""
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    y = np.asarray(y_train, bool)
    measured = ~np.isnan(x_train).all(axis=0)  # a score no training pair has carries nothing
    if y.all() or not y.any() or not measured.any():
        return np.full(len(x_test), float(y.mean()) if len(y) else 0.5)
    x_train, x_test = x_train[:, measured], x_test[:, measured]
    model = make_pipeline(SimpleImputer(strategy="median"), StandardScaler(),
                          LogisticRegression(C=c, class_weight="balanced", solver="newton-cholesky",
                                             max_iter=200))
    model.fit(x_train, y)
    return model.predict_proba(x_test)[:, 1]


FitPredict = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def loso_predictions(x: np.ndarray, y: np.ndarray, groups: Sequence[str],
                     fit_predict: FitPredict = logistic_fit_predict) -> np.ndarray:
    """Out-of-fold predictions float[n]: the rows of each group (source) predicted by a model fit
    on the rows of every *other* group, never on its own."""
    g = np.asarray(groups, dtype=object)
    out = np.full(len(g), np.nan)
    for held in dict.fromkeys(g):
        test = g == held
        if (~test).sum() == 0:
            continue
        out[test] = fit_predict(x[~test], y[~test], x[test])
    return out


def one_outcome_folds(y: np.ndarray, groups: Sequence[str]) -> int:
    """How many leave-one-source-out folds train on pairs of one outcome only (their held-out
    pairs get that outcome's share, a constant: the combination cannot rank them)."""
    y, g = np.asarray(y, bool), np.asarray(groups, dtype=object)
    return sum(1 for held in dict.fromkeys(g) if len(set(y[g != held])) < 2)


def evaluate(pairs: pd.DataFrame, *, n_boot: int = N_BOOT, seed: int = 0,
             inputs: Sequence[str] = COMBINATION_INPUTS) -> list[dict]:
    """Per group of :func:`pair_frame`: every score's metrics, the leave-one-source-out
    combination's, paired comparisons, and the pairs the combination gets most wrong."""
    results = []
    for group, frame in pairs.groupby("group", sort=True):
        frame = frame.reset_index(drop=True)
        gain = frame["gain"].to_numpy(float)
        neg, pos = frame["negative"].to_numpy(bool), frame["positive"].to_numpy(bool)
        x = frame[list(inputs)].to_numpy(float)
        p_neg = loso_predictions(x, neg, frame["source"])
        p_pos = loso_predictions(x, pos, frame["source"])
        rng = np.random.default_rng([int(seed), len(frame)])
        shared = rng.integers(0, len(frame), size=(n_boot, len(frame)))  # paired across full scores
        metrics, boots = [], {}
        candidates = [(s.key, s.direction * frame[s.key].to_numpy(float)) for s in SCORES]
        candidates.append((COMBINATION, -p_neg))
        for key, oriented in candidates:
            ok = np.isfinite(oriented)
            pos_score = p_pos if key == COMBINATION else oriented
            idx = shared if ok.all() else rng.integers(0, ok.sum(), size=(n_boot, int(ok.sum())))
            if ok.sum() < 2:
                metrics.append({"score": key, "n": int(ok.sum()), "note": "fewer than 2 pairs with this score"})
                continue
            m, boot = score_metrics(oriented[ok], -oriented[ok], pos_score[ok], gain[ok], neg[ok], pos[ok], idx)
            meta = BY_KEY.get(key)
            metrics.append({"score": key, "kind": meta.kind if meta else "combination",
                            "direction": meta.direction if meta else -1,
                            "beyond_budget": bool(meta and meta.beyond_budget),
                            "note": meta.note if meta else "leave-one-source-out logistic regression", **m})
            if ok.all():
                boots[key] = boot
        results.append({"group": group, "n_pairs": len(frame), "n_negative": int(neg.sum()),
                        "n_positive": int(pos.sum()), "n_sources": int(frame["source"].nunique()),
                        "one_outcome_folds": {"negative": one_outcome_folds(neg, frame["source"]),
                                              "positive": one_outcome_folds(pos, frame["source"])},
                        "metrics": metrics, "comparisons": _comparisons(metrics, boots),
                        "predictions": _predictions(frame, p_neg, p_pos)})
    return results


def _comparisons(metrics: list[dict], boots: dict[str, np.ndarray]) -> list[dict]:
    """ΔAUROC(negative) of the combination minus the best single pre-training score and minus
    the best trivial baseline, with paired bootstrap CIs (the same resamples: every score with a
    value for every pair shares them). The best is picked on these data: optimistic for it."""
    if COMBINATION not in boots:
        return []
    combo = next(m for m in metrics if m["score"] == COMBINATION)
    out = []
    for label, keep in (("best single score (within budget)", lambda m: not m["beyond_budget"]),
                        ("best trivial baseline", lambda m: m["kind"] == "trivial")):
        pool = [m for m in metrics if m.get("auroc_negative") is not None and m["score"] in boots
                and m["score"] != COMBINATION and keep(m)]
        if not pool or combo.get("auroc_negative") is None:
            continue
        best = max(pool, key=lambda m: m["auroc_negative"])
        diff = boots[COMBINATION] - boots[best["score"]]
        lo, hi, _ = _ci(diff)
        delta = combo["auroc_negative"] - best["auroc_negative"]
        out.append({"versus": label, "score": best["score"], "score_auroc_negative": best["auroc_negative"],
                    "delta_auroc_negative": delta, "delta_low": lo, "delta_high": hi,
                    "beats_beyond_ci": lo is not None and lo > 0})
    return out


def _predictions(frame: pd.DataFrame, p_neg: np.ndarray, p_pos: np.ndarray) -> list[dict]:
    rows = []
    for (_, r), pn, pp in zip(frame.iterrows(), p_neg, p_pos, strict=True):
        rows.append({"source": r["source"], "target": r["target"], "gain": _num(r["gain"]),
                     "verdict": r["verdict"], "p_negative": _num(pn), "p_positive": _num(pp),
                     "error": _num(abs(float(r["negative"]) - pn))})
    return sorted(rows, key=lambda r: -(r["error"] or 0))


def fit_and_predict(fit_pairs: pd.DataFrame, new_pairs: pd.DataFrame,
                    inputs: Sequence[str] = COMBINATION_INPUTS) -> pd.DataFrame:
    """``new_pairs`` with ``p_negative`` / ``p_positive`` from combinations fit on every pair of
    ``fit_pairs`` of the same group (NaN where the fit suite has no such group)."""
    out = new_pairs.copy()
    out["p_negative"], out["p_positive"] = math.nan, math.nan
    for group, fit in fit_pairs.groupby("group"):
        rows = out["group"] == group
        if not rows.any():
            continue
        x_fit, x_new = fit[list(inputs)].to_numpy(float), out.loc[rows, list(inputs)].to_numpy(float)
        out.loc[rows, "p_negative"] = logistic_fit_predict(x_fit, fit["negative"].to_numpy(bool), x_new)
        out.loc[rows, "p_positive"] = logistic_fit_predict(x_fit, fit["positive"].to_numpy(bool), x_new)
    return out
