"""Write a reproduction's outputs: ``results/papers/<name>.csv`` and ``reports/papers/<name>.html``.

The CSV holds the claims table (*paper says / we measured / verdict*, with the statistic's mean,
95% CI and seed count); ``<name>_conditions.csv`` the per-condition numbers behind the figure.
The HTML page is self-contained (figure inlined as PNG, no network) and escapes every string.
"""

from __future__ import annotations

import base64
import datetime
import io
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import jinja2
import pandas as pd

from benchmark.analysis.cells import selection_rule
from benchmark.analysis.stats import INTERVAL_METHOD
from benchmark.reproduce.claims import CORRECTION, PROVENANCE, VERDICTS, Claim
from benchmark.reproduce.paper import Paper

_TEMPLATE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>Reproduction: {{ paper.title }}</title>
<style>
body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0;font-size:0.9em}
th,td{border:1px solid #ccc;padding:4px 8px;vertical-align:top;text-align:left}
th{background:#f3f3f3} td.num{text-align:right;font-variant-numeric:tabular-nums}
.v-reproduced{background:#d9f2d9}.v-no-evidence{background:#fff3c4}
.v-refuted{background:#f8d0d0}.v-not-measured{background:#e8e8e8}
.protocol{border:2px solid #444;background:#f7f7f2;padding:0.4em 1em;margin:1em 0}
.protocol dt{font-weight:600;margin-top:0.3em}.protocol dd{margin-left:1.2em}
.scale{padding:0.6em 1em;border-left:4px solid #c90;background:#fff8e6}
.small{font-size:0.85em;color:#555} img{max-width:100%}
</style></head><body>
<h1>Reproduction: {{ paper.title }}</h1>
<p>{{ paper.citation }}</p>
<p class="scale"><b>Scale: {{ scale }}.</b> Suite <code>{{ suite_path }}</code>
{%- if overrides %} with the <code>--quick</code> overrides <code>{{ overrides }}</code>{% endif %};
seeds {{ seeds }}; store <code>{{ store_path }}</code>.
Runs: {{ counts.ok }} ok, {{ counts.diverged }} diverged, {{ counts.failed }} failed (diverged and
failed runs are left out of every statistic).</p>
{% if note %}<p class="scale" id="note"><b>Note.</b> {{ note }}</p>{% endif %}
<section class="protocol" id="protocol"><h2>Protocol</h2><dl>
<dt>model selection</dt><dd>{{ selection_rules }}</dd>
<dt>intervals</dt><dd>{{ interval_method }} of per-seed statistics; "we measured" shows each case's raw 95% CI
and its adjusted CI</dd>
<dt>correction</dt><dd>{{ correction }} ({{ n_cases }} case{{ "s" if n_cases != 1 else "" }}: each adjusted CI at
{{ adj_confidence }} confidence, family-wise error ≤ 5%)</dd>
<dt>verdicts</dt><dd>reproduced: the adjusted CI supports the claim in every case; refuted: some case's adjusted
CI contradicts it; no evidence: otherwise; not measured: runs missing. {{ provenance }}</dd>
<dt>defaults tuned by looking at results</dt><dd>{% if paper.tuned %}<ul>{% for t in paper.tuned %}<li>{{ t }}</li>{% endfor %}</ul>{% else %}none recorded{% endif %}</dd>
{% if paper.changes %}<dt>verdicts changed since the 2026-11-23 page, and why</dt><dd><ul>{% for t in paper.changes %}<li>{{ t }}</li>{% endfor %}</ul></dd>{% endif %}
</dl></section>
<h2>Verdicts</h2>
<p>{% for v, n in verdict_counts %}{{ v }}: {{ n }}{% if not loop.last %} · {% endif %}{% endfor %}</p>
<table><tr><th>claim</th><th>paper says</th><th>we measured (mean [95% CI] (seeds), adjusted CI)</th>
<th>verdict</th><th>rule</th></tr>
{% for c in claims %}<tr><td><b>{{ c.claim_id }}</b><br>{{ c.statement }}</td><td>{{ c.paper_says }}</td>
<td>{{ c.measured }}</td><td class="v-{{ c.verdict|replace(' ', '-') }}"><b>{{ c.verdict }}</b></td>
<td class="small">{{ c.rule }}</td></tr>
{% endfor %}</table>
<h2>Figure</h2>
{% if figure %}<img alt="{{ paper.figure_caption }}" src="data:image/png;base64,{{ figure }}">{% else %}<p>No runs to plot yet.</p>{% endif %}
<p class="small">{{ paper.figure_caption }}</p>
<h2>What the paper did, and where we differ</h2>
<p>{{ paper.setup }}</p>
<ul>{% for d in paper.differences %}<li>{{ d }}</li>{% endfor %}</ul>
<h2>Numbers behind the figure</h2>
<table><tr>{% for col in conditions.columns %}<th>{{ col }}</th>{% endfor %}</tr>
{% for row in conditions_rows %}<tr>{% for cell in row %}<td class="{{ 'num' if cell.num else '' }}">{{ cell.text }}</td>{% endfor %}</tr>
{% endfor %}</table>
<h2>How to rerun</h2>
<pre>tbench reproduce {{ paper.name }}{{ ' --quick' if overrides else '' }}</pre>
<p class="small">Resumable: finished runs are read from the store, missing ones are trained.
Environment: {{ environment }}. Written {{ written }}.</p>
</body></html>
"""


def figure_png(fig: Any) -> str:
    """A matplotlib figure as base64 PNG (then closed, so figures never pile up)."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _cell(value: Any) -> dict[str, Any]:
    if isinstance(value, float):
        return {"text": "—" if math.isnan(value) else f"{value:.4f}", "num": True}
    if isinstance(value, int):
        return {"text": str(value), "num": True}
    return {"text": "—" if value is None else str(value), "num": False}


def claims_frame(paper: Paper, claims: Sequence[Claim]) -> pd.DataFrame:
    """The claims table as written to ``results/papers/<name>.csv``."""
    rows = [{"paper": paper.name, **c.row()} for c in claims]
    return pd.DataFrame(rows, columns=["paper", "claim", "statement", "paper_says", "we_measured",
                                       "verdict", "rule", "mean", "ci_low", "ci_high",
                                       "adj_confidence", "adj_ci_low", "adj_ci_high", "seeds"])


def write_csv(paper: Paper, claims: Sequence[Claim], conditions: pd.DataFrame, results_dir: Path) -> Path:
    """``<results_dir>/<name>.csv`` (claims) and ``<name>_conditions.csv``; returns the first."""
    results_dir.mkdir(parents=True, exist_ok=True)
    path = results_dir / f"{paper.name}.csv"
    claims_frame(paper, claims).to_csv(path, index=False)
    conditions.to_csv(results_dir / f"{paper.name}_conditions.csv", index=False)
    return path


def write_html(paper: Paper, claims: Sequence[Claim], conditions: pd.DataFrame, figure: Any,
               path: Path, *, runs: pd.DataFrame, suite_path: str, store_path: str,
               overrides: dict[str, Any] | None, note: str | None = None) -> Path:
    """Render the reproduction page to ``path`` (parents created); ``note``: a banner above the protocol."""
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    status = runs["status"].value_counts() if len(runs) else pd.Series(dtype=int)
    counts = {k: int(status.get(k, 0)) for k in ("ok", "diverged", "failed")}
    seeds = sorted({int(s) for s in runs["seed"]}) if len(runs) else []
    verdict_counts = [(v, sum(c.verdict == v for c in claims)) for v in VERDICTS]
    rules = sorted({selection_rule(e) for e in runs["extras"]}) if len(runs) and "extras" in runs else []
    confidence = next((c.confidence for c in claims if c.confidence == c.confidence), float("nan"))
    n_cases = round(0.05 / (1 - confidence)) if confidence == confidence and confidence < 1 else 0
    html = env.from_string(_TEMPLATE).render(
        paper=paper, claims=claims, note=note, figure=figure_png(figure) if figure is not None else None,
        scale="quick (scaled down: fewer seeds and steps)" if overrides else "full suite",
        overrides=overrides, suite_path=suite_path, store_path=store_path,
        seeds=f"{len(seeds)} ({', '.join(map(str, seeds))})" if seeds else "none yet",
        counts=counts, verdict_counts=[(v, n) for v, n in verdict_counts if n],
        conditions=conditions, conditions_rows=[[_cell(v) for v in row] for row in conditions.itertuples(index=False)],
        environment=_environment(runs),
        selection_rules="; ".join(rules) if rules else "—", interval_method=INTERVAL_METHOD,
        correction=CORRECTION, provenance=paper.registered or PROVENANCE, n_cases=n_cases,
        adj_confidence=f"{confidence:.4f}" if confidence == confidence else "—",
        written=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(html, encoding="utf-8")
    return path


def _environment(runs: pd.DataFrame) -> str:
    if not len(runs):
        return "no runs"
    parts = []
    for col in ("backend", "device", "host"):
        if col in runs:
            values = sorted({str(v) for v in runs[col].dropna() if str(v)})
            if values:
                parts.append(f"{col} {', '.join(values)}")
    versions = runs["versions"].dropna().iloc[0] if "versions" in runs and runs["versions"].notna().any() else None
    if isinstance(versions, dict):
        parts.append(", ".join(f"{k} {v}" for k, v in sorted(versions.items())))
    return "; ".join(parts) or "unknown"
