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
SEEDS = (0, 1, 2)
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
    add("fashion_mnist", "uci_digits", "finetune_full", 10, 3, "diverged", None, diverged_step=17)
    add(EVIL, "uci_digits", "linear_probe", 1, 3, "failed", None, error=f"ValueError: bad {EVIL}")
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
                        environment={"store": "results/demo.sqlite"}, n_bootstrap=2000)


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
    assert "n=3" in report_html and "Spearman" in report_html and "Transferability scores" in report_html
    assert "diverged at step" in report_html and ">17<" in report_html
    assert "wall time (sum over runs)" in report_html


def test_partial_grids_render_and_say_what_is_missing():
    runs = runs_frame()
    scratch_only = build_report(runs[runs["strategy"] == "scratch"], None, title="s", n_bootstrap=200)
    assert "No transfer cell has finished runs yet" in scratch_only and 'id="gap"' not in scratch_only
    assert "No finished runs yet" in build_report(runs.iloc[0:0], None, title="empty")
    diverged = runs.assign(status="diverged", accuracy=None)
    assert "No finished runs yet" in build_report(diverged, None, title="d", n_bootstrap=200)
    one_seed = build_report(runs[runs["seed"] == 0], None, title="1", n_bootstrap=200)
    assert "too few paired seeds for a CI (n=1)" in one_seed and "no CI" in one_seed
    no_scratch = runs[(runs["strategy"] != "scratch") & (runs["labels_per_class"] == 1)]
    assert "no scratch baseline" in build_report(no_scratch, None, title="n", n_bootstrap=200)


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
    assert 'data-seeds="3,3,2|0,0,0"' in dom  # clicked twice: descending by seed


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


def _store(path: Path):
    from benchmark.cellspec import CellSpec, cell_id
    from benchmark.results import RunResult
    from benchmark.store import Store

    store = Store(path)
    for seed in (0, 1):
        for source, strategy, acc in ((None, "scratch", 0.5), ("font_digits", "finetune_full", 0.6),
                                      (EVIL, "finetune_full", 0.3)):
            spec = CellSpec(source=source, target="uci_digits", strategy=strategy, labels_per_class=10)
            store.record(run_id=cell_id(spec, seed), cell_id=cell_id(spec, 0), suite="tiny", spec=spec,
                         result=RunResult(seed=seed, status="ok", accuracy=acc + 0.01 * seed),
                         host="box", versions={"jax": "0.10.2"})
    store.record_measures([{"source": EVIL, "target": "uci_digits", "measure": "leep", "value": -2.0,
                            "space": "features", "seed": 0}])
    store.close()


def test_tbench_report_from_a_suite_file_and_from_a_store(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "tiny.yaml").write_text("name: tiny\n")
    _store(tmp_path / "results" / "tiny.sqlite")
    args = _parser().parse_args(["report", "suites/tiny.yaml", "--n-bootstrap", "200"])
    assert args.func(args) == 0
    html = (tmp_path / "reports" / "tiny.html").read_text()
    assert "negative transfer" in html and EVIL not in html and EVIL_TEXT in html
    args = _parser().parse_args(["report", "results/tiny.sqlite", "-o", "out/x.html", "--n-bootstrap", "200"])
    assert args.func(args) == 0 and (tmp_path / "out" / "x.html").stat().st_size > 10_000


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
