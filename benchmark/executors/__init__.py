"""Where cells run: in-process (``local``), in one single-threaded worker process per core
(``processes``) or on a Ray cluster (``ray``); ``auto`` (the default of ``tbench run``) picks
``processes`` or ``local`` by :func:`choose_executor`.

Executors never change *what* a cell computes, up to float rounding: XLA:CPU's rounding follows
its intra-op thread count (``processes`` workers have one thread; each run records its
``intra_op_threads``). The driver (:func:`run_grid`) walks the grid
cell by cell, leases the cell's unfinished seeds in the store, hands them to the executor as
one ``run_cell`` call, and writes each returned run to the store itself (Ray workers never
touch the store). A heartbeat thread renews the driver's leases while it works.

Lease length: ``TBENCH_LEASE_S`` seconds (default 120); a runner that stops heartbeating for
that long (a dead host) loses its runs to the next runner. A dead runner on the *same* host is
noticed at once (its pid is gone).
"""

from __future__ import annotations

import dataclasses
import functools
import importlib.metadata
import os
import platform
import socket
import threading
import time
import uuid
from collections.abc import Sequence
from typing import Any, Protocol

from benchmark.cellspec import CellSpec
from benchmark.grid import Grid, GridRun, group_by_cell
from benchmark.results import STATUS_DIVERGED, STATUS_FAILED, STATUS_OK, RunResult
from benchmark.store import Store

EXECUTORS = ("auto", "local", "processes", "ray")

PER_CORE_BACKBONES = ("lenet", "convnet")
"""Backbones whose suites ``auto`` runs one single-threaded process per core on a multi-core CPU.
Measured (quick suite, LeNet width 8, 2-core VM, 2026-12-02, README § Speed): XLA:CPU runs a
small model's kernels one after another, mostly on one thread, so two workers outrun one process
using both cores. Larger backbones (ResNet, EfficientNet) are not measured this way: local."""
_VERSIONED = ("transferbench", "jax", "jaxlib", "flax", "optax", "numpy", "tensorflow-datasets",
              "orbax-checkpoint", "ray")


@functools.cache
def environment() -> dict[str, Any]:
    """This process's host and package versions (recorded with every run it computes)."""
    versions = {"python": platform.python_version()}
    for name in _VERSIONED:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return {"host": socket.gethostname(), "versions": versions}


def run_group(spec_dict: dict[str, Any], seeds: Sequence[int], data_dir: str | None = None,
              checkpoint_dir: str | None = None) -> dict[str, Any]:
    """Run one cell's seeds with the engine; never raises for a failing cell.

    Returns ``{"results": [RunResult dict per seed, in ``seeds`` order], "group_wall_s",
    "host", "versions"}`` (``group_wall_s`` − the runs' ``wall_s`` = loading the cell's data);
    an exception becomes a ``failed`` result (with the error) for each seed. Plain data in and
    out, so a Ray worker can run it.
    """
    from benchmark.engine import run_cell
    from benchmark.engine.malloc import keep_freed_buffers

    keep_freed_buffers()  # this process trains: tune glibc before XLA's threads allocate (malloc.py)
    spec = CellSpec.from_dict(spec_dict)
    started = time.perf_counter()
    try:
        results = {int(r.seed): r.to_dict() for r in run_cell(spec, list(seeds), data_dir=data_dir,
                                                                checkpoint_dir=checkpoint_dir)}
        error = "the engine returned no result for this seed"
    except Exception as err:  # a failing cell must not stop the grid
        results, error = {}, f"{type(err).__name__}: {err}"
    out = [results.get(int(s)) or failed_result(s, error).to_dict() for s in seeds]
    return {"results": out, "group_wall_s": time.perf_counter() - started, **environment()}


def failed_result(seed: int, error: str) -> RunResult:
    return RunResult(seed=int(seed), status=STATUS_FAILED, accuracy=None, error=error)


class Executor(Protocol):
    """Runs :func:`run_group` calls somewhere; at most ``slots`` in flight."""

    slots: int

    def submit(self, spec: CellSpec, seeds: list[int]) -> Any: ...

    def wait(self, handles: list[Any]) -> list[tuple[Any, dict[str, Any]]]:
        """Block until at least one handle is done; return (handle, run_group payload) pairs."""
        ...

    def shutdown(self) -> None: ...


class Listener(Protocol):
    """What a progress display is told (``tbench run`` draws it; tests may record it)."""

    def start(self, total: int, finished_before: int) -> None: ...

    def begin(self, spec: CellSpec, seeds: list[int]) -> None: ...

    def finish(self, spec: CellSpec, results: list[RunResult]) -> None: ...


@dataclasses.dataclass
class Summary:
    """What one ``run_grid`` call did, in runs (one run = one cell × seed)."""

    total: int = 0
    ran: int = 0
    ok: int = 0
    diverged: int = 0
    failed: int = 0
    skipped_finished: int = 0
    elsewhere: int = 0  # held by another live runner when this one reached them
    duplicates: int = 0
    skipped_cells: int = 0
    wall_s: float = 0.0
    runs_wall_s: float = 0.0  # sum of the runs' wall_s (includes their compile and pretrain)
    compile_s: float = 0.0
    pretrain_s: float = 0.0  # source pretraining (with its compiles), charged to the first user
    data_s: float = 0.0  # loading / preparing the cells' datasets, outside the runs
    errors: list[str] = dataclasses.field(default_factory=list)


MIN_CELLS_PER_WORKER = 4
"""``auto`` starts workers only for grids of at least this many cells per core."""


def choose_executor(backbones: set[str], cells: int, *, cores: int, backend: str) -> tuple[str, str]:
    """``(executor, why)`` for ``--executor auto``: ``processes`` when every backbone of the grid
    is a small one (``PER_CORE_BACKBONES``), the backend is the CPU with at least two usable cores
    and the grid has ``MIN_CELLS_PER_WORKER`` cells per core; ``local`` otherwise."""
    if backend != "cpu":
        return "local", f"the {backend} backend runs one cell at a time in this process"
    if cores < 2:
        return "local", "one usable core"
    if cells < MIN_CELLS_PER_WORKER * cores:
        return "local", (f"{cells} cell(s): fewer than {MIN_CELLS_PER_WORKER} per core pay for starting a "
                         "worker process per core (Python, JAX, its own data and kernels)")
    large = sorted(backbones - set(PER_CORE_BACKBONES))
    if large:
        return "local", f"{', '.join(large)} is not a small backbone ({', '.join(PER_CORE_BACKBONES)})"
    return "processes", (f"{cores} single-threaded workers, one per core: faster than one process "
                         f"using {cores} cores for small backbones on the CPU")


def choose_for_grid(grid: Grid) -> tuple[str, str]:
    """:func:`choose_executor` for ``grid`` on this process's usable cores and JAX's default
    backend (this starts JAX in the calling process)."""
    import jax

    from benchmark.engine.plan import usable_cores

    return choose_executor({r.spec.backbone for r in grid.runs}, len(group_by_cell(grid.runs)),
                           cores=usable_cores(), backend=jax.default_backend())


def make_executor(name: str, *, address: str | None = None, data_dir: str | None = None,
                  workers: int | None = None) -> Executor:
    if name == "local":
        from benchmark.executors.local import LocalExecutor

        return LocalExecutor(data_dir=data_dir)
    if name == "processes":
        from benchmark.executors.processes import ProcessesExecutor

        return ProcessesExecutor(workers=workers, data_dir=data_dir)
    if name == "ray":
        from benchmark.executors.ray_executor import RayExecutor

        return RayExecutor(address=address, data_dir=data_dir)
    from benchmark.errors import UserError

    raise UserError(f"unknown executor {name!r}; choose one of {', '.join(EXECUTORS)}", field="--executor")


def lease_seconds() -> float:
    return float(os.environ.get("TBENCH_LEASE_S", "120"))


def run_grid(grid: Grid, store: Store, executor: Executor, *, listener: Listener | None = None,
             max_cells: int | None = None) -> Summary:
    """Run every unfinished run of ``grid`` that no live runner holds; write each to ``store``."""
    lease_s = lease_seconds()
    owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
    started = time.monotonic()
    summary = Summary(total=len(grid.runs), skipped_cells=len(grid.skipped))
    finished = store.finished_ids()
    summary.skipped_finished = sum(r.run_id in finished for r in grid.runs)
    if listener:
        listener.start(summary.total, summary.skipped_finished)
    stop = threading.Event()
    beat = threading.Thread(target=_heartbeat, args=(store, owner, lease_s, stop), daemon=True)
    beat.start()
    pending: dict[Any, tuple[CellSpec, list[GridRun]]] = {}
    cells_started = 0
    try:
        for spec, runs in group_by_cell(grid.runs):
            todo = [r for r in runs if r.run_id not in finished]
            if not todo:
                continue
            if max_cells is not None and cells_started >= max_cells:
                break
            while len(pending) >= executor.slots:
                _collect(executor, pending, store, grid, owner, summary, listener)
            claimed = set(store.claim([r.run_id for r in todo], owner, lease_s=lease_s))
            summary.elsewhere += len(todo) - len(claimed)
            mine = [r for r in todo if r.run_id in claimed]
            if not mine:
                continue
            cells_started += 1
            if listener:
                listener.begin(spec, [r.seed for r in mine])
            pending[executor.submit(spec, [r.seed for r in mine])] = (spec, mine)
        while pending:
            _collect(executor, pending, store, grid, owner, summary, listener)
    finally:
        stop.set()
        beat.join()
        store.release(owner)
        executor.shutdown()
    summary.wall_s = time.monotonic() - started
    return summary


def _heartbeat(store: Store, owner: str, lease_s: float, stop: threading.Event) -> None:
    while not stop.wait(max(0.2, lease_s / 4)):
        store.heartbeat(owner, lease_s=lease_s)


def _collect(executor: Executor, pending: dict, store: Store, grid: Grid, owner: str,
             summary: Summary, listener: Listener | None) -> None:
    for handle, payload in executor.wait(list(pending)):
        spec, runs = pending.pop(handle)
        results = [RunResult.from_dict(d) for d in payload["results"]]
        runs_wall = sum(r.wall_s for r in results)
        summary.runs_wall_s += runs_wall
        summary.compile_s += sum(r.compile_s for r in results)
        summary.pretrain_s += sum(r.pretrain_s for r in results)
        summary.data_s += max(0.0, payload.get("group_wall_s", runs_wall) - runs_wall)
        for run, result in zip(runs, results, strict=True):
            if not store.record(run_id=run.run_id, cell_id=run.cell_id, suite=grid.suite.name,
                                spec=spec, result=result, host=payload["host"],
                                versions=payload["versions"], owner=owner):
                summary.duplicates += 1  # finished meanwhile by another runner: discarded
                continue
            summary.ran += 1
            if result.status == STATUS_OK:
                summary.ok += 1
            elif result.status == STATUS_DIVERGED:
                summary.diverged += 1
            else:
                summary.failed += 1
                if result.error and len(summary.errors) < 5:
                    summary.errors.append(f"{spec.strategy_label} {spec.source}→{spec.target} "
                                          f"budget {spec.labels_per_class} seed {run.seed}: {result.error}")
        if listener:
            listener.finish(spec, results)

