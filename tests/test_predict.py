"""`tbench predict`: the evaluation math on frames with known answers, the budget-only baselines,
leave-one-source-out by construction, the page's escaping, and a tiny suite end to end
(`tbench run` then `tbench predict` writing JSON, CSV and HTML; bad input exits 2)."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.stats
import tiny
import yaml
from sklearn.metrics import roc_auc_score
from test_config import SUITE

from benchmark.analysis import predict as P
from benchmark.analysis.baselines import knn_loo_accuracy, label_overlap, probe_val_accuracy
from benchmark.cli import main

KEY = "features:knn_loo"


def _pairs(gain: np.ndarray, scores: dict[str, np.ndarray], sources: list[str] | None = None) -> pd.DataFrame:
    """A pair frame (``P.PAIR_COLUMNS``) with verdicts from the gain: < -0.02 negative, > 0.02 positive."""
    n = len(gain)
    verdict = np.where(gain < -0.02, "negative transfer", np.where(gain > 0.02, "positive transfer", "inconclusive"))
    frame = pd.DataFrame({"group": "finetune_full @ 10 labels/class", "strategy_label": "finetune_full",
                          "labels_per_class": 10, "source": sources or [f"s{i % 6}" for i in range(n)],
                          "target": [f"t{i}" for i in range(n)], "gain": gain, "gain_low": gain - 0.01,
                          "gain_high": gain + 0.01, "q_value": 0.01, "verdict": verdict,
                          "negative": verdict == "negative transfer", "positive": verdict == "positive transfer"})
    for s in P.SCORES:
        frame[s.key] = scores.get(s.key, np.full(n, np.nan))
    return frame[P.PAIR_COLUMNS]


def _metric(result: list[dict], key: str) -> dict:
    return next(m for m in result[0]["metrics"] if m["score"] == key)


def test_a_perfect_score_gets_auroc_1_and_tau_1() -> None:
    gain = np.linspace(-0.1, 0.1, 24)
    result = P.evaluate(_pairs(gain, {KEY: 3 * gain + 0.5}), n_boot=200)
    m = _metric(result, KEY)
    assert m["auroc_negative"] == m["auroc_positive"] == 1.0
    assert m["weighted_tau"] == pytest.approx(1.0) and m["spearman"] == pytest.approx(1.0)
    assert m["auroc_negative_low"] == m["auroc_negative_high"] == 1.0
    assert (m["n"], m["n_negative"], m["n_positive"]) == (24, 10, 10)


def test_orientation_is_declared_never_fitted() -> None:
    """A gap measure (declared: higher = less gain) that rises with the gain points the wrong way:
    AUROC 0 and τ −1 are reported as such, not flipped to 1."""
    gain = np.linspace(-0.1, 0.1, 24)
    m = _metric(P.evaluate(_pairs(gain, {"features:mmd2_rbf": gain}), n_boot=200), "features:mmd2_rbf")
    assert P.BY_KEY["features:mmd2_rbf"].direction == -1
    assert m["auroc_negative"] == 0.0 and m["weighted_tau"] == pytest.approx(-1.0)


def test_a_random_score_is_near_chance() -> None:
    rng = np.random.default_rng(0)
    gain = rng.normal(0, 0.05, 4000)
    score = rng.normal(size=4000)
    assert P.auroc(gain < -0.02, -score) == pytest.approx(0.5, abs=0.03)
    assert P.batch_weighted_tau(score[None], gain[None])[0] == pytest.approx(0.0, abs=0.05)


def test_batched_metrics_equal_scipy_and_sklearn_on_tied_resamples() -> None:
    rng = np.random.default_rng(3)
    x = np.round(rng.normal(size=20), 1)
    y = x + rng.normal(size=20)
    idx = rng.integers(0, 20, size=(40, 20))  # bootstrap rows: duplicated pairs, tied values
    xs, ys, labels = x[idx], y[idx], (y < 0)[idx]
    tau = P.batch_weighted_tau(xs, ys)
    rho = P.batch_spearman(xs, ys)
    auc = P.batch_auroc(labels, -xs)
    for b in range(len(idx)):
        assert tau[b] == pytest.approx(scipy.stats.weightedtau(xs[b], ys[b]).statistic, abs=1e-12)
        assert rho[b] == pytest.approx(scipy.stats.spearmanr(xs[b], ys[b]).statistic, abs=1e-12)
        if 0 < labels[b].sum() < 20:
            assert auc[b] == pytest.approx(roc_auc_score(labels[b], -xs[b]), abs=1e-12)
        else:
            assert math.isnan(auc[b])


def test_leave_one_source_out_never_fits_on_the_held_out_source() -> None:
    rng = np.random.default_rng(1)
    groups = np.repeat(["a", "b", "c", "d"], 5)
    x = np.column_stack([np.arange(20.0), rng.normal(size=20)])  # column 0 names the row
    y = rng.random(20) < 0.5
    seen: list[tuple[set, set]] = []

    def spy(x_train, y_train, x_test):
        seen.append(({int(r) for r in x_train[:, 0]}, {int(r) for r in x_test[:, 0]}))
        return np.full(len(x_test), 0.5)

    P.loso_predictions(x, y, groups, spy)
    assert len(seen) == 4
    for train_rows, test_rows in seen:
        held = set(groups[sorted(test_rows)])
        assert len(held) == 1 and not train_rows & test_rows
        assert not {groups[r] for r in train_rows} & held
        assert train_rows | test_rows == set(range(20))
    # The real combination: poisoning a source's own outcomes never moves its predictions.
    real = P.loso_predictions(x[:, 1:], y, groups)
    poisoned = y.copy()
    poisoned[groups == "b"] = ~poisoned[groups == "b"]
    again = P.loso_predictions(x[:, 1:], poisoned, groups)
    assert np.array_equal(real[groups == "b"], again[groups == "b"])
    assert not np.array_equal(real, again)


def test_the_combination_learns_an_informative_score_out_of_fold() -> None:
    rng = np.random.default_rng(2)
    gain = rng.normal(0, 0.05, 48)
    noise = {k: rng.normal(size=48) for k in P.COMBINATION_INPUTS}
    result = P.evaluate(_pairs(gain, {**noise, "features:probe_val": gain + rng.normal(0, 0.005, 48)}), n_boot=200)
    combo = _metric(result, P.COMBINATION)
    assert combo["auroc_negative"] > 0.85 and combo["n"] == 48
    assert {c["versus"] for c in result[0]["comparisons"]} == {"best single score (within budget)",
                                                                "best trivial baseline"}
    assert len(result[0]["predictions"]) == 48


def test_pair_frame_takes_each_cell_its_own_budget_and_keeps_verdicts_only() -> None:
    rows = []
    for seed in (0, 1):
        for name, value in (("knn_loo_lpc10", 0.3 + seed), ("knn_loo_lpc50", 0.7), ("leep", -1.0),
                            ("leep_lpc10", -2.0)):
            rows.append({"source": "s", "target": "t", "measure": name, "value": value, "space": "features", "seed": seed})
    measures = pd.DataFrame(rows)
    table = pd.DataFrame({"source": "s", "target": "t", "strategy_label": "finetune_full", "variant": "",
                          "labels_per_class": [10, 50, 10], "gain_mean": 0.0, "gain_low": -0.1, "gain_high": 0.1,
                          "q_value": 0.5, "verdict": ["inconclusive", "negative transfer", "too few seeds (n=3 < 5)"]})
    pairs = P.pair_frame(table, measures)
    assert list(pairs["labels_per_class"]) == [10, 50]
    assert list(pairs[KEY]) == [pytest.approx(0.8), 0.7]  # mean over seeds, the cell's budget
    assert list(pairs["full:leep"]) == [-1.0, -1.0] and pairs["features:leep"].iloc[0] == -2.0
    assert math.isnan(pairs["features:leep"].iloc[1]) and list(pairs["negative"]) == [False, True]


def test_budget_baselines_on_known_inputs() -> None:
    clusters = np.array([[0, 0], [0, 0.1], [0.1, 0], [5, 5], [5, 5.1], [5.1, 5]], float) + 1
    labels = np.array([0, 0, 0, 1, 1, 1])
    assert knn_loo_accuracy(clusters, labels, k=1) == 1.0
    assert knn_loo_accuracy(clusters, 1 - labels[[0, 3, 1, 4, 2, 5]], k=1) < 0.5
    assert probe_val_accuracy(clusters[[0, 1, 3, 4]], labels[[0, 1, 3, 4]], clusters[[2, 5]], labels[[2, 5]]) == 1.0
    assert label_overlap(list("0123456789"), list("01234")) == 0.5
    assert label_overlap(["a"], ["b"]) == 0.0


def test_budget_split_ignores_labels_outside_the_budget() -> None:
    from benchmark.measures import budget_split

    labels = np.repeat(np.arange(4), 30)
    train, val = budget_split(labels, 4, 5, {"fraction": 0.2, "min_per_class": 1}, seed=3)
    assert len(train) == 16 and len(val) == 4 and not set(train) & set(val)
    poisoned = np.full_like(labels, 99)
    poisoned[np.concatenate([train, val])] = labels[np.concatenate([train, val])]
    again = budget_split(poisoned, 4, 5, {"fraction": 0.2, "min_per_class": 1}, seed=3)
    assert np.array_equal(again[0], train) and np.array_equal(again[1], val)


def test_the_page_escapes_names_and_runs_clean_in_headless_chromium(tmp_path) -> None:
    from test_report import _chromium

    from benchmark.report.predict_page import build_page

    hostile = '<img src=x onerror="alert(1)">'
    gain = np.linspace(-0.1, 0.1, 12)
    pairs = _pairs(gain, {KEY: gain}, sources=[hostile] * 6 + ["ok"] * 6)
    groups = P.evaluate(pairs, n_boot=100)
    doc = {"title": "t", "generated_at": "now", "fit_suite": hostile, "groups": groups, "on": None,
           "protocol": {k: "p" for k in ("outcome", "orientation", "bootstrap", "combination")}}
    html = build_page(doc, pairs)
    assert hostile not in html and "&lt;img src=x" in html
    assert "default-src 'none'" in html and "<img class=\"fig\"" in html
    page = tmp_path / "nt_prediction.html"
    page.write_text(html, encoding="utf-8")
    dom, console = _chromium(tmp_path, "--dump-dom", page.as_uri())
    assert console == []  # the sorter's hash matches the CSP; nothing blocked, nothing fetched
    assert dom.count("<script") == 1 and "<td>&lt;img src=x onerror=" in dom


# -- end to end on a tiny suite ---------------------------------------------------------------
# Linear probes at the full label budget (scratch is stable there): Fashion-MNIST features hurt
# uci_digits (negative transfer, whole NTG interval above 0 at 5 seeds), font_digits does not.
E2E_SUITE = {**SUITE, "name": "predicttiny", "sources": [tiny.SOURCE, "fashion_mnist"],
             "strategies": ["scratch", "linear_probe"], "labels_per_class": ["all"], "seeds": 5}


def _write(path, suite) -> str:
    path.write_text(yaml.safe_dump(suite, sort_keys=False))
    return str(path)


def _measure_rows(store) -> int:
    from benchmark.store import Store

    with Store(store, create=False) as s:
        return len(s.measures_frame())


@pytest.fixture(scope="module")
def e2e(tmp_path_factory):
    from conftest import require_system

    from benchmark.data.builders.fashion_mnist import DEBIAN_DIR, FILES

    require_system(Path(DEBIAN_DIR, FILES["test"][0]).is_file(), "dataset-fashion-mnist",
                   "apt-get install dataset-fashion-mnist")
    root = tmp_path_factory.mktemp("predict")
    suite = _write(root / "predicttiny.yaml", E2E_SUITE)
    store = root / "runs.sqlite"
    out = {"root": root, "suite": suite, "store": store}
    out["rc_run"] = main(["run", suite, "--store", str(store), "--quiet"])
    out["rows_after_run"] = _measure_rows(store)
    files = {k: root / f"out.{k}" for k in ("html", "json", "csv")}
    argv = ["predict", suite, "--store", str(store), "-o", str(files["html"]), "--json", str(files["json"]),
            "--csv", str(files["csv"]), "--n-boot", "200"]
    out["rc_predict"] = main(argv)
    out["files"] = files
    out["doc"] = json.loads(files["json"].read_text())
    out["rows_after_predict"] = _measure_rows(store)
    out["rc_again"] = main(argv)
    out["doc_again"] = json.loads(files["json"].read_text())
    return out


def test_run_then_predict_writes_json_csv_and_html(e2e) -> None:
    assert e2e["rc_run"] == 0 and e2e["rc_predict"] == 0
    doc = e2e["doc"]
    (group,) = doc["groups"]
    assert group["group"] == "linear_probe @ all labels"
    assert (group["n_pairs"], group["n_negative"]) == (2, 1)
    assert {p["source"] for p in group["predictions"]} == {tiny.SOURCE, "fashion_mnist"}
    knn = next(m for m in group["metrics"] if m["score"] == "features:knn_loo")
    assert knn["n"] == 2 and knn["auroc_negative"] in (0.0, 1.0)  # two pairs: perfectly right or wrong
    with open(e2e["files"]["csv"], newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["score"] for r in rows} >= {"features:knn_loo", "pixels:mmd2_rbf", P.COMBINATION}
    pairs = pd.read_csv(e2e["root"] / "out_pairs.csv")
    assert len(pairs) == 2 and pairs["p_negative_out_of_fold"].notna().all()
    html = e2e["files"]["html"].read_text()
    assert "linear_probe @ all labels" in html and "default-src 'none'" in html and "data:image/svg+xml" in html


def test_predict_adds_the_budget_scores_once(e2e) -> None:
    from benchmark.store import Store

    assert e2e["rows_after_predict"] > e2e["rows_after_run"] > 0
    assert e2e["doc"]["scores_computed_now"] == 10  # 2 pairs x 5 seeds
    assert e2e["doc_again"]["scores_computed_now"] == 0 and e2e["rc_again"] == 0
    with Store(e2e["store"], create=False) as s:
        m = s.measures_frame()
    names = set(zip(m["space"], m["measure"], strict=True))
    assert {("features", "knn_loo_lpcall"), ("pixels", "probe_val_lpcall"), ("features", "logme_lpcall"),
            ("data", "label_overlap"), ("data", "log10_source_train_size")} <= names
    overlap = m[(m["measure"] == "label_overlap")].groupby("source")["value"].first()
    assert overlap["fashion_mnist"] == 0.0 and overlap[tiny.SOURCE] == 1.0


def test_predict_on_another_suite_scores_pairs_before_they_run(e2e) -> None:
    root = e2e["root"]
    other = _write(root / "other.yaml", {**E2E_SUITE, "name": "predictother", "sources": ["font_digits@invert"],
                                         "seeds": 1})
    other_store = root / "other.sqlite"
    argv = ["predict", e2e["suite"], "--store", str(e2e["store"]), "--on", other, "--on-store", str(other_store),
            "-o", str(root / "on.html"), "--json", str(root / "on.json"), "--csv", str(root / "on.csv"),
            "--n-boot", "200"]
    assert main(argv) == 0
    doc = json.loads((root / "on.json").read_text())
    assert doc["on"]["suite"] == "predictother" and doc["on"]["n_pairs"] == 1
    assert doc["on"]["scores_computed"] == 1 and doc["on"]["evaluation"] is None  # nothing run there
    assert doc["on"]["pairs_also_in_fit"] == 0
    pairs = pd.read_csv(root / "on_pairs.csv")
    row = pairs[pairs["suite"] == "predictother"]
    assert list(row["source"]) == ["font_digits@invert"] and 0 <= float(row["p_negative"].iloc[0]) <= 1
    assert "Predictions for predictother" in (root / "on.html").read_text()


@pytest.mark.parametrize("case", ["unknown", "unfinished", "no_negative", "no_store"])
def test_bad_input_is_one_sentence_exit_2_and_writes_nothing(e2e, case, capsys) -> None:
    root = e2e["root"]
    store = e2e["store"]
    suite = {"unknown": str(root / "nope.yaml"),
             "unfinished": _write(root / "more.yaml", {**E2E_SUITE, "seeds": 6}),
             "no_negative": _write(root / "clean.yaml", {**E2E_SUITE, "sources": [tiny.SOURCE]}),
             "no_store": _write(root / "fresh.yaml", {**E2E_SUITE, "name": "neverrun"})}[case]
    before = _measure_rows(store)
    html = root / f"bad-{case}.html"
    argv = ["predict", suite, "-o", str(html), "--json", str(root / f"bad-{case}.json")]
    if case != "no_store":
        argv += ["--store", str(store)]
    capsys.readouterr()
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    expected = {"unknown": "no such suite file", "unfinished": "3 of 18 runs", "no_negative": "shows negative transfer",
                "no_store": "no results for suite"}[case]
    assert expected in err and len(err.splitlines()) == 1, err
    assert not html.exists() and not (root / f"bad-{case}.json").exists()
    assert _measure_rows(store) == before


def test_folds_that_train_on_one_outcome_are_counted() -> None:
    groups = ["a", "a", "b", "c"]
    assert P.one_outcome_folds(np.array([True, True, False, False]), groups) == 1  # holding out a leaves no positive
    assert P.one_outcome_folds(np.array([True, False, True, False]), groups) == 0


def test_predict_on_a_suite_with_verdicts_says_how_well_it_did(e2e) -> None:
    root = e2e["root"]
    argv = ["predict", e2e["suite"], "--store", str(e2e["store"]), "--on", e2e["suite"], "--on-store",
            str(e2e["store"]), "-o", str(root / "self.html"), "--json", str(root / "self.json"), "--csv",
            str(root / "self.csv"), "--n-boot", "200"]
    assert main(argv) == 0
    evaluation = json.loads((root / "self.json").read_text())["on"]["evaluation"]
    assert (evaluation["n"], evaluation["n_negative"]) == (2, 1)
    assert evaluation["auroc_negative"] in (0.0, 1.0)  # fit on the same two pairs: in-sample, shown as such
    page = (root / "self.html").read_text()
    assert "Checked against its finished verdicts" in page and "2 of these pairs are also pairs of" in page
