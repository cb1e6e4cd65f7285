"""Forgetting vs target gain (issue 16): per-cell mean and t-CI, the report section, the JSON rows, export.

Built on the constructed runs frame of ``test_report`` (5 seeds, EVIL as a source name), with
forgetting recorded in ``extras`` the way ``benchmark/engine/forgetting.py`` records it, and a
hostile strategy label. Export goes through the real ``tbench export`` on a real SQLite store.
"""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pandas as pd
import pytest
from scipy import stats
from test_report import EVIL, EVIL_TEXT, _chromium, _suite, runs_frame

from benchmark.analysis.forgetting import EXPORT_COLUMNS, forgetting_table
from benchmark.analysis.transfer import check_runs, transfer_table
from benchmark.analysis.verdicts import report_data
from benchmark.report import build_report, write_report

LP_LABEL = f"lp {EVIL}"  # a hostile strategy label (the strategy itself stays linear_probe)


def forgetting_runs() -> pd.DataFrame:
    """test_report's frame; every finished run from a source records forgetting, scratch none."""
    runs = runs_frame()
    rng = np.random.default_rng(1)
    extras = []
    for source, strategy, status in zip(runs["source"], runs["strategy"], runs["status"], strict=True):
        if not isinstance(source, str) or status != "ok":  # scratch: no source (None/NaN in the frame)
            extras.append({} if status != "ok" else {"selection_rule": "last step"})
            continue
        full = strategy == "finetune_full"
        before = 0.9
        after = before - (0.25 if full else 0.02) - float(rng.normal(0, 0.03))
        extras.append({"source_acc_before": before, "source_acc_after": after, "forgetting": before - after,
                       "forgetting_probe": "linear probe" if full else "kept head", "forgetting_n_test": 500,
                       "source_accuracy": 0.91, "val_accuracy": 0.7, "selection_rule": "last step"})
    runs["extras"] = extras
    runs.loc[runs["strategy"] == "linear_probe", "strategy_label"] = LP_LABEL
    return runs


@pytest.fixture(scope="module")
def runs() -> pd.DataFrame:
    return forgetting_runs()


@pytest.fixture(scope="module")
def html(runs) -> str:
    return build_report(runs, None, title="forgetting", environment={"store": "results/demo.sqlite"})


def test_per_cell_forgetting_mean_and_ci_equal_scipys_t_interval(runs):
    cells = forgetting_table(runs)
    checked = check_runs(runs)
    transferred = checked[(checked["source"] != "") & (checked["status"] == "ok")]
    assert set(cells["cell_id"]) == set(transferred["cell_id"])  # scratch (no source) left out
    table = transfer_table(runs).set_index("cell_id")
    for _, cell in cells.iterrows():
        group = transferred[transferred["cell_id"] == cell["cell_id"]]
        x = np.array([e["forgetting"] for e in group["extras"]])
        low, high = stats.t.interval(0.95, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
        assert cell["n"] == len(x) == 5
        assert cell["forgetting_mean"] == pytest.approx(x.mean(), abs=1e-12)
        assert (cell["forgetting_low"], cell["forgetting_high"]) == pytest.approx((low, high), abs=1e-12)
        assert cell["probe"] == ("linear probe" if cell["strategy"] == "finetune_full" else "kept head")
        gain = table.loc[cell["cell_id"], "gain"]  # beside the verdict's paired gain, unchanged
        assert (cell["gain_mean"], cell["gain_low"], cell["gain_high"]) == (gain.mean, gain.low, gain.high)
    assert cells[cells["strategy"] == "finetune_full"]["forgetting_mean"].min() > 0.15


def _section(html: str) -> str:
    return html.split('<h2 id="forgetting">')[1].split("<h2 ")[0]


def test_report_section_shows_tables_figure_and_escapes_names(runs, html):
    assert EVIL not in html and html.count("<script") == 1
    section = _section(html)
    assert "Forgetting vs target gain" in html and '<a href="#forgetting">' in html
    assert section.count('<table class="sortable forgetting-table">') == 2  # one per strategy
    assert f"<h3>{LP_LABEL}</h3>".replace(EVIL, EVIL_TEXT) in section
    assert f"{EVIL_TEXT} → uci_digits · 10 labels/class" in section
    # Values as the analysis computes them: forgetting and gain with their CI and n.
    cell = forgetting_table(runs).query("strategy == 'finetune_full' and target == 'uci_digits'").iloc[0]
    for est in (cell["forgetting"], cell["gain"]):
        assert f'<span class="m">{est.mean:.3f}</span> <span class="ci">[{est.low:.3f}, {est.high:.3f}]</span>' \
               f' <span class="n">n=5</span>' in section
    scratch_cells = check_runs(runs).query("strategy == 'scratch'")["cell_id"].nunique()
    assert f"{scratch_cells} cells without forgetting data (scratch" in section
    figure = re.search(r'src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)"', section)
    svg = base64.b64decode(figure.group(1)).decode()
    assert "<script" not in svg and f">lp {EVIL_TEXT} (24 cells)</text>" in svg  # the hostile label as SVG text in the legend
    assert "forgetting: source-test accuracy before" in svg


def test_a_store_without_forgetting_shows_one_sentence_instead(html):
    plain = build_report(runs_frame(), None, title="old store")
    assert '<h2 id="forgetting">' not in plain and "forgetting-table" not in plain
    assert '<p class="note" id="forgetting">No run in this report records forgetting' in plain
    assert '<h2 id="forgetting">' in html


def test_json_rows_carry_forgetting_where_present(runs):
    only_full = runs.assign(extras=[e if s == "finetune_full" else {}
                                    for e, s in zip(runs["extras"], runs["strategy"], strict=True)])
    table = transfer_table(only_full)
    data = json.loads(json.dumps(report_data(table, check_runs(only_full), title="t"), allow_nan=False))
    cells = forgetting_table(only_full).set_index("cell_id")
    assert len(data["verdicts"]) == len(table) > 0
    for v in data["verdicts"]:
        if v["strategy"] == "finetune_full":
            c = cells.loc[v["cell_id"]]
            assert (v["forgetting_mean"], v["forgetting_low"], v["forgetting_high"], v["forgetting_n"]) == \
                   pytest.approx((c["forgetting_mean"], c["forgetting_low"], c["forgetting_high"], 5))
            assert v["forgetting_probe"] == "linear probe"
        else:
            assert v["forgetting_mean"] is v["forgetting_n"] is v["forgetting_probe"] is None


def test_export_carries_the_forgetting_columns(tmp_path, monkeypatch):
    from benchmark.cli import main
    from benchmark.config import load_suite
    from benchmark.grid import build_grid
    from benchmark.results import RunResult
    from benchmark.store import Store

    monkeypatch.chdir(tmp_path)
    suite = _suite(tmp_path)
    recorded = {"source_acc_before": 0.9, "source_acc_after": 0.6, "forgetting": 0.9 - 0.6,
                "forgetting_probe": "linear probe", "forgetting_n_test": 500, "source_accuracy": 0.91,
                "val_accuracy": 0.75, "selection_rule": "best val accuracy"}
    store = Store(tmp_path / "s.sqlite")
    grid = build_grid(load_suite(suite))
    for run in grid.runs:  # made-up results, no training; runs from a source record forgetting
        extras = recorded if run.spec.source else {}
        store.record(run_id=run.run_id, cell_id=run.cell_id, suite="tiny", spec=run.spec, host="box",
                     result=RunResult(seed=run.seed, status="ok", accuracy=0.5, extras=extras), versions={})
    store.close()
    assert {bool(r.spec.source) for r in grid.runs} == {True, False}
    assert main(["export", str(suite), "--store", str(tmp_path / "s.sqlite"), "-o", "runs.csv"]) == 0
    back = pd.read_csv(tmp_path / "runs.csv")
    assert set(EXPORT_COLUMNS) <= set(back.columns)
    for col in EXPORT_COLUMNS:
        has = back["source"].notna()
        assert back.loc[has, col].tolist() == [recorded[col]] * int(has.sum()), col
        assert back.loc[~has, col].isna().all(), col  # empty where a run records none


def test_section_in_headless_chromium_has_no_console_errors(html, tmp_path):
    page = write_report(tmp_path / "forgetting.html", html)
    dom, console = _chromium(tmp_path, "--dump-dom", page.as_uri())
    assert console == []
    assert '<h2 id="forgetting">Forgetting vs target gain</h2>' in dom
    assert dom.count("forgetting-table") == 2 and "alert(1)</script>" not in dom.replace(EVIL_TEXT, "")
