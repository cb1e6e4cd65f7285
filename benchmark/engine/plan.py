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

Seed batching (``batch_seeds``: a cell's seeds in lock-step, their matching train calls as one
``vmap`` of the chunk kernel, ``benchmark.engine.seed_batch``). ``docs/architecture.md`` § Engine
measurements has ``vmap`` over 4 seeds at ~6× slower per seed when convolutions were
``lax.conv`` (batched convs become grouped convs). With slices + matmul, 2026-12-02, XLA:CPU
(2 cores, jax 0.10.2), chunk 8 rolled, other jobs running: the ``engine_seeds`` and
``engine_seeds_batched`` trials of ``tbench bench``'s step section (``benchmark.bench.step``),
interleaved, one fresh process per row (``TBENCH_JAX_CACHE_DIR=$(mktemp -d) python -c "from
benchmark.bench import step, timing; t = step.build(step.StepConfig(width=8, batch_size=64,
steps=64, seeds=2))['trials']; print(timing.interleave({k: t[k] for k in ('engine_seeds',
'engine_seeds_batched')}, repeats=15))"``). Images/s summed over seeds (medians), and the median
of the per-round ratios batched ÷ sequential:

===================  =====  ========  ===============  =============  ===========  ==========
shape                seeds  rounds    load average     sequential     batched      ratio
===================  =====  ========  ===============  =============  ===========  ==========
width 8, batch 64    2      15 × 64   3.6              7,275          6,558        0.95
width 8, batch 64    3      11 × 64   3.1              9,595          8,495        0.91
width 8, batch 64    4      11 × 64   3.0              12,552         11,929       0.94
width 8, batch 64    5      9 × 64    5.7              6,397          5,185        0.87
width 16, batch 128  2      15 × 32   2.2              7,000          6,004        0.85
width 16, batch 128  4      11 × 32   2.4              7,423          6,159        0.92
width 16, batch 128  5      9 × 32    5.9              3,825          3,040        0.78
===================  =====  ========  ===============  =============  ===========  ==========

Under a load of 6–8 the same shapes gave ratios 0.64–0.89; ``tbench bench --quick --only step``
(width 16, batch 128, 2 seeds, 3 rounds × 16 steps, load 4.6–5.6) gave 1.01, and the step section
at width 8, batch 64 (7 rounds × 64 steps, load 2–5) 0.90 for 2 seeds and 1.13 for 4: within
the noise at best, never a clear win. The vmapped kernel compiles in about the time of the
sequential one (first call 7.3–7.9 s vs 6.0–7.0 s at width 8), and a process that batches also
compiles the sequential kernel (one seed, calls that do not match). Not profiled further: the
arithmetic per seed is the same, and the host dispatch batching saves is already amortised by a
rolled chunk of 8. So ``batch_seeds`` is off on CPU for every model (``_BATCH_SEEDS`` lists none), and off on
accelerators until measured there: ``TBENCH_BATCH_SEEDS=1`` turns it on for such a check
(``tbench bench`` records the choice and its reason in the step section's ``plan``).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping
from typing import Any

from benchmark.errors import UserError


@dataclasses.dataclass(frozen=True)
class Plan:
    """name: "fast" or "simple"; chunk_steps: steps per compiled call; unroll: ``lax.scan`` unroll;
    pad_examples: pad every training array along axis 0 to the target train split's size (real
    counts passed as traced scalars), so one compiled kernel serves every label budget
    (``benchmark.engine.train.Trainer``); off, every distinct array length compiles anew.
    batch_seeds: ``run_cell`` trains a cell's seeds in lock-step, their matching ``train`` calls in
    one vmapped chunk (``benchmark.engine.seed_batch``); off, one seed after another."""

    name: str
    chunk_steps: int
    unroll: int
    pad_examples: bool = True
    batch_seeds: bool = False

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


BATCH_SEEDS_ENV = "TBENCH_BATCH_SEEDS"

_BATCH_SEEDS: dict[str, int] = {}
"""backend → the largest LeNet width whose seeds are batched there (measured faster, see the
module docstring); a backend or model not listed runs its seeds one after another."""

_NOT_BATCHED = {"cpu": "measured slower on cpu (0.78-0.95x the images/s of one seed after another)"}
"""Why a backend that ``_BATCH_SEEDS`` does not list runs its seeds one after another."""


def usable_cores() -> int:
    """Cores this process may run on (its affinity where the OS has one, else every core): on
    CPU, the size of the intra-op thread pool XLA starts with."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS
        return os.cpu_count() or 1


def batch_seeds(backend: str, model: tuple[str, Mapping[str, Any]] | None = None) -> tuple[bool, str]:
    """``(on, why)``: whether ``run_cell`` trains a cell's seeds in lock-step on ``backend`` for
    ``model`` (``(backbone, backbone_params)``; ``None``: no model known). The environment variable
    ``TBENCH_BATCH_SEEDS=1`` / ``0`` overrides the measured choice (an accelerator check)."""
    env = os.environ.get(BATCH_SEEDS_ENV, "").strip()
    if env:
        if env not in ("0", "1"):
            raise UserError(f"{BATCH_SEEDS_ENV}={env!r}: use 1 (batch a cell's seeds) or 0 (one after another)")
        return env == "1", f"{BATCH_SEEDS_ENV}={env} (set in the environment)"
    limit = _BATCH_SEEDS.get(backend)
    if limit is None:
        why = _NOT_BATCHED.get(backend, f"not measured on {backend} yet")
        return False, f"{why}: seeds run one after another ({BATCH_SEEDS_ENV}=1 turns batching on)"
    if model is None or model[0] != "lenet" or int(model[1].get("width", 0)) > limit:
        return False, f"measured faster on {backend} only for LeNet up to width {limit}"
    return True, f"measured faster on {backend} for LeNet up to width {limit}"


def choose(backend: str, force: str | Plan | None = None, *,
           model: tuple[str, Mapping[str, Any]] | None = None) -> Plan:
    """The plan for ``backend`` ("cpu", "gpu", "tpu") and ``model`` (``(backbone,
    backbone_params)``, which decides ``batch_seeds``: :func:`batch_seeds`).

    ``force`` (or the environment variable ``TBENCH_PLAN``) may be "simple" or "fast", or a
    :class:`Plan` to run exactly that.
    """
    if isinstance(force, Plan):
        return force
    choice = force or os.environ.get("TBENCH_PLAN") or "fast"
    if choice == "simple":
        plan = SIMPLE
    elif choice == "fast":
        plan = _FAST.get(backend, _FAST["gpu"])
    else:
        raise UserError(f"unknown plan {choice!r} (TBENCH_PLAN); use 'fast' or 'simple'")
    on, _ = batch_seeds(backend, model)
    return dataclasses.replace(plan, batch_seeds=True) if on else plan
