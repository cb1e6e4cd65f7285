"""The report's "Forgetting vs target gain" section: per strategy, what each cell forgot of its source and gained on its target.

:func:`forgetting_section` turns :func:`benchmark.analysis.forgetting.forgetting_table` into the
template's context: one table per strategy (cell, n, mean forgetting [95% CI], probe, gain
[95% CI]) and one scatter of the cells (``plots.forgetting_gain_scatter``). Values are plain
strings; the template escapes them (autoescape), the figure is an inline SVG data URI.
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from benchmark.analysis.forgetting import forgetting_table, has_forgetting
from benchmark.analysis.stats import Estimate
from benchmark.analysis.transfer import budget_sort_key, display_label, format_budget
from benchmark.report import plots


def _est(e: Estimate, digits: int = 3) -> dict[str, Any]:
    """An Estimate for the template's ``est`` macro (mean, CI text, n, sort key)."""
    mean = "—" if math.isnan(e.mean) else f"{e.mean:.{digits}f}"
    ci = f"[{e.low:.{digits}f}, {e.high:.{digits}f}]" if e.has_ci else "no CI"
    return {"mean": mean, "ci": ci, "n": e.n, "text": e.format(digits), "sort": "" if math.isnan(e.mean) else repr(e.mean)}


def _cell_name(r: pd.Series) -> str:
    pair = f"{r['source']} → {r['target']}" if r["source"] else r["target"]
    return f"{pair} · {format_budget(r['labels_per_class'])} labels/class"


def forgetting_section(runs: pd.DataFrame, table: pd.DataFrame) -> dict[str, Any] | None:
    """The section's context, or None when no run records forgetting (the page then says so in a sentence).

    runs: the reported runs (``check_runs`` applied); table: their ``transfer_table``.
    Keys: ``strategies`` (``[{"strategy", "rows": [...]}]``), ``figure`` (data URI or None),
    ``left_out`` (cells reported without forgetting data, e.g. scratch), ``no_gain`` (cells
    with forgetting but no comparison arm, so not in the figure).
    """
    if not has_forgetting(runs):
        return None
    cells = forgetting_table(runs, table)
    multi_rule = cells["selection_rule"].nunique() > 1
    strategies = []
    for label, group in cells.groupby("strategy_label", sort=True):
        group = group.assign(_b=group["labels_per_class"].map(budget_sort_key))
        rows = []
        for _, r in group.sort_values(["source", "target", "_b", "variant"], kind="stable").iterrows():
            rows.append({"cell": _cell_name(r), "variant": r["variant"],
                         "rule": r["selection_rule"] if multi_rule else "",
                         "n": int(r["n"]), "forgetting": _est(r["forgetting"]), "probe": r["probe"],
                         "gain": _est(r["gain"]), "arm": r["arm"] or "no comparison arm"})
        strategies.append({"strategy": display_label(label, ""), "rows": rows})
    reported = set(runs["cell_id"])
    return {"strategies": strategies, "figure": plots.forgetting_gain_scatter(cells),
            "left_out": len(reported - set(cells["cell_id"])),
            "no_gain": int((~cells["gain_mean"].astype(float).map(math.isfinite)).sum())}
