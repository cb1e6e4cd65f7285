"""How a run executes on this backend: steps per compiled chunk, scan unroll, padding.

All execution choices live here, with the measurements that justify them. A plan never changes
*what* a run computes, only how it is dispatched: the fast plan and the simple plan (one jitted
step per Python iteration, the Flax-tutorial loop) agree to float32 rounding
(``tests/test_engine.py::test_fast_plan_matches_simple_plan``).

Measured on XLA:CPU (2 cores, jax 0.10.2) on 2026-11-23, while other jobs kept the load
average at 2–6: ``TBENCH_JAX_CACHE_DIR=$(mktemp -d) python tools/measure_engine.py plans
--width W --batch B`` in fresh processes, three processes per malloc setting, alternating
(``TBENCH_MALLOC=default`` for glibc's defaults, see ``benchmark/engine/malloc.py``). Images/s
swing ±50% between processes with the load, so throughput is given relative to the simple plan
in the same process (interleaved trials; median of the three processes' ratios), with the
compile seconds of one chunk kernel (median) and the minor page faults per step:

===================  =====================================  =====================================
                     width 8, batch 64 (the quick suite)    width 16, batch 128 (``tbench bench``)
plan                 malloc tuned      glibc default        malloc tuned      glibc default
===================  =================  ==================  =================  ==================
simple (chunk 1)     1.00, 2.7 s, 0     1.00, 3.3 s, 0      1.00, 3.2 s, 0–1.6k 1.00, 2.8 s, 17.5k
chunk 2 (then)       1.02, 3.8 s, 0     1.05, 3.6 s, 0      1.04, 4.5 s, 0–1.1k 1.05, 3.6 s, 14.9k
chunk 4              1.18, 5.7 s, 0     0.88, 5.1 s, 3.4k   1.04, 6.9 s, 0–0.6k 1.18, 6.6 s, 13.4k
chunk 8              1.07, 8.1 s, 0     0.93, 7.1 s, 3.2k   0.96, 9.9 s, 2–4.5k 1.24, 10.6 s, 12.7k
===================  =================  ==================  =================  ==================

The malloc setting itself, same plan in alternating processes: width 16, batch 128, medians
1,780 vs 1,256 images/s at chunk 2 (1,779 vs 1,200 simple; every round tuned > default by
1.36–1.76×); width 8, batch 64, chunk 2 (no faults either way): 2,709 vs 2,670 (4 pairs,
ratios 0.99–1.07). Faults come from temp buffers above glibc's thread-arena limit (chunk 1:
17 MB at width 8, 69 MB at width 16; chunk 8: 101 MB / ~400 MB), so it is kept on.

Chunk size, before the model change below: a chunk of k unrolled steps compiled in ~1.4 k + 2 s
and ran within ±5–18% of the simple loop, so chunk 2 (unrolled) was chosen; a rolled XLA:CPU
while-loop around conv steps was 4–5× slower than a Python loop (595–608 vs 2,517–3,073 images/s
at width 16: ``lax.conv`` inside a loop body falls off the fast path).

Since the CNN blocks compute their convolutions as slices and one matmul and pool by reshape
(``benchmark.models.lenet.conv_as_matmul`` / ``max_pool_2x2``), a rolled loop is as fast as an
unrolled one and its compile time does not grow with the chunk. Same command, 2026-11-23, quiet
machine (load < 2), two fresh processes per shape, images/s (compile s of one chunk kernel):

=====================  =========================  =========================
plan                   width 16, batch 128        width 8, batch 64
=====================  =========================  =========================
simple (chunk 1)       3,126 / 3,571 (2.5–2.8)    4,734 / 4,631 (2.7–3.0)
chunk 2, unroll 2      3,265 / 3,814 (3.1–3.2)    5,311 / 5,383 (3.2–3.3)
chunk 4, unroll 4      3,001 / 4,030 (4.5–5.2)    5,711 / 5,399 (5.1–5.4)
chunk 8, unroll 8      3,269 / 4,009 (7.5–8.7)    5,639 / 6,051 (7.6–7.8)
chunk 8, rolled        2,850 / 3,860 (3.1–3.2)    5,757 / 5,287 (2.7–2.8)
chunk 16, rolled       2,804 / 4,000 (3.2–3.3)    5,559 / 5,701 (3.0–3.1)
chunk 32, rolled       2,968 / 3,862 (2.9–3.0)    5,181 / 5,749 (2.7–3.1)
=====================  =========================  =========================

Throughput differences between plans are within the process-to-process noise; compile time is
not: unrolled chunks cost ~1.4 s per step, rolled ones ~3 s whatever their length. The CPU plan
is now a rolled chunk of 8: chunk 2's compile cost, a quarter of its host round trips, and no
wasted tail steps for the step counts suites use (multiples of 8 or 10 waste at most 7 steps).
``docs/architecture.md`` § Engine measurements also has ``vmap`` over 4 seeds at ~6× slower per
seed than one seed (batched convs become grouped convs): ``run_cell`` runs a cell's seeds one
after another on every backend (batching them on accelerators is not measured yet).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from benchmark.errors import UserError


@dataclasses.dataclass(frozen=True)
class Plan:
    """name: "fast" or "simple"; chunk_steps: steps per compiled call; unroll: ``lax.scan`` unroll;
    pad_examples: pad every training array along axis 0 to the target train split's size (real
    counts passed as traced scalars), so one compiled kernel serves every label budget
    (``benchmark.engine.train.Trainer``); off, every distinct array length compiles anew."""

    name: str
    chunk_steps: int
    unroll: int
    pad_examples: bool = True

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


SIMPLE = Plan("simple", chunk_steps=1, unroll=1, pad_examples=False)
"""One jitted step per Python iteration on the unpadded arrays: the reference the fast plan is
checked against."""

_FAST = {
    # A rolled chunk of 8 steps: see the module docstring for the numbers.
    "cpu": Plan("fast", chunk_steps=8, unroll=1),
    # Accelerators: a rolled scan keeps compile time flat while amortising dispatch.
    "gpu": Plan("fast", chunk_steps=50, unroll=1),
    "tpu": Plan("fast", chunk_steps=50, unroll=1),
}


def choose(backend: str, force: str | Plan | None = None) -> Plan:
    """The plan for ``backend`` ("cpu", "gpu", "tpu").

    ``force`` (or the environment variable ``TBENCH_PLAN``) may be "simple" or "fast", or a
    :class:`Plan` to run exactly that.
    """
    if isinstance(force, Plan):
        return force
    choice = force or os.environ.get("TBENCH_PLAN") or "fast"
    if choice == "simple":
        return SIMPLE
    if choice != "fast":
        raise UserError(f"unknown plan {choice!r} (TBENCH_PLAN); use 'fast' or 'simple'")
    return _FAST.get(backend, _FAST["gpu"])
