"""Executors: Ray gives the local executor's results, and a worker killed mid-cell loses nothing."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
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
    """Task processes of the Ray instance this test started (its descendants): never another
    user's Ray tasks on the same machine."""
    pids = []
    for proc in psutil.Process().children(recursive=True):
        with contextlib.suppress(psutil.Error):
            if " ".join(proc.cmdline() or []).startswith("ray::run_group"):
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
    # Finished = ok or diverged: at lr 0.05 a tiny run can collapse to chance, now `diverged`.
    assert (summary.ran, summary.ok + summary.diverged, summary.failed, summary.duplicates) == (4, 4, 0, 0)

    local_store = Store(tmp_path / "local.sqlite")
    local = run_grid(grid, local_store, LocalExecutor())
    assert (local.ran, local.ok + local.diverged, local.ok) == (4, 4, summary.ok)
    ray_runs = ray_store.runs_frame().set_index("run_id")
    local_runs = local_store.runs_frame().set_index("run_id")
    assert sorted(ray_runs.index) == sorted(local_runs.index) == sorted(r.run_id for r in grid.runs)
    for run_id in local_runs.index:
        assert ray_runs.loc[run_id, "status"] == local_runs.loc[run_id, "status"]
        assert ray_runs.loc[run_id, "diverged_step"] == local_runs.loc[run_id, "diverged_step"] or \
            pd.isna(local_runs.loc[run_id, "diverged_step"])
        assert ray_runs.loc[run_id, "accuracy"] == local_runs.loc[run_id, "accuracy"] or \
            pd.isna(local_runs.loc[run_id, "accuracy"])
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


# -- a real cluster: `ray start --head` plus a worker node, driven by `tbench run --address` ----------

CLUSTER_SUITE = {**SUITE, "name": "clustertest", "sources": [], "strategies": ["scratch"],
                 "labels_per_class": [5, 2], "seeds": 2}


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalCluster:
    """A Ray cluster of separate processes on 127.0.0.1 under its own temp dir.

    Stopped by killing exactly its own processes (those naming its temp dir, and their children):
    `ray stop` would stop every Ray process on the machine, other users' included.
    """

    def __init__(self, tmp: str):
        self.tmp, self.port = tmp, _free_port()
        self.ray = str(Path(sys.executable).with_name("ray"))
        # Its own token: Ray 2.60 turns token authentication on once ~/.ray/auth_token exists,
        # and a node or driver without the cluster's token is refused.
        self.env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "RAY_AUTH_MODE": "token",
                    "RAY_AUTH_TOKEN": secrets.token_hex(32)}

    def start(self, *args: str, tries: int = 3) -> None:
        for _ in range(tries):  # a busy machine's GCS can be slow to answer the first worker
            proc = subprocess.run([self.ray, "start", "--node-ip-address=127.0.0.1", "--num-cpus=1",
                                   "--disable-usage-stats", *args], env=self.env, timeout=180,
                                  stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
            if proc.returncode == 0:
                return
            time.sleep(5)
        raise AssertionError(f"ray start {' '.join(args)} failed:\n{proc.stdout[-3000:]}")

    def raylets(self) -> list:
        found = []
        for proc in self.processes():
            with contextlib.suppress(psutil.Error):
                if proc.name().startswith("raylet"):
                    found.append(proc)
        return found

    def processes(self) -> list:
        port = re.compile(rf":{self.port}\b")  # the client server names only the GCS address
        roots = [p for p in psutil.process_iter(["cmdline"])
                 if self.tmp in " ".join(p.info["cmdline"] or []) or port.search(" ".join(p.info["cmdline"] or []))]
        found = {p.pid: p for p in roots}
        for p in roots:
            with contextlib.suppress(psutil.Error):
                found.update({c.pid: c for c in p.children(recursive=True)})
        return list(found.values())

    def stop(self) -> None:
        for proc in self.processes():
            with contextlib.suppress(psutil.Error):
                proc.kill()


@pytest.mark.slow
def test_a_real_cluster_loses_no_run_when_a_worker_node_dies(tmp_path):
    suite = tmp_path / "clustertest.yaml"
    suite.write_text(yaml.safe_dump(CLUSTER_SUITE, sort_keys=False))
    store = tmp_path / "cluster.sqlite"
    cluster = LocalCluster(tempfile.mkdtemp(prefix="rtb", dir="/tmp"))
    driver = None
    try:
        cluster.start("--head", f"--port={cluster.port}", f"--temp-dir={cluster.tmp}", "--include-dashboard=false")
        head_raylets = {p.pid for p in cluster.raylets()}
        cluster.start(f"--address=127.0.0.1:{cluster.port}")
        worker_raylet = next(p for p in cluster.raylets() if p.pid not in head_raylets)
        driver = subprocess.Popen([sys.executable, "-m", "benchmark.cli", "run", str(suite), "--executor", "ray",
                                   "--address", f"127.0.0.1:{cluster.port}", "--store", str(store), "--quiet",
                                   "--no-measures"], env=cluster.env, stdout=subprocess.PIPE,
                                  stderr=subprocess.STDOUT, text=True)
        # Kill the whole worker node (its raylet and every process under it) once it runs a cell.
        deadline, killed = time.monotonic() + 300, False
        while not killed and driver.poll() is None and time.monotonic() < deadline:
            tasks = [c for c in worker_raylet.children(recursive=True)
                     if " ".join(c.cmdline() or []).startswith("ray::run_group")]
            if tasks:
                for proc in [worker_raylet, *worker_raylet.children(recursive=True)]:
                    with contextlib.suppress(psutil.Error):
                        proc.kill()
                killed = True
            time.sleep(0.05)
        out, _ = driver.communicate(timeout=600)
        assert killed, f"no cell ran on the worker node, so none could be lost:\n{out}"
        assert driver.returncode == 0, out
        assert "ran 4 runs" in out and "failed 0" in out and "computed twice and discarded 0" in out, out
        with Store(store, create=False) as s:
            runs = s.runs_frame()
        # Every run finished once (a tiny run may legitimately collapse: `diverged` is finished).
        assert len(runs) == 4 and set(runs["status"]) <= {"ok", "diverged"} and set(runs["attempts"]) == {1}
    finally:
        if driver is not None and driver.poll() is None:
            driver.kill()
        cluster.stop()
        shutil.rmtree(cluster.tmp, ignore_errors=True)
