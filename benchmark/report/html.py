"""The HTML report: one self-contained file (figures inline, no network) built from the store's frames.

``build_report(runs, measures, title=...)`` takes ``Store.runs_frame()`` / ``Store.measures_frame()``
(or any frames with those columns), so it is testable on constructed frames; ``tbench report``
glues it to a store. Jinja2 autoescaping is on for every user string (suite and dataset names,
errors, versions); the page's only script (sortable tables) is a constant allowed by hash in a
Content-Security-Policy that also forbids every network fetch.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import importlib.metadata
import math
import platform
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import jinja2
import numpy as np
import pandas as pd
from markupsafe import Markup

from benchmark.analysis import GAP_MEASURES, TRANSFERABILITY_MEASURES
from benchmark.analysis.stats import CHANCE_P, Estimate, mean_ci
from benchmark.analysis.transfer import (
    NEGATIVE,
    POSITIVE,
    REFERENCE,
    budget_sort_key,
    cell_summary,
    check_runs,
    display_label,
    format_budget,
    strategy_ranking,
    transfer_table,
    verdict_counts,
)
from benchmark.analysis.transferability import (
    ALL_BUDGETS,
    correlate_with_gains,
    gain_points,
)
from benchmark.analysis.verdicts import protocol
from benchmark.report import plots, speed
from benchmark.report.forgetting_section import forgetting_section

SORT_JS = """
document.querySelectorAll("table.sortable th").forEach(function (th) {
  th.addEventListener("click", function () {
    var table = th.closest("table"), body = table.tBodies[0];
    var col = Array.prototype.indexOf.call(th.parentNode.children, th);
    var asc = th.getAttribute("aria-sort") !== "ascending";
    table.querySelectorAll("th").forEach(function (h) { h.removeAttribute("aria-sort"); });
    th.setAttribute("aria-sort", asc ? "ascending" : "descending");
    var key = function (row) {
      var cell = row.children[col], v = cell.getAttribute("data-sort");
      if (v === null) { v = cell.textContent; }
      var num = parseFloat(v);
      return isNaN(num) || v.trim() === "" ? v.toLowerCase() : num;
    };
    Array.prototype.slice.call(body.rows).sort(function (a, b) {
      var x = key(a), y = key(b);
      if (typeof x !== typeof y) { x = String(x); y = String(y); }
      return (x < y ? -1 : x > y ? 1 : 0) * (asc ? 1 : -1);
    }).forEach(function (row) { body.appendChild(row); });
  });
});
"""

_ENV = jinja2.Environment(
    loader=jinja2.PackageLoader("benchmark.report", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _fmt(x: Any, digits: int = 3) -> str:
    if x is None or (isinstance(x, float) and not math.isfinite(x)):
        return "—"
    return f"{x:.{digits}f}" if isinstance(x, (float, np.floating)) else str(x)


def _est(e: Estimate, digits: int = 3) -> dict[str, Any]:
    """An Estimate for the template: mean, CI text, n, and a sort key."""
    ci = f"[{e.low:.{digits}f}, {e.high:.{digits}f}]" if e.has_ci else "no CI"
    return {"mean": _fmt(e.mean, digits), "ci": ci, "n": e.n, "text": e.format(digits),
            "sort": "" if math.isnan(e.mean) else repr(e.mean)}


def _p(x: Any) -> str:
    """A p- or q-value: ``0.031``, ``<0.001``, or ``—``."""
    if x is None or not math.isfinite(float(x)):
        return "—"
    return "<0.001" if float(x) < 0.001 else f"{float(x):.3f}"


def _budget_sort(labels_per_class: int) -> int:
    """A numeric data-sort key for budgets (``all`` last)."""
    return 10**9 if int(labels_per_class) < 0 else int(labels_per_class)


def _name(source: str) -> str:
    return source if source else "— (no source)"


def _matrices(table: pd.DataFrame) -> list[dict[str, Any]]:
    """One sources × targets matrix per (strategy, budget), cells coloured by gain."""
    out = []
    finite = table["gain_mean"].astype(float)
    scale = float(np.nanmax(np.abs(finite))) if finite.notna().any() else 0.0
    budgets = sorted(table["labels_per_class"].unique(), key=budget_sort_key)
    table = table.assign(name=[display_label(s, v) for s, v in zip(table["strategy_label"], table["variant"],
                                                                   strict=True)])
    rules = sorted(table["selection_rule"].unique())
    for label, rule in sorted({(n, r) for n, r in zip(table["name"], table["selection_rule"], strict=True)}):
        for lpc in budgets:
            sub = table[(table["name"] == label) & (table["labels_per_class"] == lpc)
                        & (table["selection_rule"] == rule)]
            if sub.empty:
                continue
            sources, targets = sorted(sub["source"].unique()), sorted(sub["target"].unique())
            grid = []
            for source in sources:
                row = []
                for target in targets:
                    hit = sub[(sub["source"] == source) & (sub["target"] == target)]
                    if hit.empty:
                        row.append(None)
                        continue
                    r = hit.iloc[0]
                    bg, fg = plots.gain_colour(float(r["gain_mean"]), scale)
                    row.append({"gain": _est(r["gain"]), "ntg": _est(r["ntg"]), "acc": _est(r["acc"]),
                                "scratch": _est(r["scratch_acc"]),
                                "verdict": r["verdict"] + (f" ({r['verdict_note']})" if r["verdict_note"] else ""),
                                "q": _p(r["q_value"]),
                                "negative": r["verdict"] == NEGATIVE, "style": f"background:{bg};color:{fg}"})
                grid.append({"source": source, "cells": row})
            out.append({"strategy": label + (f" · {rule}" if len(rules) > 1 else ""),
                        "budget": format_budget(lpc), "targets": targets, "rows": grid})
    return out


def _ranking_rows(ranking: pd.DataFrame) -> list[dict[str, Any]]:
    rows = []
    for _, r in ranking.iterrows():
        row = {"strategy": r["strategy_label"], "rank": _est(r["mean_rank"], 2), "wins": int(r["wins"]),
               "n": int(r["n_problems"])}
        if "labels_per_class" in ranking.columns:
            row["budget"] = format_budget(r["labels_per_class"])
        rows.append(row)
    return rows


def _runs_rows(runs: pd.DataFrame) -> list[dict[str, Any]]:
    rows = []
    for _, r in runs.iterrows():
        acc = r["accuracy"]
        rows.append({
            "run_id": r.get("run_id", ""), "source": _name(r["source"]), "target": r["target"],
            "strategy": display_label(r["strategy_label"], r.get("variant", "") or ""),
            "budget": format_budget(r["labels_per_class"]),
            "budget_sort": _budget_sort(r["labels_per_class"]), "seed": int(r["seed"]),
            "status": r["status"], "accuracy": _fmt(acc, 4),
            "wall_s": _fmt(r.get("wall_s"), 1), "compile_s": _fmt(r.get("compile_s"), 1),
            "diverged_step": "" if pd.isna(r.get("diverged_step")) else int(r["diverged_step"]),
            "error": "" if pd.isna(r.get("error")) else str(r["error"]),
        })
    return rows


def _at_chance_rows(runs: pd.DataFrame) -> list[dict[str, Any]]:
    """Finished runs whose test accuracy is not above guessing (binomial p ≥ CHANCE_P).

    Runs record ``extras["above_chance_p"]`` (and ``n_test``) since session 3; older stores
    have neither, and their runs are not judged.
    """
    if "extras" not in runs.columns:
        return []

    def p_value(extras: Any) -> float:
        p = extras.get("above_chance_p") if isinstance(extras, Mapping) else None
        return float("nan") if p is None else float(p)

    p = runs["extras"].map(p_value)
    chance = runs[(runs["status"] == "ok") & (p >= CHANCE_P)]  # NaN (not recorded) compares False
    rows = []
    for (_, r), row in zip(chance.iterrows(), _runs_rows(chance), strict=True):
        k = len(r["per_class_accuracy"]) if isinstance(r["per_class_accuracy"], list) else 0
        rows.append({**row, "chance": _fmt(1 / k, 3) if k else "—", "p": f"{p[r.name]:.2g}",
                     "n_test": r["extras"].get("n_test", "—")})
    return rows


def _correlation_rows(corr: pd.DataFrame, names: tuple[str, ...]) -> list[dict[str, Any]]:
    sub = corr[corr["measure"].isin(names)]
    return [{"measure": r["measure"], "space": r["space"], "strategy": r["strategy_label"],
             "budget": r["budget"], "rho": _est(r["rho"], 2)} for _, r in sub.iterrows()]


def run_environment(runs: pd.DataFrame) -> list[tuple[str, str]]:
    """What produced the runs: backends, devices, hosts, package versions, time spent."""
    def values(col: str) -> str:
        if col not in runs.columns:
            return "—"
        seen = sorted({str(v) for v in runs[col] if v is not None and not (isinstance(v, float) and math.isnan(v))})
        return ", ".join(seen) if seen else "—"

    def total(col: str) -> str:
        if col not in runs.columns:
            return "—"
        return f"{pd.to_numeric(runs[col], errors='coerce').fillna(0).sum():.1f} s"

    versions: dict[str, set[str]] = {}
    for v in runs.get("versions", pd.Series(dtype=object)):
        if isinstance(v, Mapping):
            for pkg, ver in v.items():
                versions.setdefault(str(pkg), set()).add(str(ver))
    rows = [("backend", values("backend")), ("device", values("device")), ("host", values("host")),
            ("wall time (sum over runs)", total("wall_s")), ("compile time (sum)", total("compile_s")),
            ("source pretraining time (sum)", total("pretrain_s"))]
    if "finished_at" in runs.columns and runs["finished_at"].notna().any():
        done = runs["finished_at"].dropna().astype(str)
        rows.append(("runs finished", f"{done.min()} … {done.max()}"))
    rows += [(f"{pkg} (runs)", ", ".join(sorted(v))) for pkg, v in sorted(versions.items())]
    return rows


def report_environment() -> list[tuple[str, str]]:
    """The machine and packages that rendered the report."""
    rows = [("python", platform.python_version()), ("platform", platform.platform())]
    for pkg in ("transferbench", "numpy", "pandas", "scipy", "scikit-learn", "matplotlib", "seaborn", "jinja2"):
        try:
            rows.append((f"{pkg} (report)", importlib.metadata.version(pkg)))
        except importlib.metadata.PackageNotFoundError:
            continue
    return rows


def build_report(
    runs: pd.DataFrame,
    measures: pd.DataFrame | None = None,
    *,
    title: str,
    environment: Mapping[str, str] | None = None,
    bench: Sequence[Mapping[str, Any]] = (),
    ignored: Sequence[Mapping[str, Any]] = (),
    table: pd.DataFrame | None = None,
    n_bootstrap: int | None = None,
    seed: int | None = None,
) -> str:
    """Render the report as one HTML string.

    runs: ``Store.runs_frame()`` columns (at least ``source, target, strategy, strategy_label,
    labels_per_class, seed, status, accuracy``), already restricted to the cells being reported
    (``tbench report SUITE`` leaves out stale and foreign runs and passes their counts as
    ``ignored``: ``[{"kind", "runs", "reason"}]``). measures: ``Store.measures_frame()`` or
    None; the gap/transferability sections appear only when it has rows. environment: extra
    ``{label: value}`` lines (store path, suite file, ...). bench: results of ``tbench bench``
    (``speed.load_bench``) for the Speed section; no section when empty. table: a precomputed
    ``transfer_table(runs)`` (the JSON export shares it). ``n_bootstrap``/``seed``: accepted
    and ignored (the report no longer bootstraps; kept so old callers still work).
    """
    del n_bootstrap, seed
    runs = check_runs(runs)
    cells = cell_summary(runs)
    table = transfer_table(runs) if table is None else table
    measures = measures if measures is not None and len(measures) else None
    gap_section = None
    if measures is not None and len(table):
        corr = correlate_with_gains(table, measures)
        points = gain_points(table, measures)
        pooled = points[points["budget"] == ALL_BUDGETS]
        scores = measures[measures["measure"].isin(TRANSFERABILITY_MEASURES)]
        gap_section = {
            "figure": plots.gap_gain_scatter(pooled, corr[corr["budget"] == ALL_BUDGETS]),
            "gap_rows": _correlation_rows(corr, GAP_MEASURES),
            "other_rows": _correlation_rows(corr[~corr["measure"].isin(GAP_MEASURES + TRANSFERABILITY_MEASURES)],
                                            tuple(corr["measure"].unique())),
            "score_rows": _correlation_rows(corr, TRANSFERABILITY_MEASURES),
            "score_values": [{"source": s, "target": t, "measure": m, "space": sp,
                              "value": _est(mean_ci(pd.to_numeric(g["value"], errors="coerce").to_numpy()), 4)}
                             for (s, t, m, sp), g in scores.groupby(["source", "target", "measure", "space"])],
        }
    verdict_rows = []
    for _, r in table.sort_values("ntg_mean", ascending=False, na_position="last").iterrows():
        verdict_rows.append({"source": r["source"], "target": r["target"], "strategy": r["strategy_label"],
                             "variant": r["variant"], "params": ", ".join(f"{k}={v}" for k, v in
                                                                          sorted((r["params"] or {}).items())),
                             "budget": format_budget(r["labels_per_class"]),
                             "budget_sort": _budget_sort(r["labels_per_class"]),
                             "rule": r["selection_rule"], "arm": r["arm"] or "—",
                             "acc": _est(r["acc"]), "scratch": _est(r["scratch_acc"]),
                             "gain": _est(r["gain"]), "ntg": _est(r["ntg"]),
                             "p": _p(r["p_value"]), "q": _p(r["q_value"]),
                             "p_sort": "" if not math.isfinite(r["p_value"]) else repr(r["p_value"]),
                             "q_sort": "" if not math.isfinite(r["q_value"]) else repr(r["q_value"]),
                             "verdict": r["verdict"], "note": r["verdict_note"],
                             "negative": r["verdict"] == NEGATIVE, "positive": r["verdict"] == POSITIVE,
                             "reference": r["verdict"] == REFERENCE})
    counts = runs["status"].value_counts().to_dict()
    problems = runs[runs["status"] != "ok"]
    named = cells.assign(strategy_label=[display_label(s, v) for s, v in
                                         zip(cells["strategy_label"], cells["variant"], strict=True)])
    context = {
        "title": title,
        "generated_at": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "n_runs": len(runs), "counts": sorted(counts.items()), "n_cells": len(cells),
        "seeds": sorted({int(s) for s in runs["seed"]}),
        "protocol": protocol(table, runs),
        "ignored": [dict(i) for i in ignored],
        "verdict_rows": verdict_rows,
        "multi_rule": len({r["rule"] for r in verdict_rows}) > 1,
        "verdict_counts": sorted(verdict_counts(table).items()) if len(table) else [],
        "n_negative": sum(r["negative"] for r in verdict_rows),
        "matrices": _matrices(table[table["arm"] != ""]) if len(table) else [],
        "curves": plots.budget_curves(named),
        "gap": gap_section,
        "forgetting": forgetting_section(runs, table),
        "ranking": _ranking_rows(strategy_ranking(runs)),
        "ranking_by_budget": _ranking_rows(strategy_ranking(runs, by_budget=True)),
        "cells": [{"source": _name(r["source"]), "target": r["target"],
                   "strategy": display_label(r["strategy_label"], r["variant"]), "rule": r["selection_rule"],
                   "budget": format_budget(r["labels_per_class"]),
                   "budget_sort": _budget_sort(r["labels_per_class"]), "acc": _est(r["acc"]),
                   "runs": int(r["n_runs"]), "diverged": int(r["n_diverged"]), "failed": int(r["n_failed"])}
                  for _, r in cells.assign(_b=cells["labels_per_class"].map(budget_sort_key))
                  .sort_values(["source", "target", "strategy_label", "_b"]).iterrows()],
        "runs": _runs_rows(runs),
        "problems": _runs_rows(problems),
        "at_chance": _at_chance_rows(runs),
        "chance_p": CHANCE_P,
        "environment": [*(environment or {}).items(), *run_environment(runs), *report_environment()],
        "speed": speed.speed_section(bench),
        "sort_js": Markup(SORT_JS),
        "script_hash": "sha256-" + base64.b64encode(hashlib.sha256(SORT_JS.encode()).digest()).decode(),
    }
    return _ENV.get_template("report.html.j2").render(**context)


def write_report(path: str | Path, html: str) -> Path:
    """Write the report (creating parent folders); returns the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    return out
