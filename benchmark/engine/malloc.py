"""Keep XLA:CPU's per-execution buffers mapped: glibc ``mallopt``, called by whoever trains.

XLA:CPU allocates each execution's temporary buffer with ``malloc`` on its worker threads and
frees it when the execution ends. Above a few tens of MB (an unrolled chunk of a LeNet step:
~100 MB for 8 steps at width 8, batch 64) glibc serves that from a fresh ``mmap`` (a thread
arena's heap is at most 64 MB) and returns it with ``munmap``, so every chunk faults its
pages in again (~3,200 minor faults per training step, ``perf`` showed ~37% of the engine's
samples in the kernel's page-fault path). One arena (``M_ARENA_MAX=1``) with high mmap and
trim thresholds makes glibc reuse the freed block instead (0 faults per step). Measured in
``benchmark/engine/plan.py``'s table; ``TBENCH_MALLOC=default`` leaves glibc's defaults (the A/B).

Nothing calls it on import: a process that is about to train calls :func:`keep_freed_buffers`
before its first XLA execution (the arena limit binds only threads that have not allocated
yet): ``benchmark.executors.run_group`` (every executor, so ``tbench run`` / ``tbench reproduce``
and Ray workers), ``benchmark.measures.pair_measures`` (``tbench gap``), the ``tbench bench``
runner and worker, and the scripts under ``tools/``. Library users who call ``run_cell``
directly may call it too.

Process-wide and best effort: on a non-glibc platform, or if a setting is refused, nothing
changes. The price: freed memory stays with the process instead of going back to the OS, and
blocks of different sizes fragment the one heap (``tools/measure_engine.py plans`` at width 16,
four plans' temp buffers of 68–400 MB in one process: peak RSS 1.8–2.2 GB instead of 1.1 GB).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
M_ARENA_MAX = -8
THRESHOLD = 1 << 30

_applied: bool | None = None


def keep_freed_buffers() -> bool:
    """Apply the settings once per process; True if glibc accepted all three."""
    global _applied
    if _applied is not None:
        return _applied
    _applied = False
    if os.environ.get("TBENCH_MALLOC", "").lower() == "default" or not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt
    except (OSError, AttributeError):  # not glibc (musl has no mallopt)
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    # The arena limit first: threads that have not allocated yet (XLA's, created when the
    # backend starts) then share the main arena, which grows with brk and keeps what is freed.
    _applied = all(mallopt(option, value) == 1 for option, value in
                   [(M_ARENA_MAX, 1), (M_MMAP_THRESHOLD, THRESHOLD), (M_TRIM_THRESHOLD, THRESHOLD)])
    return _applied
