"""Forgetting beside target gain, per cell: the trade-off a user picks a fine-tuning strategy on (issue 16).

The engine records, for every run that starts from a source, in the run's ``extras``
(``benchmark/engine/forgetting.py``): ``source_acc_before`` (the source model on the source test
split), ``source_acc_after`` (the transferred backbone, through the kept head or a linear probe),
``forgetting = before − after`` (positive: the source task got worse), ``forgetting_probe`` and
``forgetting_n_test``.

* :func:`run_columns` — those values (and ``source_accuracy``, ``val_accuracy``,
  ``selection_rule``) as flat per-run columns, ``None`` where a run records none (export).
* :func:`forgetting_table` — per cell (``cell_id``): mean forgetting with its Student-t 95% CI
  over seeds (:func:`benchmark.analysis.stats.mean_ci`, the one interval recipe) and n, beside
  the cell's paired gain over its comparison arm from
  :func:`~benchmark.analysis.transfer.transfer_table`. Cells without forgetting data (scratch,
  stores from before issue 16) are left out.

Pure pandas; no JAX.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

from benchmark.analysis.stats import NO_ESTIMATE, mean_ci
from benchmark.analysis.transfer import check_runs, transfer_table

EXPORT_COLUMNS = ("forgetting", "source_acc_before", "source_acc_after", "forgetting_probe",
                  "source_accuracy", "val_accuracy", "selection_rule")
"""Per-run columns ``tbench export`` adds from ``extras`` (empty where a run records none)."""

TABLE_COLUMNS = ["cell_id", "source", "target", "strategy", "strategy_label", "labels_per_class", "variant",
                 "selection_rule", "forgetting", "forgetting_mean", "forgetting_low", "forgetting_high", "n",
                 "probe", "source_acc_before", "source_acc_after", "arm", "gain", "gain_mean", "gain_low",
                 "gain_high"]


def _extra(extras: Any, key: str) -> Any:
    value = extras.get(key) if isinstance(extras, Mapping) else None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def run_columns(runs: pd.DataFrame) -> pd.DataFrame:
    """``EXPORT_COLUMNS`` of every run (same index as ``runs``), read from its ``extras``; ``None`` if absent."""
    extras = runs["extras"] if "extras" in runs.columns else pd.Series([{}] * len(runs), index=runs.index)
    return pd.DataFrame({col: pd.Series([_extra(e, col) for e in extras], index=runs.index, dtype=object)
                         for col in EXPORT_COLUMNS}, index=runs.index)


def forgetting_values(runs: pd.DataFrame) -> pd.Series:
    """Per run: its recorded ``forgetting`` as a float (NaN when it records none)."""
    extras = runs["extras"] if "extras" in runs.columns else pd.Series([{}] * len(runs), index=runs.index)
    return pd.to_numeric(pd.Series([_extra(e, "forgetting") for e in extras], index=runs.index, dtype=object),
                         errors="coerce").astype(float)


def has_forgetting(runs: pd.DataFrame) -> bool:
    """True when at least one run records a finite ``forgetting``."""
    return bool(len(runs)) and bool(np.isfinite(forgetting_values(runs)).any())


def forgetting_table(runs: pd.DataFrame, table: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per cell whose finished runs record forgetting. Columns: :data:`TABLE_COLUMNS`.

    runs: the runs being reported (a suite report passes its current cells only). table: the
    ``transfer_table(runs)`` the report already computed (computed here when None).
    ``forgetting``: mean over the cell's finished runs with its t-CI and n (an ``Estimate``);
    ``probe``: ``kept head`` / ``linear probe`` (both, comma-joined, if the runs differ);
    ``source_acc_before``/``after``: plain means. ``gain``: the paired gain over ``arm`` from
    ``table`` (``NO_ESTIMATE`` and ``arm = ""`` for reference rows such as ``source_only``).
    """
    r = check_runs(runs)
    forgetting = forgetting_values(r)
    ok = r[(r["status"] == "ok") & np.isfinite(forgetting)].assign(_f=forgetting)
    if ok.empty:
        return pd.DataFrame(columns=TABLE_COLUMNS)
    table = transfer_table(r) if table is None else table
    by_cell = {row["cell_id"]: row for _, row in table.iterrows()}
    rows = []
    for cell_id, group in ok.groupby("cell_id", sort=False):
        first = group.iloc[0]
        est = mean_ci(group["_f"].to_numpy())
        probes = sorted({str(p) for p in (_extra(e, "forgetting_probe") for e in group["extras"]) if p})
        verdict = by_cell.get(cell_id)
        gain = verdict["gain"] if verdict is not None else NO_ESTIMATE

        def mean_of(key: str, g: pd.DataFrame = group) -> float:
            values = pd.to_numeric(pd.Series([_extra(e, key) for e in g["extras"]], dtype=object), errors="coerce")
            return float(values.mean()) if values.notna().any() else math.nan

        rows.append({
            "cell_id": cell_id, "source": first["source"], "target": first["target"], "strategy": first["strategy"],
            "strategy_label": first["strategy_label"], "labels_per_class": int(first["labels_per_class"]),
            "variant": first["variant"], "selection_rule": first["selection_rule"],
            "forgetting": est, "forgetting_mean": est.mean, "forgetting_low": est.low,
            "forgetting_high": est.high, "n": est.n, "probe": ", ".join(probes) or "—",
            "source_acc_before": mean_of("source_acc_before"), "source_acc_after": mean_of("source_acc_after"),
            "arm": (verdict["arm"] or "") if verdict is not None else "",
            "gain": gain, "gain_mean": gain.mean, "gain_low": gain.low, "gain_high": gain.high,
        })
    out = pd.DataFrame(rows, columns=TABLE_COLUMNS)
    return out.sort_values(["strategy_label", "source", "target", "labels_per_class", "variant"],
                           kind="stable").reset_index(drop=True)
