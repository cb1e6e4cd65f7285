"""How a run executes on this backend: steps per compiled chunk, scan unroll, seeds batched or not.

All execution choices live here, with the measurements that justify them. A plan never changes
*what* a run computes, only how it is dispatched: the fast plan and the simple plan (one jitted
step per Python iteration, the Flax-tutorial loop) agree to float32 rounding
(``tests/test_engine.py::test_fast_plan_matches_simple_plan``).

Measured on XLA:CPU (2 cores, jax 0.10.2), interleaved trials, medians (range), compile
excluded; rerun with ``python -m benchmark.engine.measure plans`` (LeNet width 16, 28×28×1,
batch 128, SGD momentum) and ``... plans --width 4 --batch 32 --steps 128`` (the test config):

==============================  ====================  =====================
plan                            width 16, batch 128   width 4, batch 32
==============================  ====================  =====================
simple: jitted step, Python     2,517 (1,672–2,704)   8,407 (7,659–8,873)
chunk 8, unroll 8 (chosen)      2,722 (1,893–3,200)   9,840 (9,332–10,999)
chunk 16, unroll 16             3,073 (3,032–3,104)   8,660 (7,634–10,216)
chunk 16, unroll 8              595 (571–614)         6,619 (6,236–6,986)
chunk 32, unroll 4              606 (605–621)         6,983 (6,282–7,023)
chunk 16, rolled scan           608 (591–618)         6,463 (6,254–6,713)
==============================  ====================  =====================

Any XLA:CPU while-loop around conv steps (chunk > unroll) is 4–5× slower than a Python loop
(convolutions inside the loop body fall off the fast path; DESIGN.md saw 10× with a wider
LeNet), so a CPU chunk is fully unrolled. 16 steps unrolled is within noise of 8 but
compiles in 8.3 s instead of 5.3 s (6.4 vs 3.9 s for the test config), so 8. DESIGN.md also
measured ``vmap`` over 4 seeds at ~6× slower per seed than one seed (batched convs become
grouped convs): seeds run one after another on CPU (and, not measured yet, on accelerators too).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any

from benchmark.errors import UserError


@dataclasses.dataclass(frozen=True)
class Plan:
    """name: "fast" or "simple"; chunk_steps: steps per compiled call; unroll: ``lax.scan`` unroll."""

    name: str
    chunk_steps: int
    unroll: int
    seeds: str = "sequential"

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


SIMPLE = Plan("simple", chunk_steps=1, unroll=1)
"""One jitted step per Python iteration: the reference the fast plan is checked against."""

_FAST = {
    # Fully unrolled chunks of 8 steps: see the module docstring for the numbers.
    "cpu": Plan("fast", chunk_steps=8, unroll=8),
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
