"""The per-core executor: what a one-core local run computes (each worker confined to its own
core before JAX starts, so its kernels run on one thread), one pretraining per source shared by
two workers through the checkpoint lock, a killed worker's cell failed and the next one run, and
no worker left behind by a shutdown, Ctrl-C or a killed parent."""

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


ONE_CORE_LOCAL = """
import json, os, sys
os.sched_setaffinity(0, {{min(os.sched_getaffinity(0))}})  # before JAX starts: a pool of one thread
sys.path.insert(0, {tests!r})
from test_executor_processes import PROC_SUITE
from benchmark.config import resolve_suite
from benchmark.executors import run_grid
from benchmark.executors.local import LocalExecutor
from benchmark.grid import build_grid
from benchmark.store import Store
grid = build_grid(resolve_suite(PROC_SUITE, file="proc.yaml"))
s = run_grid(grid, Store({store!r}), LocalExecutor(checkpoint_dir={ckpt!r}))
print(json.dumps([s.ok, s.diverged]))
"""


def _one_core_local_run(tmp_path: Path) -> tuple[Store, list[int]]:
    """The grid run by the local executor in a process confined to one core (a one-core machine)."""
    script = ONE_CORE_LOCAL.format(tests=str(Path(__file__).parent), store=str(tmp_path / "local.sqlite"),
                                   ckpt=str(tmp_path / "local"))
    out = subprocess.run([sys.executable, "-c", script], check=True, capture_output=True, text=True, timeout=600)
    return Store(tmp_path / "local.sqlite"), json.loads(out.stdout.strip().splitlines()[-1])


def test_processes_match_local_pretrain_each_source_once_and_leave_no_worker(tmp_path):
    grid = build_grid(resolve_suite(PROC_SUITE, file="proc.yaml"))
    assert len(grid.runs) == 4
    proc_store = Store(tmp_path / "proc.sqlite")
    local_store, (local_ok, local_diverged) = _one_core_local_run(tmp_path)
    executor = ProcessesExecutor(workers=2, checkpoint_dir=str(tmp_path / "shared"))
    assert executor.slots == 2
    listener = _Workers(executor)
    summary = run_grid(grid, proc_store, executor, listener=listener)
    assert (summary.ran, summary.failed, summary.ok, summary.diverged) == (4, 0, local_ok, local_diverged), \
        summary.errors
    local_runs = local_store.runs_frame().set_index("run_id").sort_index()
    proc_runs = proc_store.runs_frame().set_index("run_id").sort_index()
    assert list(proc_runs.index) == list(local_runs.index) == sorted(r.run_id for r in grid.runs)
    for column in ("status", "accuracy", "diverged_step"):  # bit-identical: same seeds, kernels, threads
        assert proc_runs[column].fillna(-1).tolist() == local_runs[column].fillna(-1).tolist(), column
    assert {plan["intra_op_threads"] for plan in proc_runs["plan"]} == {1}
    # Each seed's source was pretrained by one worker; the other waited on the lock and loaded it.
    pretrained = proc_runs.assign(trained=proc_runs["pretrain_s"] > 0).groupby("seed")["trained"].sum()
    assert pretrained.to_dict() == {0: 1, 1: 1}
    shared, alone = _checkpoints(tmp_path / "shared"), _checkpoints(tmp_path / "local")
    assert len(shared) == 2, f"one checkpoint per seed and no half-written leftovers, got {sorted(shared)}"
    assert shared == alone, "the workers pretrained other parameters than a one-core local run"
    assert len(listener.seen) == 2 and os.getpid() not in listener.seen
    assert _gone(list(listener.seen.values())), "run_grid's shutdown left worker processes running"
    assert not _spawned_children()


def _checkpoints(directory: Path) -> dict[str, str]:
    """Each entry of a checkpoint directory (any folder, leftovers included) -> its parameters' SHA-256."""
    return {p.name: json.loads((p / "meta.json").read_text())["sha256"] if (p / "meta.json").exists() else ""
            for p in directory.iterdir() if p.is_dir()}


def _split_probe() -> dict:
    """Sums whose float rounding follows how XLA:CPU splits their work over its threads (measured:
    a pool of one thread gives other bits than a pool of two, for both), and this process's cores."""
    import jax
    import numpy as np

    values = np.random.default_rng(0).standard_normal(1 << 20, np.float32)
    return {"sums": [np.asarray(jax.jit(lambda v: v.sum())(values)).tobytes().hex(),
                     np.asarray(jax.jit(lambda v: v.reshape(1024, 1024).sum(0))(values)).tobytes().hex()],
            "cores": sorted(os.sched_getaffinity(0))}


ONE_CORE_PROBE = """
import json, os, sys
os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
sys.path.insert(0, %r)
from test_executor_processes import _split_probe
print(json.dumps(_split_probe()))
"""


def test_workers_compute_what_a_one_core_process_computes_each_on_its_own_core():
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
    out = subprocess.run([sys.executable, "-c", ONE_CORE_PROBE % str(Path(__file__).parent)],
                         check=True, capture_output=True, text=True, timeout=300)
    one_core = json.loads(out.stdout.strip().splitlines()[-1])
    assert all(r["sums"] == one_core["sums"] for r in results), "a worker split its kernels otherwise"
    assert all(len(r["cores"]) == 1 for r in results), "a worker's JAX started on more than one core"
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
    assert main(["run", str(suite), "--executor", "local", "--workers", "2", "--store", str(store)]) == 2
    assert "--workers: only means something with --executor processes" in capsys.readouterr().err
    assert main(["run", str(suite), "--executor", "processes", "--workers", "0", "--store", str(store)]) == 2
    assert "--workers: must be at least 1, got 0" in capsys.readouterr().err
    assert not store.exists()


def test_auto_runs_small_backbones_one_process_per_core_only_where_that_pays():
    from benchmark.executors import MIN_CELLS_PER_WORKER, choose_executor

    many = MIN_CELLS_PER_WORKER * 2
    assert choose_executor({"lenet"}, many, cores=2, backend="cpu")[0] == "processes"
    assert choose_executor({"lenet", "convnet"}, many, cores=2, backend="cpu")[0] == "processes"
    name, why = choose_executor({"lenet"}, many - 1, cores=2, backend="cpu")
    assert name == "local" and f"{many - 1} cell(s)" in why
    assert choose_executor({"lenet"}, many, cores=1, backend="cpu") == ("local", "one usable core")
    name, why = choose_executor({"lenet", "efficientnet_lite0"}, many, cores=2, backend="cpu")
    assert name == "local" and "efficientnet_lite0" in why
    assert choose_executor({"lenet"}, many, cores=2, backend="gpu")[0] == "local"


def test_tbench_run_says_which_executor_auto_chose_and_why(tmp_path, capsys):
    from benchmark.cli import main

    suite = tmp_path / "one.yaml"
    suite.write_text(yaml.safe_dump({**PROC_SUITE, "name": "one", "seeds": 1,
                                     "strategies": ["scratch"]}))
    assert main(["run", str(suite), "--store", str(tmp_path / "one.sqlite"), "--quiet", "--no-measures"]) == 0
    out = capsys.readouterr().out
    assert "executor: local (1 cell(s): fewer than 4 per core" in out or "executor: local (one usable core" in out, out
