"""Per-core executor: one single-threaded worker process per usable core, running whole cells.

``tbench run SUITE --executor processes [--workers N]`` keeps ``N`` cells in flight (default: one
per core this process may run on). Workers are spawned once and live for the whole grid, so
each keeps its compiled kernels and pretrained sources warm between cells; two workers that
need the same source model at once take turns on its checkpoint lock (``engine.pretrain``):
one pretrains, the other then loads the checkpoint.

Each worker is confined to its own core *before* JAX starts, so XLA:CPU sizes its intra-op pool
at one thread (worker i on core i, the cores used in turn): one kernel at a time per core, no
thread waiting on another. Why: XLA:CPU runs a step's kernels one after another and most of them
(the elementwise fusions) on one thread, so a second thread buys a small model little; two
single-threaded workers trained 1.48x the images/s of one process using both cores (LeNet width 8,
batch 64, the quick suite's step: 24,300 vs 16,400 images/s, 2-core VM, 2026-12-02), where the
earlier design, a pool of two threads confined to one core, gained nothing (16,500).

Numbers: XLA:CPU's float rounding follows how many threads split a kernel, so a worker computes
what a one-core machine computes, bit for bit, not what a local run on two cores computes (the
same seeds land on other float roundings; ``tests/test_executor_processes.py`` checks both
sides). Every run records its ``intra_op_threads`` in its plan. BLAS / OpenMP / TensorFlow pools
get one thread by environment.

A worker that dies takes the cells then in flight down as ``failed`` runs (retried on the next
``tbench run``: the standard library stops the whole pool), and a new pool runs the next cells.
Workers exit with their parent, even a killed one.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import multiprocessing
import os
import signal
import threading
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from benchmark.cellspec import CellSpec
from benchmark.engine.plan import usable_cores

_ONE_THREAD_ENV = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
                   "TF_NUM_INTRAOP_THREADS": "1", "TF_NUM_INTEROP_THREADS": "1"}
_JOIN_S = 10.0  # how long shutdown waits for a terminated worker before killing it


class ProcessesExecutor:
    """Runs :func:`benchmark.executors.run_group` in ``workers`` spawned single-threaded processes."""

    def __init__(self, *, workers: int | None = None, data_dir: str | None = None,
                 checkpoint_dir: str | None = None):
        if workers is not None and workers < 1:
            from benchmark.errors import UserError

            raise UserError(f"must be at least 1, got {workers}", field="--workers")
        self.slots = workers or usable_cores()
        self.data_dir = data_dir
        self.checkpoint_dir = checkpoint_dir
        self._seeds: dict[concurrent.futures.Future, list[int]] = {}
        self._pool = self._start()

    def _start(self) -> concurrent.futures.ProcessPoolExecutor:
        context = multiprocessing.get_context("spawn")
        cores = sorted(os.sched_getaffinity(0))
        return concurrent.futures.ProcessPoolExecutor(max_workers=self.slots, mp_context=context,
                                                      initializer=_init_worker,
                                                      initargs=(cores, context.Value("i", 0)))

    def submit(self, spec: CellSpec, seeds: list[int]) -> concurrent.futures.Future:
        from benchmark.executors import run_group

        args = (run_group, spec.to_dict(), list(seeds), self.data_dir, self.checkpoint_dir)
        try:
            future = self._pool.submit(*args)
        except BrokenProcessPool:  # a worker died earlier: its cells are already failed; start afresh
            self._stop(self._pool, force=True)
            self._pool = self._start()
            future = self._pool.submit(*args)
        self._seeds[future] = list(seeds)
        return future

    def wait(self, handles: list[concurrent.futures.Future]) -> list[tuple[Any, dict[str, Any]]]:
        from benchmark.executors import environment, failed_result

        done, _ = concurrent.futures.wait(handles, return_when=concurrent.futures.FIRST_COMPLETED)
        out = []
        for future in done:
            seeds = self._seeds.pop(future)
            try:
                payload = future.result()
            except Exception as err:  # the worker died (killed, out of memory): record, go on
                message = f"worker process failed: {type(err).__name__}: {str(err)[:500]}"
                payload = {"results": [failed_result(s, message).to_dict() for s in seeds], **environment()}
            out.append((future, payload))
        return out

    def shutdown(self) -> None:
        """Stop every worker: at once (terminated) when cells are still running, e.g. after Ctrl-C."""
        busy = any(not f.done() for f in self._seeds)
        self._seeds.clear()
        self._stop(self._pool, force=busy)

    @staticmethod
    def _stop(pool: concurrent.futures.ProcessPoolExecutor, *, force: bool) -> None:
        processes = list((pool._processes or {}).values())  # no public handle before Python 3.14
        if force:
            for proc in processes:
                if proc.is_alive():
                    proc.terminate()
        pool.shutdown(wait=True, cancel_futures=True)
        for proc in processes:
            proc.join(_JOIN_S)
            if proc.is_alive():
                proc.kill()
                proc.join()


def _init_worker(cores: list[int], started: Any) -> None:
    """Runs in each spawned worker before any task, so before JAX is imported there."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle: it stops us
    threading.Thread(target=_exit_with_parent, daemon=True, name="exit-with-parent").start()
    os.environ.update(_ONE_THREAD_ENV)
    with started.get_lock():
        core = cores[started.value % len(cores)]
        started.value += 1
    # Every thread of this process, before JAX starts: XLA sizes its pool by the usable cores (one).
    for thread in os.listdir("/proc/self/task"):
        with contextlib.suppress(ProcessLookupError):
            os.sched_setaffinity(int(thread), {core})
    import jax

    jax.devices()  # the backend starts now, with a pool of one thread


def _exit_with_parent() -> None:
    """A killed parent cannot stop its workers: each notices the parent's end and exits."""
    parent = multiprocessing.parent_process()
    if parent is not None:
        parent.join()
        os._exit(1)
