"""Domain-gap and transferability measures: written by `tbench run` for a tiny suite, exact on
recomputation, never recomputed on a rerun; `tbench gap` prints them (exit 0) or exits 2."""

from __future__ import annotations

import math
import sqlite3
from pathlib import Path

import numpy as np
import pytest
import tiny
import yaml
from test_config import SUITE

from benchmark.analysis import GAP_MEASURES, TRANSFERABILITY_MEASURES
from benchmark.cli import main
from benchmark.config import load_suite
from benchmark.data import info
from benchmark.grid import build_grid
from benchmark.measures import EXPECTED, MAX_IMAGES, pair_measures, pending_pairs, subsample_indices
from benchmark.store import Store

# The shared tiny cell (linear_probe: the source model and kernels other tests compile too), two seeds.
MEASURE_SUITE = {**SUITE, "name": "measuretest", "strategies": ["scratch", "linear_probe"],
                 "labels_per_class": [tiny.LABELS_PER_CLASS], "seeds": 2}


def _recorded_at(store: Path) -> list[tuple]:
    with sqlite3.connect(store) as db:
        return db.execute("SELECT source, target, measure, space, seed, recorded_at FROM measures "
                          "ORDER BY source, target, measure, space, seed").fetchall()


@pytest.fixture(scope="module")
def suite_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("measures") / "measuretest.yaml"
    path.write_text(yaml.safe_dump(MEASURE_SUITE, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def runs(suite_file, tmp_path_factory):
    """One store, three `tbench run`s: --no-measures, then measures only, then nothing to do."""
    store = tmp_path_factory.mktemp("measures_store") / "runs.sqlite"
    base = ["run", str(suite_file), "--store", str(store), "--quiet"]
    out = {"store": store}
    out["rc_skip"] = main([*base, "--no-measures"])
    with Store(store, create=False) as s:
        out["after_skip"] = (len(s.runs_frame()), len(s.measures_frame()))
    out["rc_measure"] = main(base)
    with Store(store, create=False) as s:
        out["runs"], out["measures"] = s.runs_frame(), s.measures_frame()
    out["stamps"] = _recorded_at(store)
    out["rc_again"] = main(base)
    with Store(store, create=False) as s:
        out["measures_again"] = s.measures_frame()
        out["pending"] = pending_pairs(build_grid(load_suite(suite_file)), s)
    out["stamps_again"] = _recorded_at(store)
    return out


def test_no_measures_flag_records_runs_only(runs) -> None:
    assert runs["rc_skip"] == 0
    assert runs["after_skip"] == (4, 0)  # scratch + linear_probe, two seeds; no measures


def test_run_records_every_measure_of_the_pair_per_seed(runs) -> None:
    assert runs["rc_measure"] == 0
    assert len(runs["runs"]) == 4  # the second run trained nothing
    m = runs["measures"]
    assert set(zip(m["source"], m["target"], strict=True)) == {(tiny.SOURCE, tiny.TARGET)}  # scratch adds none
    for seed in (0, 1):
        rows = m[m["seed"] == seed]
        assert sorted(zip(rows["space"], rows["measure"], strict=True)) == sorted(EXPECTED)
    known = set(GAP_MEASURES) | set(TRANSFERABILITY_MEASURES)
    assert set(m["measure"]) <= known and set(m["space"]) == {"features", "pixels"}
    assert m[m["space"] == "pixels"]["measure"].isin(GAP_MEASURES).all()
    values = {(r.space, r.measure, r.seed): r.value for r in m.itertuples()}
    assert all(math.isfinite(v) for v in values.values())
    for seed in (0, 1):
        assert -2 <= values[("features", "proxy_a_distance", seed)] <= 2
        assert values[("features", "leep", seed)] <= 0 and values[("features", "nce", seed)] <= 0
        assert values[("features", "mmd2_rbf", seed)] >= 0 and values[("pixels", "mmd2_rbf", seed)] >= 0
    # The model-free pixel gap differs between seeds only through the subsample; the two seeds'
    # source models differ, so their feature gaps do too.
    assert values[("features", "frechet_distance", 0)] != values[("features", "frechet_distance", 1)]


def test_rerun_neither_recomputes_nor_duplicates(runs) -> None:
    assert runs["rc_again"] == 0
    assert runs["pending"] == ([], 2)
    assert len(runs["measures_again"]) == len(runs["measures"]) == 2 * len(EXPECTED)
    assert runs["stamps_again"] == runs["stamps"]


def test_pair_measures_are_deterministic_and_match_the_store(runs) -> None:
    spec = tiny.cell("linear_probe")
    first, second = pair_measures(spec, 1), pair_measures(spec, 1)
    assert [(r["space"], r["measure"], r["value"]) for r in first] == \
           [(r["space"], r["measure"], r["value"]) for r in second]
    m = runs["measures"]
    stored = {(r.space, r.measure): r.value for r in m[m["seed"] == 1].itertuples()}
    assert {(r["space"], r["measure"]): r["value"] for r in first} == pytest.approx(stored, rel=1e-12)
    # Train split only, at most MAX_IMAGES per side.
    n_train = info(tiny.TARGET).splits["train"]
    assert first[0]["config"]["n_target"] == min(MAX_IMAGES, n_train)
    assert first[0]["config"]["split"] == "train"


def test_subsample_is_seeded_and_bounded() -> None:
    a, b = subsample_indices(5000, 1000, seed=3, side=1), subsample_indices(5000, 1000, seed=3, side=1)
    assert np.array_equal(a, b) and len(np.unique(a)) == 1000 and a.max() < 5000
    assert not np.array_equal(a, subsample_indices(5000, 1000, seed=4, side=1))
    assert not np.array_equal(a, subsample_indices(5000, 1000, seed=3, side=0))
    assert np.array_equal(subsample_indices(7, 1000, seed=0, side=0), np.arange(7))


def test_tbench_gap_prints_the_stored_values(runs, suite_file, capsys) -> None:
    capsys.readouterr()
    assert main(["gap", tiny.SOURCE, tiny.TARGET, "--suite", str(suite_file), "--seed", "0"]) == 0
    out = capsys.readouterr().out
    m = runs["measures"]
    for r in m[m["seed"] == 0].itertuples():
        line = next(line for line in out.splitlines() if line.startswith(f"│ {r.measure} "))
        assert f"{r.value:.4g}" in line, (r.measure, r.space, line)


@pytest.mark.parametrize("argv, message", [
    (["gap", "font_digitz", tiny.TARGET], "unknown dataset 'font_digitz'"),
    (["gap", tiny.SOURCE, tiny.TARGET, "--input", "16x16"], "--input"),
    (["gap", tiny.SOURCE, tiny.TARGET, "--backbone", "vgg"], "unknown backbone"),
])
def test_tbench_gap_bad_input_exits_2(argv, message, capsys) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_tbench_gap_suite_and_model_options_conflict(suite_file, capsys) -> None:
    assert main(["gap", tiny.SOURCE, tiny.TARGET, "--suite", str(suite_file), "--width", "8"]) == 2
    assert "cannot be combined with --suite" in capsys.readouterr().err


def test_report_shows_the_measures_the_run_recorded(runs) -> None:
    from benchmark.report import build_report

    html = build_report(runs["runs"], runs["measures"], title="measures", n_bootstrap=200)
    assert 'id="gap"' in html
    assert 'id="gap"' not in build_report(runs["runs"], None, title="measures", n_bootstrap=200)
    section = html[html.index('id="gap"'):]
    for measure in ("proxy_a_distance", "mmd2_rbf", "frechet_distance", "leep", "logme", "nce", "h_score"):
        assert measure in section


def test_measures_of_another_model_count_as_missing(runs, suite_file, tmp_path) -> None:
    """A store whose measures were taken with another backbone width must not satisfy this suite."""
    import shutil

    store = tmp_path / "copy.sqlite"
    shutil.copy(runs["store"], store)
    grid = build_grid(load_suite(suite_file))
    with Store(store, create=False, readonly=False) as s:
        frame = s.measures_frame(with_config=True)
        assert pending_pairs(grid, s) == ([], 2)
        stale = []
        for row in frame.to_dict("records"):
            config = {**row["config"], "backbone_params": {**row["config"]["backbone_params"], "width": 99}}
            stale.append({**row, "config": config})
        s.record_measures(stale)
        todo, done = pending_pairs(grid, s)
    assert done == 0 and sorted(seed for _, seed in todo) == [0, 1]
