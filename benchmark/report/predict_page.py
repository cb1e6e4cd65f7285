"""The page of ``tbench predict``: ``reports/nt_prediction.html``, and its CSV files.

One self-contained HTML file like the report (:mod:`benchmark.report.html`): figures are inline
SVG data URIs (no script runs in an image), every user string is escaped by Jinja2's autoescape,
and the Content-Security-Policy forbids every fetch; the only script is the report's constant
table sorter, allowed by its hash. Sections per group (strategy × budget): ROC curves for
"negative transfer", score-vs-gain plots, and every score ranked by its AUROC with 95% CIs.
Never imports JAX.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from markupsafe import Markup

from benchmark.analysis.predict import BY_KEY, COMBINATION, SCORES
from benchmark.report.html import _ENV, SORT_JS
from benchmark.report.plots import _style, _uri

TOP_K = 5
METRICS = ("auroc_negative", "auroc_positive", "weighted_tau", "spearman")


def _fmt(x: Any, digits: int = 3) -> str:
    return "—" if x is None or (isinstance(x, float) and not math.isfinite(x)) else f"{x:.{digits}f}"


def _cell(m: Mapping[str, Any], name: str) -> dict[str, str]:
    value = m.get(name)
    lo, hi = m.get(f"{name}_low"), m.get(f"{name}_high")
    return {"mean": _fmt(value), "ci": f"[{_fmt(lo)}, {_fmt(hi)}]" if lo is not None else "",
            "sort": "" if value is None else repr(float(value))}


def _ranked(metrics: list[dict]) -> list[dict]:
    rows = [m for m in metrics if "auroc_negative" in m]
    rows.sort(key=lambda m: (m["auroc_negative"] is None, -(m["auroc_negative"] or 0)))
    return rows


def _oriented(pairs: pd.DataFrame, group: dict, key: str) -> np.ndarray:
    """Risk of negative transfer per pair of the group: −(oriented score), or P(NT) out of fold."""
    if key == COMBINATION:
        p = {(r["source"], r["target"]): r["p_negative"] for r in group["predictions"]}
        return np.array([p.get((s, t)) if p.get((s, t)) is not None else np.nan
                         for s, t in zip(pairs["source"], pairs["target"], strict=True)], float)
    return -BY_KEY[key].direction * pairs[key].to_numpy(float)


def roc_figure(pairs: pd.DataFrame, group: dict, keys: list[str]) -> str | None:
    """ROC curves for "negative transfer" of ``keys`` on one group's pairs (SVG data URI)."""
    from matplotlib.figure import Figure
    from sklearn.metrics import roc_curve

    y = pairs["negative"].to_numpy(bool)
    if y.all() or not y.any():
        return None
    with _style():
        fig = Figure(figsize=(4.6, 4.2))
        ax = fig.add_subplot()
        ax.plot([0, 1], [0, 1], color="#999", linestyle="--", linewidth=1, label="chance")
        for key in keys:
            risk = _oriented(pairs, group, key)
            ok = np.isfinite(risk)
            if ok.sum() < 3 or y[ok].all() or not y[ok].any():
                continue
            fpr, tpr, _ = roc_curve(y[ok], risk[ok])
            ax.plot(fpr, tpr, linewidth=2.2 if key == COMBINATION else 1.2, label=key)
        ax.set_xlabel("false positive rate")
        ax.set_ylabel("true positive rate (negative-transfer cells)")
        ax.legend(fontsize=7, loc="lower right")
        return _uri(fig)


def gain_figure(pairs: pd.DataFrame, group: dict, keys: list[str]) -> str | None:
    """Observed mean gain vs each score (one panel per score); negative-transfer cells in red."""
    from matplotlib.figure import Figure

    if not keys:
        return None
    cols = min(3, len(keys))
    rows = math.ceil(len(keys) / cols)
    colours = np.where(pairs["negative"], "#b2182b", np.where(pairs["positive"], "#2166ac", "#888888"))
    with _style():
        fig = Figure(figsize=(3.3 * cols, 2.8 * rows))
        for i, key in enumerate(keys):
            ax = fig.add_subplot(rows, cols, i + 1)
            x = -_oriented(pairs, group, key) if key == COMBINATION else pairs[key].to_numpy(float)
            ax.axhline(0, color="#999", linewidth=0.8)
            ax.scatter(x, pairs["gain"], c=list(colours), s=16)
            ax.set_title(("−P(NT), out of fold" if key == COMBINATION else key), fontsize=8)
            ax.set_ylabel("gain over scratch" if i % cols == 0 else "")
        fig.tight_layout()
        return _uri(fig)


def build_page(doc: Mapping[str, Any], pairs: pd.DataFrame, new_pairs: pd.DataFrame | None = None) -> str:
    """The HTML page of a ``tbench predict`` document (``doc``: what the JSON file holds)."""
    sections = []
    for group in doc["groups"]:
        frame = pairs[pairs["group"] == group["group"]].reset_index(drop=True)
        ranked = _ranked(group["metrics"])
        top = [m["score"] for m in ranked if m["score"] != COMBINATION and not m.get("beyond_budget")][:TOP_K]
        sections.append({
            "group": group["group"], "n_pairs": group["n_pairs"], "n_negative": group["n_negative"],
            "n_positive": group["n_positive"], "n_sources": group["n_sources"],
            "one_outcome": group.get("one_outcome_folds", {}),
            "roc": roc_figure(frame, group, [*top, COMBINATION]),
            "gain": gain_figure(frame, group, [*top[:5], COMBINATION]),
            "rows": [{"score": m["score"], "kind": m.get("kind", ""), "note": m.get("note", ""),
                      "beyond": m.get("beyond_budget", False), "n": m.get("n", 0),
                      "combo": m["score"] == COMBINATION, **{k: _cell(m, k) for k in METRICS}} for m in ranked],
            "comparisons": [{**c, "delta": _fmt(c["delta_auroc_negative"]),
                             "ci": f"[{_fmt(c['delta_low'])}, {_fmt(c['delta_high'])}]",
                             "base": _fmt(c["score_auroc_negative"])} for c in group["comparisons"]],
            "failures": [{**p, "p": _fmt(p["p_negative"]), "g": _fmt(p["gain"])} for p in group["predictions"][:8]],
        })
    on = doc.get("on")
    on_rows = []
    if on is not None and new_pairs is not None:
        for _, r in new_pairs.sort_values("p_negative", ascending=False).iterrows():
            verdict = r.get("verdict")
            on_rows.append({"group": r["group"], "source": r["source"], "target": r["target"],
                            "p": _fmt(r["p_negative"]), "p_sort": "" if pd.isna(r["p_negative"]) else repr(r["p_negative"]),
                            "verdict": verdict if isinstance(verdict, str) else "not run"})
    context = {
        "title": doc["title"], "generated_at": doc["generated_at"], "fit_suite": doc["fit_suite"],
        "protocol": doc["protocol"], "sections": sections, "on": on, "on_rows": on_rows,
        "on_eval": {k: _cell(on["evaluation"], k) for k in METRICS} if on and on.get("evaluation") else None,
        "scores": [{"key": s.key, "kind": s.kind, "direction": "higher = more gain" if s.direction > 0
                    else "higher = less gain", "note": s.note, "beyond": s.beyond_budget} for s in SCORES],
        "wall_s": doc.get("wall_s"),
        "sort_js": Markup(SORT_JS),
        "script_hash": "sha256-" + base64.b64encode(hashlib.sha256(SORT_JS.encode()).digest()).decode(),
    }
    return _ENV.get_template("nt_prediction.html.j2").render(**context)


def write_csvs(doc: Mapping[str, Any], pairs: pd.DataFrame, new_pairs: pd.DataFrame | None,
               metrics_path: Path, pairs_path: Path) -> None:
    """``metrics_path``: one row per (group, score); ``pairs_path``: every pair with its scores,
    outcome and out-of-fold P(negative transfer) (and the ``--on`` suite's pairs, marked)."""
    fields = ["group", "score", "kind", "direction", "beyond_budget", "n", "n_negative", "n_positive"]
    fields += [f"{m}{s}" for m in METRICS for s in ("", "_low", "_high")]
    with open(metrics_path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, extrasaction="ignore")
        writer.writeheader()
        for group in doc["groups"]:
            for m in _ranked(group["metrics"]):
                writer.writerow({"group": group["group"], **m})
    oof = {(g["group"], p["source"], p["target"]): p["p_negative"] for g in doc["groups"] for p in g["predictions"]}
    out = pairs.assign(suite=doc["fit_suite"],
                       p_negative_out_of_fold=[oof.get(k) for k in zip(pairs["group"], pairs["source"],
                                                                       pairs["target"], strict=True)])
    if new_pairs is not None and doc.get("on"):
        out = pd.concat([out, new_pairs.assign(suite=doc["on"]["suite"])], ignore_index=True)
    out.to_csv(pairs_path, index=False)
