"""`tbench run` as users run it: real processes, SIGKILL mid-grid, two runners on one store,
then `status` and `export` on the result."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from test_config import SUITE

from benchmark.cli import main
from benchmark.config import load_suite
from benchmark.grid import build_grid
from benchmark.store import RUN_COLUMNS, Store

# Two scratch cells (budgets) × two seeds: no pretraining, and the tiny spec's kernels.
RUN_SUITE = {**SUITE, "name": "clitest", "sources": [], "strategies": ["scratch"],
             "labels_per_class": [5, 2], "seeds": 2}


def tbench(*args: str) -> subprocess.Popen:
    # The environment passes through: same data dir and JAX compilation cache as this session.
    return subprocess.Popen([sys.executable, "-m", "benchmark.cli", *args], env=dict(os.environ),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def rows(store: Path) -> list[tuple]:
    if not store.exists():
        return []
    with contextlib.closing(sqlite3.connect(store, timeout=30)) as db:
        try:
            return db.execute("SELECT run_id, status, attempts, runner, accuracy FROM runs").fetchall()
        except sqlite3.OperationalError:
            return []


@pytest.fixture(scope="module")
def suite_file(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("suite") / "clitest.yaml"
    path.write_text(yaml.safe_dump(RUN_SUITE, sort_keys=False))
    return path


@pytest.fixture(scope="module")
def resumed_store(suite_file, tmp_path_factory) -> Path:
    """A store whose first runner was SIGKILLed after its first cell, then resumed."""
    store = tmp_path_factory.mktemp("killed") / "runs.sqlite"
    first = tbench("run", str(suite_file), "--store", str(store), "--quiet")
    deadline = time.monotonic() + 120
    while len(rows(store)) < 2 and first.poll() is None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert first.poll() is None, "the runner finished before it could be killed:\n" + first.stdout.read()
    os.kill(first.pid, signal.SIGKILL)
    first.wait()
    done_before = len(rows(store))
    assert done_before == 2
    second = tbench("run", str(suite_file), "--store", str(store), "--quiet")
    out, _ = second.communicate(timeout=180)
    assert second.returncode == 0, out
    assert f"already finished {done_before};" in out and f"ran {4 - done_before} runs" in out
    return store


def test_a_killed_runner_resumes_losing_and_duplicating_nothing(suite_file, resumed_store):
    grid = build_grid(load_suite(suite_file))
    found = rows(resumed_store)
    assert sorted(r[0] for r in found) == sorted(r.run_id for r in grid.runs)
    # Finished: ok, or diverged (at lr 0.05 one tiny run collapses to chance: issue 15 calls it diverged)
    assert {r[1] for r in found} <= {"ok", "diverged"}
    assert {r[2] for r in found} == {1}  # every run computed and written once
    assert len({r[3] for r in found}) == 2  # two runners, the killed one and the resumer
    with contextlib.closing(sqlite3.connect(resumed_store)) as db:
        assert db.execute("SELECT COUNT(*) FROM leases").fetchone()[0] == 0


def test_two_concurrent_runners_share_the_grid_without_running_a_cell_twice(
        suite_file, resumed_store, tmp_path):
    store = tmp_path / "shared.sqlite"
    runners = [tbench("run", str(suite_file), "--store", str(store), "--quiet") for _ in range(2)]
    outs = [p.communicate(timeout=180)[0] for p in runners]
    assert [p.returncode for p in runners] == [0, 0], outs
    assert all("computed twice and discarded 0;" in out for out in outs), outs
    ran = [int(out.split(" ran ")[1].split()[0]) for out in outs]
    assert sum(ran) == 4 and min(ran) >= 1  # both runners took work
    found = rows(store)
    assert len(found) == 4 and {r[2] for r in found} == {1}
    # Same runs, same numbers as the killed-and-resumed store: processes do not change results.
    assert {r[0]: r[4] for r in found} == {r[0]: r[4] for r in rows(resumed_store)}


def test_status_and_export_round_trip(suite_file, resumed_store, tmp_path, capsys):
    assert main(["status", str(suite_file), "--store", str(resumed_store)]) == 0
    out = capsys.readouterr().out
    assert "4 runs in 2 cells" in out
    diverged = sum(r[1] == "diverged" for r in rows(resumed_store))
    assert [line.split() for line in out.splitlines()[1:]] == [
        ["done", str(4 - diverged)], ["running", "0"], ["failed", "0"], ["diverged", str(diverged)],
        ["to", "do", "0"]]
    frame = Store(resumed_store, create=False).runs_frame()
    csv, parquet = tmp_path / "runs.csv", tmp_path / "runs.parquet"
    assert main(["export", str(suite_file), "--store", str(resumed_store), "-o", str(csv)]) == 0
    assert main(["export", str(suite_file), "--store", str(resumed_store), "--format", "parquet",
                 "-o", str(parquet)]) == 0
    for back in (pd.read_csv(csv), pd.read_parquet(parquet)):
        assert list(back.columns[: len(RUN_COLUMNS)]) == list(RUN_COLUMNS)
        assert back["run_id"].tolist() == frame["run_id"].tolist()
        assert back["accuracy"].fillna(-1).tolist() == frame["accuracy"].fillna(-1).tolist()  # NaN: diverged
        assert [json.loads(c) for c in back["curve"]] == frame["curve"].tolist()
        assert [json.loads(c) for c in back["config"]] == frame["config"].tolist()
        assert back["source"].isna().all() and (back["labels_per_class"] == frame["labels_per_class"]).all()


def test_status_before_any_run_and_export_without_a_store(suite_file, tmp_path, capsys):
    assert main(["status", str(suite_file), "--store", str(tmp_path / "none.sqlite")]) == 0
    assert ["to", "do", "4"] in [line.split() for line in capsys.readouterr().out.splitlines()]
    assert main(["export", str(suite_file), "--store", str(tmp_path / "none.sqlite")]) == 2
    assert "run `tbench run SUITE` first" in capsys.readouterr().err
    assert not (tmp_path / "none.sqlite").exists()


def test_an_unreachable_ray_address_is_a_user_error_and_writes_nothing(suite_file, tmp_path, capsys):
    pytest.importorskip("ray")
    store = tmp_path / "ray.sqlite"
    assert main(["run", str(suite_file), "--executor", "ray", "--address", "127.0.0.1:9",
                 "--store", str(store)]) == 2
    assert "--address: no Ray cluster answers at 127.0.0.1:9" in capsys.readouterr().err
    assert not store.exists()
    assert main(["run", str(suite_file), "--address", "127.0.0.1:9", "--store", str(store)]) == 2
    assert main(["run", str(suite_file), "--max-cells", "0", "--store", str(store)]) == 2
    assert not store.exists()
