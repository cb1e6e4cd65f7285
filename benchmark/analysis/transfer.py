"""Transfer statistics per cell: accuracy, gain over the comparison arm, NTG, q-values, verdicts.

Input is the store's runs frame (``Store.runs_frame()``, columns in docs/architecture.md). A
*cell* is one ``cell_id`` (the content address of its full resolved config without the seed,
see :mod:`benchmark.analysis.cells`); its runs differ by seed. Display labels (source, target,
strategy label, budget) are shown, never grouped on.

Definitions (docs/architecture.md § Science definitions):

* gain = acc(strategy) − acc(arm), paired by seed: the arm is the strategy's comparison arm
  (:func:`comparison_arm`, ``scratch``) on the same target, budget, seed, selection rule,
  input, backbone and target schedule.
* NTG (negative transfer gap; Wang et al., CVPR 2019, §3) = err(S→T) − err(∅→T) = −gain per
  seed. NTG > 0 is negative transfer.
* interval: the paired Student-t 95% CI of the per-seed differences, and the two-sided t
  p-value (:mod:`benchmark.analysis.stats`); q-values by Benjamini–Hochberg across every
  verdict of one table (one report).
* verdict: with at least ``MIN_SEEDS_FOR_VERDICT`` paired seeds, ``negative transfer`` when
  q < 0.05 and the raw NTG CI lies wholly above 0, ``positive transfer`` when q < 0.05 and it
  lies wholly below 0, ``inconclusive`` otherwise; ``too few seeds (n=3 < 5)`` with fewer
  seeds. A strategy without a comparison arm at the same label budget (``source_only`` uses
  no target labels) gets a *reference* row: its numbers, no verdict.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from benchmark.analysis.cells import (
    DISPLAY_KEYS,
    arm_context,
    selection_rule,
    strategy_params,
    variants,
)
from benchmark.analysis.stats import (
    FDR,
    INTERVAL_METHOD,
    MIN_SEEDS_FOR_VERDICT,
    NO_ESTIMATE,
    Estimate,
    bh_qvalues,
    mean_ci,
    paired_t,
)

SCRATCH = "scratch"
CELL_KEYS = ["cell_id"]
PAIR_KEYS = ["target", "labels_per_class", "selection_rule", "context", "seed"]

NEGATIVE = "negative transfer"
POSITIVE = "positive transfer"
INCONCLUSIVE = "inconclusive"
NO_BASELINE = "no comparison arm runs"
REFERENCE = "reference (not a verdict)"
TOO_FEW = "too few seeds"

_REQUIRED = ["source", "target", "strategy", "strategy_label", "labels_per_class", "seed", "status", "accuracy"]


def too_few(n: int) -> str:
    """``too few seeds (n=3 < 5)``."""
    return f"{TOO_FEW} (n={n} < {MIN_SEEDS_FOR_VERDICT})"


def comparison_arm(strategy_name: str, params: Mapping[str, Any] | None = None) -> str | None:
    """The strategy whose paired difference with ``strategy_name`` is its transfer effect: the
    one its declaration names (``scratch`` for every built-in that trains on the labelled
    budget); ``None`` for a reference row (``scratch`` itself, a strategy that uses no target
    labels). A strategy not installed here (a plugin's runs read elsewhere) is compared with
    ``scratch``."""
    del params  # declared arms do not depend on parameters yet
    from benchmark.strategies.registry import get, names

    if strategy_name not in names():
        return SCRATCH
    return get(strategy_name).comparison_arm or None


def _no_arm_reason(strategy_name: str) -> str:
    from benchmark.strategies.registry import get, names

    if strategy_name in names() and get(strategy_name).reference_reason:
        return get(strategy_name).reference_reason
    return f"{strategy_name} declares no comparison arm"


def format_budget(labels_per_class: int) -> str:
    """Display a label budget: ``-1`` → ``all``, ``0`` → ``0 (unlabelled)``, else the number."""
    lpc = int(labels_per_class)
    if lpc < 0:
        return "all"
    if lpc == 0:
        return "0 (unlabelled)"
    return str(lpc)


def budget_sort_key(labels_per_class: int) -> float:
    """Order budgets 0 < 1 < 10 < ... < all (-1 sorts last)."""
    return math.inf if int(labels_per_class) < 0 else float(labels_per_class)


def check_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Validate the columns this module reads; return a copy with the derived columns added.

    ``source`` None → ``""``. Added when missing: ``cell_id`` (from the display keys, for
    constructed frames without one), ``config`` and ``extras`` (``{}``). Always derived:
    ``selection_rule``, ``context`` (:func:`~benchmark.analysis.cells.arm_context`),
    ``variant`` (what tells apart cells sharing a display label).
    """
    missing = [c for c in _REQUIRED if c not in runs.columns]
    if missing:
        raise ValueError(f"runs frame lacks columns {missing}; expected Store.runs_frame() columns")
    out = runs.copy()
    out["source"] = out["source"].astype(object).where(out["source"].notna(), "")
    out["labels_per_class"] = out["labels_per_class"].astype(int)
    out["accuracy"] = pd.to_numeric(out["accuracy"], errors="coerce")
    for col in ("config", "extras"):
        if col not in out.columns:
            out[col] = [{} for _ in range(len(out))]
    if "cell_id" not in out.columns:
        out["cell_id"] = ["|".join(map(str, key)) for key in out[DISPLAY_KEYS].itertuples(index=False)]
    out["selection_rule"] = [selection_rule(e) for e in out["extras"]]
    out["context"] = [arm_context(c) for c in out["config"]]
    found = variants(out) if len(out) else {}
    out["variant"] = out["cell_id"].map(found).fillna("")
    return out


def ok_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Finished runs with a finite accuracy (diverged and failed runs are excluded from statistics)."""
    r = runs if "variant" in runs.columns else check_runs(runs)
    return r[(r["status"] == "ok") & np.isfinite(r["accuracy"])]


def _first(group: pd.DataFrame) -> dict[str, Any]:
    r = group.iloc[0]
    return {"source": r["source"], "target": r["target"], "strategy": r["strategy"],
            "strategy_label": r["strategy_label"], "labels_per_class": int(r["labels_per_class"]),
            "variant": r["variant"], "selection_rule": r["selection_rule"],
            "params": strategy_params(r["config"])}


def display_label(strategy_label: str, variant: str) -> str:
    """``finetune_full [train.steps=96]``: the label, plus what tells same-label cells apart."""
    return f"{strategy_label} [{variant}]" if variant else strategy_label


def cell_summary(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per cell (``cell_id``): mean target accuracy with its t-CI over seeds, clipped to [0, 1].

    Columns: ``cell_id, source, target, strategy, strategy_label, labels_per_class, variant,
    selection_rule, params, acc (Estimate), acc_mean, acc_low, acc_high, n`` (seeds with an
    accuracy), ``n_runs, n_diverged, n_failed``.
    """
    r = check_runs(runs)
    rows = []
    for cell_id, group in r.groupby("cell_id", sort=False):
        ok = group[(group["status"] == "ok") & np.isfinite(group["accuracy"])]
        est = clip_accuracy(mean_ci(ok["accuracy"].to_numpy()))
        rows.append({
            "cell_id": cell_id, **_first(group),
            "acc": est, "acc_mean": est.mean, "acc_low": est.low, "acc_high": est.high, "n": est.n,
            "n_runs": len(group),
            "n_diverged": int((group["status"] == "diverged").sum()),
            "n_failed": int((group["status"] == "failed").sum()),
        })
    columns = ["cell_id", *DISPLAY_KEYS, "strategy", "variant", "selection_rule", "params", "acc",
               "acc_mean", "acc_low", "acc_high", "n", "n_runs", "n_diverged", "n_failed"]
    out = pd.DataFrame(rows, columns=columns)
    return out.sort_values(["source", "target", "strategy_label", "labels_per_class", "variant"],
                           kind="stable").reset_index(drop=True)


def paired_with_scratch(runs: pd.DataFrame) -> pd.DataFrame:
    """Every finished run that has a comparison arm, next to the arm's run of the same seed.

    The arm's run shares target, budget, seed, selection rule and :func:`arm_context`. Columns:
    ``cell_id, source, target, strategy, strategy_label, labels_per_class, variant,
    selection_rule, seed, accuracy, scratch_accuracy`` (NaN when that seed has no finished arm
    run). Strategies without an arm (:func:`comparison_arm` is None) are left out.
    """
    ok = ok_runs(check_runs(runs))
    scratch = (ok[ok["strategy"] == SCRATCH]
               .groupby(PAIR_KEYS, as_index=False)["accuracy"].mean()
               .rename(columns={"accuracy": "scratch_accuracy"}))
    has_arm = [comparison_arm(s, strategy_params(c)) == SCRATCH for s, c in zip(ok["strategy"], ok["config"],
                                                                                 strict=True)]
    transfer = ok[np.asarray(has_arm, dtype=bool)]
    cols = ["cell_id", *DISPLAY_KEYS, "strategy", "variant", "selection_rule", "context", "seed", "accuracy"]
    out = transfer[cols].merge(scratch, on=PAIR_KEYS, how="left")
    return out.drop(columns="context")


def clip_accuracy(est: Estimate) -> Estimate:
    """Clip an accuracy interval to [0, 1] (a t-interval over few seeds can pass 1)."""
    if not est.has_ci:
        return est
    return Estimate(est.mean, max(est.low, 0.0), min(est.high, 1.0), est.n)


def transfer_verdict(ntg: Estimate, q_value: float, *, min_seeds: int = MIN_SEEDS_FOR_VERDICT) -> str:
    """The verdict of one cell from its NTG interval and its BH q-value.

    ``negative transfer``: q < 0.05 and the raw 95% NTG CI wholly above 0; ``positive
    transfer``: q < 0.05 and the CI wholly below 0; ``inconclusive`` otherwise. Fewer than
    ``min_seeds`` paired seeds: ``too few seeds (n=k < min)``; none: no comparison arm runs.
    """
    if ntg.n == 0:
        return NO_BASELINE
    if ntg.n < min_seeds or not ntg.has_ci:
        return f"{TOO_FEW} (n={ntg.n} < {min_seeds})"
    significant = math.isfinite(q_value) and q_value < FDR
    if significant and ntg.low > 0:
        return NEGATIVE
    if significant and ntg.high < 0:
        return POSITIVE
    return INCONCLUSIVE


TABLE_COLUMNS = ["cell_id", *DISPLAY_KEYS, "strategy", "variant", "selection_rule", "params", "arm",
                 "acc", "scratch_acc", "gain", "ntg", "p_value", "q_value", "verdict", "verdict_note",
                 "n_pairs", "interval_method", "gain_mean", "gain_low", "gain_high",
                 "ntg_mean", "ntg_low", "ntg_high"]


def transfer_table(runs: pd.DataFrame, *, min_seeds: int = MIN_SEEDS_FOR_VERDICT) -> pd.DataFrame:
    """One row per non-scratch cell: accuracy, paired gain and NTG, p, BH q-value and verdict.

    Columns: :data:`TABLE_COLUMNS`. ``acc``: t-CI over the cell's seeds; ``scratch_acc``: over
    the paired seeds; ``gain``/``ntg``: paired Student-t CI of the per-seed differences (NTG the
    same interval negated); ``p_value``: two-sided paired t p (NaN below ``min_seeds``, and for
    reference rows); ``q_value``: Benjamini–Hochberg over every row with a p-value in this
    table. Reference rows (no comparison arm) carry ``arm = ""`` and ``verdict = REFERENCE``.
    """
    r = check_runs(runs)
    pairs = paired_with_scratch(r)
    rows = []
    for cell_id, group in r[r["strategy"] != SCRATCH].groupby("cell_id", sort=False):
        info = _first(group)
        ok = group[(group["status"] == "ok") & np.isfinite(group["accuracy"])]
        arm = comparison_arm(info["strategy"], info["params"])
        acc = clip_accuracy(mean_ci(ok["accuracy"].to_numpy()))
        row = {"cell_id": cell_id, **info, "arm": arm or "", "acc": acc, "interval_method": INTERVAL_METHOD}
        if arm is None:
            rows.append({**row, "scratch_acc": NO_ESTIMATE, "gain": NO_ESTIMATE, "ntg": NO_ESTIMATE,
                         "p_value": math.nan, "verdict": REFERENCE,
                         "verdict_note": _no_arm_reason(info["strategy"]), "n_pairs": 0})
            continue
        paired = pairs[(pairs["cell_id"] == cell_id) & np.isfinite(pairs["scratch_accuracy"])]
        result = paired_t(paired["accuracy"].to_numpy(), paired["scratch_accuracy"].to_numpy())
        gain = result.diff
        rows.append({**row, "scratch_acc": clip_accuracy(mean_ci(paired["scratch_accuracy"].to_numpy())),
                     "gain": gain, "ntg": gain.negated(),
                     "p_value": result.p if gain.n >= min_seeds else math.nan,
                     "verdict_note": "", "n_pairs": gain.n})
    out = pd.DataFrame(rows, columns=[c for c in TABLE_COLUMNS if c != "q_value"])
    out["q_value"] = bh_qvalues(out["p_value"].to_numpy(float)) if len(out) else []
    out["verdict"] = [v if v == REFERENCE else transfer_verdict(ntg, q, min_seeds=min_seeds)
                      for v, ntg, q in zip(out["verdict"], out["ntg"], out["q_value"], strict=True)]
    for name in ("gain", "ntg"):
        out[f"{name}_mean"] = [e.mean for e in out[name]]
        out[f"{name}_low"] = [e.low for e in out[name]]
        out[f"{name}_high"] = [e.high for e in out[name]]
    out = out[TABLE_COLUMNS]
    return out.sort_values(["source", "target", "strategy_label", "labels_per_class", "variant"],
                           kind="stable").reset_index(drop=True)


def verdict_counts(table: pd.DataFrame) -> dict[str, int]:
    """``{verdict: count}`` with every "too few seeds (…)" counted under one key."""
    keys = [TOO_FEW if str(v).startswith(TOO_FEW) else v for v in table["verdict"]]
    return {k: keys.count(k) for k in dict.fromkeys(keys)}


def strategy_ranking(runs: pd.DataFrame, *, by_budget: bool = False) -> pd.DataFrame:
    """Mean rank of each strategy across problems (1 = best mean accuracy; ties share the mean rank).

    A problem is a ``(source, target, labels_per_class)`` triple; source-free cells (``scratch``)
    of the same target and budget compete in every source's problem. Problems with fewer than two
    strategies are skipped. A strategy is its display label plus what tells same-label cells
    apart. Columns: ``[labels_per_class,] strategy_label, mean_rank (Estimate, t-CI over
    problems), mean_rank_value, n_problems, wins`` (problems ranked first, ties included),
    sorted best first.
    """
    cells = cell_summary(runs)
    cells = cells[cells["n"] > 0].assign(
        name=[display_label(s, v) for s, v in zip(cells["strategy_label"], cells["variant"], strict=True)]
        if len(cells) else [])
    sourced = cells[cells["source"] != ""]
    sourceless = cells[cells["source"] == ""]
    ranks = []
    for (source, target, lpc), group in sourced.groupby(["source", "target", "labels_per_class"]):
        rivals = sourceless[(sourceless["target"] == target) & (sourceless["labels_per_class"] == lpc)]
        problem = pd.concat([group, rivals])
        if problem["name"].nunique() < 2:
            continue
        rank = problem["acc_mean"].rank(ascending=False, method="average")
        best = problem["acc_mean"].max()
        for label, value, acc in zip(problem["name"], rank, problem["acc_mean"], strict=True):
            ranks.append({"source": source, "target": target, "labels_per_class": lpc,
                          "strategy_label": label, "rank": float(value), "win": bool(acc == best)})
    group_keys = (["labels_per_class"] if by_budget else []) + ["strategy_label"]
    columns = [*group_keys, "mean_rank", "mean_rank_value", "n_problems", "wins"]
    if not ranks:
        return pd.DataFrame(columns=columns)
    frame = pd.DataFrame(ranks)
    rows = []
    for key, group in frame.groupby(group_keys):
        key = key if isinstance(key, tuple) else (key,)
        est = mean_ci(group["rank"].to_numpy())
        rows.append({**dict(zip(group_keys, key, strict=True)), "mean_rank": est,
                     "mean_rank_value": est.mean, "n_problems": est.n,
                     "wins": int(group["win"].sum())})
    out = pd.DataFrame(rows, columns=columns)
    if by_budget:
        out = out.assign(_b=out["labels_per_class"].map(budget_sort_key))
        out = out.sort_values(["_b", "mean_rank_value", "strategy_label"]).drop(columns="_b")
    else:
        out = out.sort_values(["mean_rank_value", "strategy_label"])
    return out.reset_index(drop=True)
