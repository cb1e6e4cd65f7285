"""Executors: Ray gives the local executor's results, and a worker killed mid-cell loses nothing."""

from __future__ import annotations

import dataclasses
import os
import signal
import threading
import time

import pytest
from test_config import SUITE

from benchmark.config import resolve_suite
from benchmark.executors import run_grid
from benchmark.executors.local import LocalExecutor
from benchmark.grid import build_grid
from benchmark.store import Store

ray = pytest.importorskip("ray", reason="the Ray executor needs `pip install 'transferbench[ray]'`")
psutil = pytest.importorskip("psutil")

# scratch and finetune_partial at the tiny budget, two seeds: the engine tests' tiny cells.
EXEC_SUITE = {**SUITE, "name": "exectest", "labels_per_class": [5], "seeds": 2,
              "strategies": ["scratch", {"name": "finetune_partial", "params": {"k": 1}}]}


@pytest.fixture(scope="module")
def ray_cluster():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, _node_ip_address="127.0.0.1")
    yield
    ray.shutdown()


def _ray_task_pids() -> list[int]:
    pids = []
    for proc in psutil.process_iter(["cmdline"]):
        cmdline = " ".join(proc.info["cmdline"] or [])
        if cmdline.startswith("ray::run_group"):
            pids.append(proc.pid)
    return pids


def test_ray_matches_local_and_retries_a_killed_worker(ray_cluster, tmp_path):
    from benchmark.executors.ray_executor import RayExecutor

    grid = build_grid(resolve_suite(EXEC_SUITE, file="exec.yaml"))
    assert len(grid.runs) == 4
    ray_store = Store(tmp_path / "ray.sqlite")
    executor = RayExecutor()
    assert executor.slots == 2
    outcome = {}
    thread = threading.Thread(target=lambda: outcome.update(summary=run_grid(grid, ray_store, executor)))
    thread.start()
    killed = None
    deadline = time.monotonic() + 120
    while killed is None and thread.is_alive() and time.monotonic() < deadline:
        pids = _ray_task_pids()
        if pids:
            killed = pids[0]
            os.kill(killed, signal.SIGKILL)
        time.sleep(0.02)
    thread.join(timeout=300)
    assert killed is not None, "no Ray task was seen running, so none could be killed"
    summary = outcome["summary"]
    assert (summary.ran, summary.ok, summary.failed, summary.duplicates) == (4, 4, 0, 0)

    local_store = Store(tmp_path / "local.sqlite")
    local = run_grid(grid, local_store, LocalExecutor())
    assert (local.ran, local.ok) == (4, 4)
    ray_runs = ray_store.runs_frame().set_index("run_id")
    local_runs = local_store.runs_frame().set_index("run_id")
    assert sorted(ray_runs.index) == sorted(local_runs.index) == sorted(r.run_id for r in grid.runs)
    for run_id in local_runs.index:
        assert ray_runs.loc[run_id, "accuracy"] == local_runs.loc[run_id, "accuracy"]
        assert ray_runs.loc[run_id, "attempts"] == 1
    assert set(ray_runs["versions"].map(lambda v: v["ray"])) == {ray.__version__}


def test_a_failing_cell_is_recorded_as_failed_and_retried_next_time(tmp_path):
    grid = build_grid(resolve_suite({**EXEC_SUITE, "strategies": ["scratch"]}, file="exec.yaml"))
    # A cell the engine rejects (the backbone cannot be built): run_cell raises, the grid goes on.
    bad = [dataclasses.replace(r, spec=dataclasses.replace(r.spec, backbone="no_such_net"))
           for r in grid.runs]
    broken = dataclasses.replace(grid, runs=tuple(bad))
    store = Store(tmp_path / "fail.sqlite")
    summary = run_grid(broken, store, LocalExecutor())
    assert (summary.ran, summary.failed, summary.ok) == (2, 2, 0)
    frame = store.runs_frame()
    assert frame["status"].tolist() == ["failed", "failed"]
    assert all("unknown backbone 'no_such_net'" in e for e in frame["error"])
    assert frame["accuracy"].isna().all()
    again = run_grid(broken, store, LocalExecutor())
    assert (again.ran, again.failed, again.skipped_finished) == (2, 2, 0)
    assert store.runs_frame()["attempts"].tolist() == [2, 2]
