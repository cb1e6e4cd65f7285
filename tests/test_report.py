"""The HTML report from constructed frames, checked in a real headless Chromium, and `tbench report`."""

from __future__ import annotations

import argparse
import base64
import re
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from conftest import require_system

from benchmark.errors import UserError
from benchmark.report import build_report, write_report

EVIL = "<script>alert(1)</script>"
EVIL_TEXT = "&lt;script&gt;alert(1)&lt;/script&gt;"
SOURCES = {"font_digits": 0.06, "uci_digits_m": 0.02, EVIL: -0.12, "fashion_mnist": -0.08}
TARGETS = ("uci_digits", "font_digits_m")
STRATEGIES = {"finetune_full": 1.0, "linear_probe": 0.6}
BUDGETS = {1: 0.35, 10: 0.72, -1: 0.93}
SEEDS = (0, 1, 2, 3, 4)
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def runs_frame() -> pd.DataFrame:
    """A grid shaped like Store.runs_frame(): EVIL and fashion_mnist hurt, font_digits helps."""
    rng = np.random.default_rng(0)
    rows = []

    def add(source, target, strategy, lpc, seed, status, accuracy, **extra):
        rows.append({"run_id": f"run{len(rows):04d}", "cell_id": f"c-{source}-{target}-{strategy}-{lpc}",
                     "suite": "demo", "source": source, "target": target, "strategy": strategy,
                     "strategy_label": strategy, "labels_per_class": lpc, "seed": seed, "status": status,
                     "accuracy": accuracy, "per_class_accuracy": [], "curve": [],
                     "diverged_step": extra.get("diverged_step"), "wall_s": 2.5, "compile_s": 0.8,
                     "pretrain_s": 0.0, "backend": "cpu", "device": "TFRT_CPU_0", "host": "box",
                     "versions": {"jax": "0.10.2", "flax": EVIL}, "config": {},
                     "finished_at": "2026-11-23T10:00:00+00:00", "error": extra.get("error")})

    for target in TARGETS:
        for lpc, base in BUDGETS.items():
            for seed in SEEDS:
                noise = float(rng.normal(0, 0.01))
                add(None, target, "scratch", lpc, seed, "ok", base + noise)
                for source, effect in SOURCES.items():
                    for strategy, weight in STRATEGIES.items():
                        shrink = 0.4 if lpc < 0 else 1.0
                        acc = base + noise + weight * effect * shrink + float(rng.normal(0, 0.004))
                        add(source, target, strategy, lpc, seed, "ok", float(np.clip(acc, 0, 1)))
    add("fashion_mnist", "uci_digits", "finetune_full", 10, 5, "diverged", None, diverged_step=17)
    add(EVIL, "uci_digits", "linear_probe", 1, 5, "failed", None, error=f"ValueError: bad {EVIL}")
    return pd.DataFrame(rows)


def measures_frame() -> pd.DataFrame:
    rows = []
    for i, (source, effect) in enumerate(SOURCES.items()):
        for j, target in enumerate(TARGETS):
            for seed in (0, 1):
                gap = 0.6 - 4 * effect + 0.05 * j + 0.01 * seed
                for measure, value, space in (("proxy_a_distance", gap, "features"),
                                              ("mmd2_rbf", gap / 10 + 0.003 * i, "pixels"),
                                              ("leep", -2.0 + 5 * effect, "features"),
                                              ("logme", 0.3 + effect * (1 + j), "features")):
                    rows.append({"source": source, "target": target, "measure": measure,
                                 "value": value, "space": space, "seed": seed})
    return pd.DataFrame(rows)


@pytest.fixture(scope="session")
def report_html() -> str:
    return build_report(runs_frame(), measures_frame(), title=f"demo {EVIL}",
                        environment={"store": "results/demo.sqlite"})


def test_report_is_self_contained_and_escapes_every_user_string(report_html):
    assert EVIL not in report_html  # not in text, attributes, figures or the environment table
    assert report_html.count("<script") == 1  # ours, allowed by hash in the CSP
    assert report_html.count(EVIL_TEXT) > 20
    assert "default-src 'none'" in report_html
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", report_html)  # nothing fetched


def test_figures_are_inline_svg_with_names_escaped_as_text(report_html):
    figures = [base64.b64decode(b).decode() for b in
               re.findall(r'src="data:image/svg\+xml;base64,([A-Za-z0-9+/=]+)"', report_html)]
    assert len(figures) == 2  # budget curves, gap-vs-gain scatter
    for svg in figures:
        assert svg.lstrip().startswith("<?xml") and "<script" not in svg
    assert f">{EVIL_TEXT} → uci_digits</text>" in figures[0]  # a panel title, as SVG text


def test_report_shows_verdicts_ci_and_n(report_html):
    rows = re.findall(r"<tr><td>(.*?)</td><td>(.*?)</td><td>(.*?)</td>.*?<span class=\"badge \w+\">(.*?)</span>",
                      report_html.split('id="verdict-table"')[1].split("</table>")[0], flags=re.S)
    verdicts = {(s, t, st): v for s, t, st, v in rows}
    assert verdicts[(EVIL_TEXT, "uci_digits", "finetune_full")] == "negative transfer"
    assert verdicts[("font_digits", "uci_digits", "finetune_full")] == "positive transfer"
    assert len(rows) == len(SOURCES) * len(TARGETS) * len(STRATEGIES) * len(BUDGETS)
    assert "n=5" in report_html and "Spearman" in report_html and "Transferability scores" in report_html
    assert "diverged at step" in report_html and ">17<" in report_html
    assert "wall time (sum over runs)" in report_html


def test_protocol_box_and_q_values_beside_raw_intervals(report_html):
    box = report_html.split('id="protocol"')[1].split("</section>")[0]
    for words in ("fixed schedule (no selection)", "0, 1, 2, 3, 4, 5", "paired Student t, 95%",
                  "Benjamini–Hochberg", "at least 5", "source_only"):
        assert words in box, words
    table = report_html.split('id="verdict-table"')[1].split("</table>")[0]
    assert "<th>q (BH)</th>" in table and "<th>p</th>" in table
    rows = [re.findall(r"<td[^>]*>(.*?)</td>", row, flags=re.S) for row in table.split("<tr><td>")[1:]]
    assert len(rows) == len(SOURCES) * len(TARGETS) * len(STRATEGIES) * len(BUDGETS)
    for cells in rows:  # every cell has 5 paired seeds: a raw p and a BH q beside its interval
        p, q = cells[7], cells[8]
        assert re.fullmatch(r"&lt;0\.001|[01]\.\d{3}", q) and re.fullmatch(r"&lt;0\.001|[01]\.\d{3}", p), cells
        assert "[" in cells[6] and "n=5" in cells[6]


def test_partial_grids_render_and_say_what_is_missing():
    runs = runs_frame()
    scratch_only = build_report(runs[runs["strategy"] == "scratch"], None, title="s")
    assert "No transfer cell has finished runs yet" in scratch_only and 'id="gap"' not in scratch_only
    assert "No finished runs yet" in build_report(runs.iloc[0:0], None, title="empty")
    diverged = runs.assign(status="diverged", accuracy=None)
    assert "No finished runs yet" in build_report(diverged, None, title="d")
    three_seeds = build_report(runs[runs["seed"] < 3], None, title="3")
    assert "too few seeds (n=3 &lt; 5)" in three_seeds and "negative transfer</span>" not in three_seeds
    one_seed = build_report(runs[runs["seed"] == 0], None, title="1")
    assert "too few seeds (n=1 &lt; 5)" in one_seed and "no CI" in one_seed
    no_scratch = runs[(runs["strategy"] != "scratch") & (runs["labels_per_class"] == 1)]
    assert "no comparison arm runs" in build_report(no_scratch, None, title="n")


def _chromium(tmp_path: Path, *args: str) -> tuple[str, list[str]]:
    require_system(Path(CHROMIUM).exists(), "chromium", "apt-get install chromium")
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={tmp_path / 'chromium-profile'}", "--enable-logging=stderr", "--v=0", *args]
    # A page that opened an alert() would block here until the timeout: that fails the test too.
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line]
    return done.stdout, console


def test_report_in_headless_chromium_has_no_console_errors_and_shows_names_as_text(report_html, tmp_path):
    page = write_report(tmp_path / "report.html", report_html)
    dom, console = _chromium(tmp_path, "--dump-dom", page.as_uri())
    assert console == []
    assert "<h1>transferbench report: demo " + EVIL_TEXT in dom
    assert dom.count("<script") == 1 and "alert(1)</script>" not in dom.replace(EVIL_TEXT, "")


def test_names_are_inert_even_without_csp_and_header_sort_works(report_html, tmp_path):
    # Drop the CSP so only escaping protects the page; record every alert() call (the last
    # script calls alert('control') to prove the trap works) and click the seed header twice.
    html = re.sub(r'<meta http-equiv="Content-Security-Policy"[^>]*>', "", report_html)
    trap = ("<script>window.alert = function (m) { var e = document.documentElement; "
            "e.setAttribute('data-alerts', (e.getAttribute('data-alerts') || '') + '[' + m + ']'); };</script>")
    click = """<script>
      alert('control');
      var th = Array.from(document.querySelectorAll('#runs-table th')).find(h => h.textContent === 'seed');
      th.click(); th.click();
      var seeds = Array.from(document.querySelectorAll('#runs-table tbody tr')).map(r => r.children[5].textContent);
      document.body.setAttribute('data-seeds', seeds.slice(0, 3).join(',') + '|' + seeds.slice(-3).join(','));
    </script>"""
    html = html.replace("<head>", "<head>" + trap, 1).replace("</body>", click + "</body>")
    page = write_report(tmp_path / "no-csp.html", html)
    dom, console = _chromium(tmp_path, "--dump-dom", page.as_uri())
    assert console == []
    assert 'data-alerts="[control]"' in dom
    assert 'data-seeds="5,5,4|0,0,0"' in dom  # clicked twice: descending by seed


def test_report_screenshot(report_html, tmp_path):
    page = write_report(tmp_path / "report.html", report_html)
    shot = tmp_path / "report.png"
    _, console = _chromium(tmp_path, f"--screenshot={shot}", "--window-size=1400,5000", "--hide-scrollbars",
                           page.as_uri())
    assert console == []
    header = shot.read_bytes()[:24]
    assert header[:8] == b"\x89PNG\r\n\x1a\n"
    assert struct.unpack(">II", header[16:24]) == (1400, 5000)
    assert shot.stat().st_size > 100_000  # a rendered page, not a blank one


def _parser() -> argparse.ArgumentParser:
    from benchmark.commands import report

    parser = argparse.ArgumentParser(prog="tbench")
    report.register(parser.add_subparsers(dest="command"))
    return parser


def _suite(tmp_path: Path, **changes) -> Path:
    """The shared tiny suite (test_config.SUITE) as suites/tiny.yaml, with ``changes`` applied."""
    import yaml
    from test_config import SUITE

    path = tmp_path / "suites" / "tiny.yaml"
    path.parent.mkdir(exist_ok=True)
    path.write_text(yaml.safe_dump({**SUITE, **changes}, sort_keys=False))
    return path


def _record_grid(store, suite_file: Path, *, suite: str, offset: float = 0.0) -> int:
    """Record made-up results for every run of a suite's real grid (no training); returns the count."""
    from benchmark.config import load_suite
    from benchmark.grid import build_grid
    from benchmark.results import RunResult

    grid = build_grid(load_suite(suite_file))
    for run in grid.runs:
        acc = 0.5 + (0.1 if run.spec.source else 0.0) + 0.01 * run.seed + offset
        store.record(run_id=run.run_id, cell_id=run.cell_id, suite=suite, spec=run.spec,
                     result=RunResult(seed=run.seed, status="ok", accuracy=acc), host="box",
                     versions={"jax": "0.10.2"})
    return len(grid.runs)


def _store(path: Path, tmp_path: Path) -> dict[str, int]:
    """A store holding the tiny suite's runs now, an earlier version's (train.steps 96) and a foreign run."""
    from test_config import SUITE

    from benchmark.cellspec import CellSpec, cell_id, run_id
    from benchmark.results import RunResult
    from benchmark.store import Store

    store = Store(path)
    stale = _record_grid(store, _suite(tmp_path, train={**SUITE["train"], "steps": 96}), suite="tiny", offset=0.2)
    current = _record_grid(store, _suite(tmp_path), suite="tiny")
    spec = CellSpec(source=EVIL, target="uci_digits", strategy="finetune_full", labels_per_class=10)
    store.record(run_id=run_id(spec, 0), cell_id=cell_id(spec), suite=f"other {EVIL}", spec=spec,
                 result=RunResult(seed=0, status="ok", accuracy=0.3), host="box", versions={"jax": "0.10.2"})
    store.record_measures([{"source": EVIL, "target": "uci_digits", "measure": "leep", "value": -2.0,
                            "space": "features", "seed": 0}])
    store.close()
    return {"current": current, "stale": stale, "foreign": 1}


def test_tbench_report_from_a_suite_file_pools_only_its_current_cells(tmp_path, monkeypatch):
    import json

    monkeypatch.chdir(tmp_path)
    counts = _store(tmp_path / "results" / "tiny.sqlite", tmp_path)
    args = _parser().parse_args(["report", "suites/tiny.yaml", "--json", "out/v.json"])
    assert args.func(args) == 0
    html = (tmp_path / "reports" / "tiny.html").read_text()
    data = json.loads((tmp_path / "out" / "v.json").read_text())
    assert {i["kind"]: i["runs"] for i in data["ignored_runs"]} == {"stale": counts["stale"], "foreign": 1}
    assert "from an earlier version of this suite" in html and f"{counts['stale']} runs stale" in html
    verdicts = data["verdicts"]
    assert len(verdicts) == 2  # finetune_partial(k=2) at 5/class and at all labels
    for v in verdicts:
        assert v["n"] == 2 and v["verdict"] == "too few seeds (n=2 < 5)" and v["q_value"] is None
        assert v["mean_gain"] == pytest.approx(0.1) and v["ntg"] == pytest.approx(-0.1)
        assert v["interval_method"] == "paired Student t, 95%" and v["params"] == {"k": 2, "copy_blocks": -1}
        assert v["selection_rule"] == "fixed schedule (no selection)" and v["comparison_arm"] == "scratch"
        assert v["interval_low"] == pytest.approx(-0.1) and v["interval_high"] == pytest.approx(-0.1)
    assert data["protocol"]["seeds"] == [0, 1] and data["protocol"]["min_seeds_for_verdict"] == 5
    assert EVIL not in html  # the foreign run is not in the page at all


def test_tbench_report_from_a_bare_store_shows_same_label_cells_apart(tmp_path, monkeypatch):
    import json

    monkeypatch.chdir(tmp_path)
    _store(tmp_path / "results" / "tiny.sqlite", tmp_path)
    args = _parser().parse_args(["report", "results/tiny.sqlite", "-o", "out/x.html", "--json", "out/x.json",
                                 "--n-bootstrap", "200"])
    assert args.func(args) == 0
    html = (tmp_path / "out" / "x.html").read_text()
    assert EVIL not in html and EVIL_TEXT in html
    verdicts = json.loads((tmp_path / "out" / "x.json").read_text())["verdicts"]
    tiny_rows = [v for v in verdicts if v["source"] == "font_digits"]
    assert len(tiny_rows) == 4 and sorted(v["variant"] for v in tiny_rows) == ["train.steps=48"] * 2 + ["train.steps=96"] * 2
    assert all(v["n"] == 2 for v in tiny_rows)  # each version paired with its own scratch, never pooled
    assert "[train.steps=96]" in html and "[train.steps=48]" in html


def test_tbench_report_user_errors_name_the_file(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "never_run.yaml").write_text("name: never_run\n")
    (tmp_path / "notes.txt").write_text("not a store")
    for argv, words in ((["report", "suites/missing.yaml"], "no such suite or store file 'suites/missing.yaml'"),
                        (["report", "suites/never_run.yaml"], "tbench run suites/never_run.yaml"),
                        (["report", "notes.txt"], "notes.txt")):
        args = _parser().parse_args(argv)
        with pytest.raises(UserError, match=re.escape(words)):
            args.func(args)
    assert (tmp_path / "notes.txt").read_text() == "not a store"
    from benchmark.cli import main

    assert main(["report", "suites/missing.yaml"]) == 2  # the CLI turns UserError into status 2


def test_runs_at_chance_level_are_listed_and_counted():
    from scipy.stats import binomtest

    from benchmark.analysis.stats import CHANCE_P, above_chance_p

    # Guessing 1 of 5 classes on 5,000 images, as the collapsed Yosinski baseB did: p ~ 0.5.
    assert above_chance_p(0.2, 5000, 5) > 0.4
    assert above_chance_p(0.9, 1000, 10) < 1e-100
    assert above_chance_p(0.3, 0, 10) != above_chance_p(0.3, 0, 10)  # NaN: nothing to judge
    for acc, n, k in ((0.12, 1000, 10), (0.215, 400, 5), (0.05, 200, 10)):
        expected = binomtest(round(acc * n), n, 1 / k, alternative="greater").pvalue
        assert above_chance_p(acc, n, k) == pytest.approx(expected, rel=1e-9)

    runs = runs_frame()
    ok = runs.index[runs["status"] == "ok"]
    runs["extras"] = [{"n_test": 1000, "above_chance_p": above_chance_p(a, 1000, 10)} if i in ok else {}
                      for i, a in zip(runs.index, runs["accuracy"], strict=True)]
    runs["per_class_accuracy"] = [[0.0] * 10] * len(runs)
    collapsed = ok[5]
    runs.loc[collapsed, "accuracy"] = 0.1
    runs.at[collapsed, "extras"] = {"n_test": 1000, "above_chance_p": above_chance_p(0.1, 1000, 10)}
    html = build_report(runs, measures_frame(), title="chance", n_bootstrap=200)
    table = html[html.index('id="chance-table"'):]
    table = table[:table.index("</table>")]
    assert table.count("<tr>") == 2  # header + the one collapsed run
    assert runs.loc[collapsed, "run_id"] in table and "0.100" in table
    assert "runs at chance level: 1" in html and str(CHANCE_P) in html
    # Stores from before runs recorded the test (no extras) are not judged.
    assert 'id="chance-table"' not in build_report(runs_frame(), title="old", n_bootstrap=200)
