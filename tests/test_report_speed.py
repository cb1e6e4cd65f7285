"""The report's Speed section from `tbench bench` JSON files: numbers, escaping, choice of files, errors."""

from __future__ import annotations

import copy
import json
import re

import pytest
from test_report import EVIL, EVIL_TEXT, _parser, _store, measures_frame, runs_frame

from benchmark.cli import main
from benchmark.errors import UserError
from benchmark.report import build_report
from benchmark.report.speed import latest_benches, load_bench, speed_section


def bench_result(date: str = "2026-11-23T17:00:00+00:00", *, cpu: str = "Test CPU") -> dict:
    """A bench JSON shaped like run_bench's output, with round numbers to find in the page."""
    def contender(seconds, work=8192.0, mfu=0.2):
        return {"unit": "images", "work_per_trial": work, "seconds": seconds,
                "median_s": sorted(seconds)[len(seconds) // 2], "rate": work / sorted(seconds)[len(seconds) // 2],
                "flops_per_s": 7e6 * work / sorted(seconds)[len(seconds) // 2], "mfu": mfu}

    engine, torch = contender([4.0, 4.096, 5.0], mfu=0.2), contender([8.192, 8.0, 10.0], mfu=0.1)
    return {
        "schema": 1, "mode": "full", "sections": ["step", "grid"], "complete": True,
        "machine": {"cpu_model": cpu, "usable_cores": 2, "memory_bytes": 24 * 2**30, "backend": "cpu",
                    "devices": ["cpu"], "date_utc": date, "load_average_at_start": [0.5, 0.4, 0.3],
                    "versions": {"jax": "0.10.2"}},
        "load_average_at_end": [1.0, 0.9, 0.8],
        "step": {"config": {"width": 16, "batch_size": 128, "steps_per_trial": 64},
                 "plan": {"name": "fast", "chunk_steps": 2, "unroll": 2, "seeds": "sequential"},
                 "model": {"name": "lenet", "param_count": 206922},
                 "flops_per_image": {"training": 7.08e6},
                 "matmul_peak": {"work_per_trial": 6.4e10, "seconds": [2.0, 1.6, 1.0], "rate": 4e10,
                                 "n": 2048, "dtype": "float32"},
                 "contenders": {"engine": engine, "torch_eager": torch},
                 "ratios": {"engine_vs_torch_eager": engine["rate"] / torch["rate"]}},
        "grid": {"config": {"suite": "suites/quick.yaml", "cells": 44, "runs": 132},
                 "engine": {"trials": [{"wall_s": 600.0, "compile_s": 48.0, "runs": 132}]},
                 "naive": {"trials": [{"wall_s": 3600.0, "compile_s": 720.0, "runs": 132, "sampled_runs": 12,
                                       "estimated": True}]},
                 "speedup_engine_vs_naive": 6.0},
        "memory": {"after_step": {"host_peak_rss_bytes": 2**30, "children_peak_rss_bytes": 0,
                                  "device_peak_bytes": None}},
        "targets": {"engine_step_vs_torch_eager_ge_1.5x": {"value": 2.0, "threshold": 1.5, "met": True},
                    "engine_step_mfu_ge_35pct": {"value": 0.2, "threshold": 0.35, "met": False},
                    "grid_engine_vs_naive_ge_5x": {"value": 6.0, "threshold": 5.0, "met": True},
                    "grid_engine_compile_share_le_10pct": {"value": 0.08, "threshold": 0.1, "met": True},
                    "gpu_seeds_batched_vs_tutorial_ge_5x": {"value": None, "threshold": 5.0, "met": None,
                                                            "note": "judged on an accelerator only"}},
    }


def _write(path, data):
    path.write_text(json.dumps(data))
    return path


def test_speed_section_shows_measured_numbers_trials_and_verdicts(tmp_path):
    data = load_bench(_write(tmp_path / "box-cpu-2c-2026-11-23.json", bench_result(cpu=EVIL)))
    html = build_report(runs_frame(), measures_frame(), title="speed", n_bootstrap=200, bench=[data])
    section = html[html.index('<h2 id="speed">'):html.index('<h2 id="environment">')]
    # engine: 8192 images / median 4.096 s = 2,000 images/s, range from the fastest and slowest trial
    assert re.search(r"2,000</span> <span class=\"ci\">\[1,638–2,048\]</span> <span class=\"n\">n=3", section)
    # per-round ratios engine ÷ torch: 8.192/4, 8/4.096, 10/5 -> 2.05, 1.95, 2.00; median ratio 2.00×
    assert re.search(r"2\.00×</span> <span class=\"ci\">\[1\.95–2\.05\]</span> <span class=\"n\">n=3", section)
    assert "20.0%" in section and "40.0 GFLOP/s" in section  # MFU and the matmul peak (6.4e10 / 1.6 s)
    assert "600 s" in section and "8.0%" in section and "6.00×" in section  # grid wall, compile share, speedup
    assert "extrapolated from 12 sampled runs of 132" in section
    verdicts = re.findall(r'<span class="badge (\w+)">([a-z ]+)</span>', section)
    assert verdicts == [("pos", "met"), ("neg", "not met"), ("pos", "met"), ("pos", "met"), ("inc", "not judged")]
    assert EVIL not in html and EVIL_TEXT in section  # a machine string is escaped like any user string
    assert 'href="#speed"' in html


def test_no_speed_section_without_bench_results():
    html = build_report(runs_frame(), measures_frame(), title="speed", n_bootstrap=200)
    assert 'id="speed"' not in html and 'href="#speed"' not in html


def test_latest_benches_takes_the_newest_complete_full_result_per_section(tmp_path):
    old = bench_result("2026-11-20T10:00:00+00:00")
    scaling_only = {**copy.deepcopy(old), "sections": ["scaling"], "step": None, "grid": None,
                    "scaling": {"cells": [{"cells": 1, "runs": 1, "seconds": 9.0, "seconds_per_run": 9.0,
                                           "compile_s": 3.0}]}}
    new = bench_result("2026-11-23T17:00:00+00:00")
    newer_but_incomplete = {**bench_result("2026-11-24T00:00:00+00:00"), "complete": False}
    newer_but_quick = {**bench_result("2026-11-25T00:00:00+00:00"), "mode": "quick"}
    paths = {name: _write(tmp_path / f"box-cpu-2c-{name}.json", data) for name, data in
             (("old", old), ("scaling", scaling_only), ("new", new), ("incomplete", newer_but_incomplete),
              ("quick", newer_but_quick))}
    _write(tmp_path / "other-machine-cpu-2c-x.json", bench_result("2026-12-01T00:00:00+00:00"))
    (tmp_path / "box-cpu-2c-broken.json").write_text("{not json")
    assert sorted(latest_benches(tmp_path, "box-cpu-2c")) == sorted([paths["new"], paths["scaling"]])
    assert latest_benches(tmp_path, "nobody-cpu-2c") == []
    sections = speed_section([load_bench(p) for p in latest_benches(tmp_path, "box-cpu-2c")])
    assert [s["date"] for s in sections] == ["2026-11-23T17:00:00+00:00", "2026-11-20T10:00:00+00:00"]
    assert sections[1]["scaling"]["tables"][0]["rows"][0]["per_run"] == "9.00"


def test_tbench_report_bench_flag_and_its_errors(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _store(tmp_path / "results" / "tiny.sqlite", tmp_path)
    _write(tmp_path / "bench.json", bench_result())
    args = _parser().parse_args(["report", "results/tiny.sqlite", "-o", "out/ok.html", "--n-bootstrap", "200",
                                 "--bench", "bench.json"])
    assert args.func(args) == 0
    assert 'id="speed"' in (tmp_path / "out" / "ok.html").read_text()
    (tmp_path / "broken.json").write_text("{not json")
    _write(tmp_path / "other.json", {"schema": 1, "machine": {}, "rows": []})
    _write(tmp_path / "v2.json", {**bench_result(), "schema": 2})
    for name, words in (("missing.json", "missing.json: --bench: no such bench result file"),
                        ("broken.json", "broken.json: not a JSON file"),
                        ("v2.json", "v2.json: schema: not a `tbench bench` result"),
                        ("other.json", "other.json: sections: has none of the sections")):
        with pytest.raises(UserError, match=re.escape(words)):
            load_bench(name)
        assert main(["report", "results/tiny.sqlite", "-o", "out/bad.html", "--bench", name]) == 2
    assert not (tmp_path / "out" / "bad.html").exists()  # nothing half-written
