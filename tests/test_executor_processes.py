"""The per-core executor: the local executor's results (kernels split as in this process, each
worker on its own core), one pretraining per source shared by two workers through the checkpoint
lock, a killed worker's cell failed and the next one run, and no worker left behind by a
shutdown, Ctrl-C or a killed parent."""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import tiny
import yaml
from test_config import SUITE

from benchmark.config import resolve_suite
from benchmark.executors import run_grid
from benchmark.executors.local import LocalExecutor
from benchmark.executors.processes import ProcessesExecutor, usable_cores
from benchmark.grid import build_grid
from benchmark.store import Store

psutil = pytest.importorskip("psutil")

# Two tiny cells that fine-tune the same source x two seeds: both workers need each seed's source
# model at about the same moment.
PROC_SUITE = {**SUITE, "name": "proctest", "labels_per_class": [tiny.LABELS_PER_CLASS], "seeds": 2,
              "strategies": [{"name": "finetune_partial", "params": {"k": 1}},
                             {"name": "finetune_partial", "params": {"k": 2}}]}


def _workers(executor: ProcessesExecutor) -> list:
    return [psutil.Process(p.pid) for p in (executor._pool._processes or {}).values()]


def _gone(procs: list, timeout: float = 15.0) -> bool:
    _, alive = psutil.wait_procs(procs, timeout=timeout)
    return not alive


def _spawned_children() -> list:
    """This process's multiprocessing workers (not its resource tracker)."""
    found = []
    for child in psutil.Process().children(recursive=True):
        try:
            if "spawn_main" in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:
            continue
    return found


class _Workers:
    """A listener that notes the executor's worker processes while the grid runs."""

    def __init__(self, executor: ProcessesExecutor):
        self.executor, self.seen = executor, {}

    def start(self, total, finished_before):
        pass

    def begin(self, spec, seeds):
        self.seen.update({p.pid: p for p in _workers(self.executor)})

    def finish(self, spec, results):
        self.seen.update({p.pid: p for p in _workers(self.executor)})


def test_processes_match_local_pretrain_each_source_once_and_leave_no_worker(tmp_path):
    grid = build_grid(resolve_suite(PROC_SUITE, file="proc.yaml"))
    assert len(grid.runs) == 4
    local_store, proc_store = Store(tmp_path / "local.sqlite"), Store(tmp_path / "proc.sqlite")
    local = run_grid(grid, local_store, LocalExecutor(checkpoint_dir=str(tmp_path / "local")))
    executor = ProcessesExecutor(workers=2, checkpoint_dir=str(tmp_path / "shared"))
    assert executor.slots == 2
    listener = _Workers(executor)
    summary = run_grid(grid, proc_store, executor, listener=listener)
    assert (summary.ran, summary.failed, summary.ok, summary.diverged) == (4, 0, local.ok, local.diverged), \
        summary.errors
    local_runs = local_store.runs_frame().set_index("run_id").sort_index()
    proc_runs = proc_store.runs_frame().set_index("run_id").sort_index()
    assert list(proc_runs.index) == list(local_runs.index) == sorted(r.run_id for r in grid.runs)
    for column in ("status", "accuracy", "diverged_step"):  # bit-identical: same seeds, same kernels
        assert proc_runs[column].fillna(-1).tolist() == local_runs[column].fillna(-1).tolist(), column
    # Each seed's source was pretrained by one worker; the other waited on the lock and loaded it.
    pretrained = proc_runs.assign(trained=proc_runs["pretrain_s"] > 0).groupby("seed")["trained"].sum()
    assert pretrained.to_dict() == {0: 1, 1: 1}
    shared, alone = _checkpoints(tmp_path / "shared"), _checkpoints(tmp_path / "local")
    assert len(shared) == 2, f"one checkpoint per seed and no half-written leftovers, got {sorted(shared)}"
    assert shared == alone, "the workers pretrained other parameters than the local executor"
    assert len(listener.seen) == 2 and os.getpid() not in listener.seen
    assert _gone(list(listener.seen.values())), "run_grid's shutdown left worker processes running"
    assert not _spawned_children()


def _checkpoints(directory: Path) -> dict[str, str]:
    """Each entry of a checkpoint directory (any folder, leftovers included) -> its parameters' SHA-256."""
    return {p.name: json.loads((p / "meta.json").read_text())["sha256"] if (p / "meta.json").exists() else ""
            for p in directory.iterdir() if p.is_dir()}


def _split_probe() -> list[bytes]:
    """Sums whose float rounding follows how XLA:CPU splits their work over its threads (measured:
    a pool of one thread gives other bits than a pool of two, for both)."""
    import jax
    import numpy as np

    values = np.random.default_rng(0).standard_normal(1 << 20, np.float32)
    return [np.asarray(jax.jit(lambda v: v.sum())(values)).tobytes(),
            np.asarray(jax.jit(lambda v: v.reshape(1024, 1024).sum(0))(values)).tobytes()]


def test_workers_compute_what_this_process_computes_each_on_its_own_core():
    executor = ProcessesExecutor(workers=2)
    try:
        results = [f.result(timeout=300) for f in [executor._pool.submit(_split_probe) for _ in range(2)]]
        workers = _workers(executor)
        deadline = time.monotonic() + 120
        while any(len(w.cpu_affinity()) != 1 for w in workers) and time.monotonic() < deadline:
            time.sleep(0.1)  # a worker that took no probe may still be starting
        cores = [w.cpu_affinity() for w in workers]
    finally:
        executor.shutdown()
    here = _split_probe()
    assert all(result == here for result in results), "a worker split its kernels otherwise: other numbers"
    assert len(workers) == 2 and all(len(c) == 1 for c in cores), cores
    if usable_cores() >= 2:
        assert cores[0] != cores[1], "two workers confined to the same core"
    assert _gone(workers) and not _spawned_children()


def test_a_killed_worker_fails_its_cell_and_a_new_worker_runs_the_next():
    broken = dataclasses.replace(tiny.cell("scratch"), backbone="no_such_net")  # fails at once, in the worker
    executor = ProcessesExecutor(workers=1)
    try:
        first = executor.submit(broken, [tiny.SEED])
        deadline = time.monotonic() + 60
        while not _workers(executor) and time.monotonic() < deadline:
            time.sleep(0.02)
        [killed] = _workers(executor)
        killed.kill()
        [(_, payload)] = executor.wait([first])
        assert payload["results"][0]["status"] == "failed"
        assert "worker process failed" in payload["results"][0]["error"]
        [(_, payload)] = executor.wait([executor.submit(broken, [tiny.SEED])])
        assert "unknown backbone 'no_such_net'" in payload["results"][0]["error"]  # a live worker ran it
        replacement = _workers(executor)
        assert replacement and killed.pid not in {w.pid for w in replacement}
    finally:
        executor.shutdown()
    assert _gone(replacement) and not _spawned_children()


def test_ctrl_c_stops_busy_workers_at_once(tmp_path):
    """KeyboardInterrupt while cells run: run_grid's shutdown terminates the workers, leaves none."""
    grid = build_grid(resolve_suite(PROC_SUITE, file="proc.yaml"))
    executor = ProcessesExecutor(workers=2, checkpoint_dir=str(tmp_path / "sources"))

    class Interrupt(_Workers):
        def begin(self, spec, seeds):
            super().begin(spec, seeds)
            if len(self.executor._seeds) == 1:  # one cell in flight, the second about to start
                time.sleep(1.0)
                super().begin(spec, seeds)
                raise KeyboardInterrupt

    listener = Interrupt(executor)
    started = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        run_grid(grid, Store(tmp_path / "s.sqlite"), executor, listener=listener)
    assert time.monotonic() - started < 30
    assert listener.seen and _gone(list(listener.seen.values()), timeout=5.0)
    assert not _spawned_children()


KILLED_PARENT = """
import sys, time
sys.path.insert(0, {tests!r})
import tiny
from benchmark.executors.processes import ProcessesExecutor, usable_cores
ex = ProcessesExecutor(workers=2, checkpoint_dir={ckpt!r})
ex.submit(tiny.cell("scratch"), [0])
ex.submit(tiny.cell("scratch"), [1])
while len(ex._pool._processes or {{}}) < 2:
    time.sleep(0.05)
print(" ".join(str(pid) for pid in ex._pool._processes), flush=True)
time.sleep(600)
"""


def test_workers_exit_when_their_parent_is_killed(tmp_path):
    script = KILLED_PARENT.format(tests=str(Path(__file__).parent), ckpt=str(tmp_path / "sources"))
    parent = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True)
    try:
        pids = [int(p) for p in parent.stdout.readline().split()]
        assert len(pids) == 2
        workers = [psutil.Process(pid) for pid in pids]
    finally:
        parent.send_signal(signal.SIGKILL)
        parent.wait()
    assert _gone(workers, timeout=15.0), "workers outlived their killed parent"


def test_workers_without_the_processes_executor_or_below_one_is_a_user_error(tmp_path, capsys):
    from benchmark.cli import main

    suite, store = tmp_path / "proc.yaml", tmp_path / "s.sqlite"
    suite.write_text(yaml.safe_dump(PROC_SUITE, sort_keys=False))
    assert main(["run", str(suite), "--workers", "2", "--store", str(store)]) == 2
    assert "--workers: only means something with --executor processes" in capsys.readouterr().err
    assert main(["run", str(suite), "--executor", "processes", "--workers", "0", "--store", str(store)]) == 2
    assert "--workers: must be at least 1, got 0" in capsys.readouterr().err
    assert not store.exists()
