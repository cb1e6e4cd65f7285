"""Verdicts as data: the protocol a report follows and one JSON record per verdict.

``tbench report SUITE --json FILE`` writes :func:`report_data`; the HTML report shows the same
records and the same protocol box. Pure Python over :func:`~benchmark.analysis.transfer.transfer_table`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from benchmark.analysis.forgetting import forgetting_table
from benchmark.analysis.stats import CORRECTION, FDR, INTERVAL_METHOD, MIN_SEEDS_FOR_VERDICT
from benchmark.analysis.transfer import format_budget

VERDICT_RULE = (f"With at least {MIN_SEEDS_FOR_VERDICT} paired seeds: 'negative transfer' when the "
                f"Benjamini–Hochberg q-value is below {FDR} and the raw 95% NTG interval lies wholly "
                "above 0; 'positive transfer' when q < 0.05 and it lies wholly below 0; 'inconclusive' "
                f"otherwise. Fewer than {MIN_SEEDS_FOR_VERDICT} paired seeds: 'too few seeds', no verdict "
                "and no q-value (such rows are not counted in the correction).")
ARM_RULE = ("Each strategy is compared with its comparison arm, paired by seed on the same target, label "
            "budget, selection rule, input, backbone and target schedule: scratch for every strategy that "
            "trains on the budget's target labels. An arm that uses a different label budget is never "
            "compared as transfer: source_only (no target labels) is a reference row, not a verdict.")


def _num(x: Any) -> float | None:
    """A JSON-safe float: NaN/inf → None."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def protocol(table: pd.DataFrame, runs: pd.DataFrame) -> dict[str, Any]:
    """What the verdicts rest on: selection rules, seeds, interval method, correction, rules."""
    rules = sorted(set(table["selection_rule"])) if len(table) else sorted(set(runs.get("selection_rule", [])))
    seeds = sorted({int(s) for s in runs["seed"]}) if len(runs) else []
    paired = [int(n) for n, v in zip(table["n_pairs"], table["arm"], strict=True) if v] if len(table) else []
    return {
        "selection_rules": rules,
        "seeds": seeds,
        "paired_seeds_per_verdict": {"min": min(paired), "max": max(paired)} if paired else None,
        "min_seeds_for_verdict": MIN_SEEDS_FOR_VERDICT,
        "interval_method": INTERVAL_METHOD,
        "interval_of": "NTG = err(S→T) − err(arm→T) = −gain, per seed",
        "correction": CORRECTION,
        "verdict_rule": VERDICT_RULE,
        "comparison_arms": ARM_RULE,
    }


def verdict_records(table: pd.DataFrame) -> list[dict[str, Any]]:
    """One JSON-ready dict per row of ``transfer_table`` (reference rows included, verdict says so)."""
    out = []
    for _, r in table.iterrows():
        out.append({
            "source": r["source"] or None, "target": r["target"], "strategy": r["strategy"],
            "strategy_label": r["strategy_label"], "params": dict(r["params"] or {}),
            "variant": r["variant"], "cell_id": r["cell_id"],
            "budget": int(r["labels_per_class"]), "budget_label": format_budget(r["labels_per_class"]),
            "selection_rule": r["selection_rule"], "comparison_arm": r["arm"] or None,
            "n": int(r["n_pairs"]) if r["arm"] else int(r["acc"].n),
            "accuracy": _num(r["acc"].mean), "arm_accuracy": _num(r["scratch_acc"].mean),
            "mean_gain": _num(r["gain_mean"]), "gain_low": _num(r["gain_low"]), "gain_high": _num(r["gain_high"]),
            "ntg": _num(r["ntg_mean"]), "interval_low": _num(r["ntg_low"]), "interval_high": _num(r["ntg_high"]),
            "interval_method": r["interval_method"], "p_value": _num(r["p_value"]), "q_value": _num(r["q_value"]),
            "verdict": r["verdict"], "note": r["verdict_note"] or None,
        })
    return out


def report_data(table: pd.DataFrame, runs: pd.DataFrame, *, title: str,
                ignored: Sequence[Mapping[str, Any]] = (), environment: Mapping[str, str] | None = None,
                generated_at: str = "") -> dict[str, Any]:
    """The whole JSON document: title, protocol, ignored runs, verdicts (``interval_*`` are NTG's).

    Each verdict also carries ``forgetting_mean/low/high/n/probe`` (the cell's mean forgetting with
    its t-CI, :func:`~benchmark.analysis.forgetting.forgetting_table`), null where its runs record none.
    """
    records = verdict_records(table)
    forgetting = forgetting_table(runs, table).set_index("cell_id") if len(runs) else None
    for record in records:  # forgetting_* where the cell's runs record it, else null
        hit = forgetting is not None and record["cell_id"] in forgetting.index
        f = forgetting.loc[record["cell_id"]] if hit else None
        record.update({key: _num(f[key]) if hit else None
                       for key in ("forgetting_mean", "forgetting_low", "forgetting_high")})
        record.update(forgetting_n=int(f["n"]) if hit else None, forgetting_probe=f["probe"] if hit else None)
    return {"title": title, "generated_at": generated_at, "environment": dict(environment or {}),
            "protocol": protocol(table, runs), "ignored_runs": [dict(i) for i in ignored],
            "verdicts": records}
