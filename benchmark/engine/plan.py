"""How a run executes on this backend: steps per compiled chunk, scan unroll, seeds batched or not.

All execution choices live here, with the measurements that justify them. A plan never changes
*what* a run computes, only how it is dispatched: the fast plan and the simple plan (one jitted
step per Python iteration, the Flax-tutorial loop) agree to float32 rounding
(``tests/test_engine.py::test_fast_plan_matches_simple_plan``).

Measured on XLA:CPU (2 cores, jax 0.10.2; DESIGN.md § Engine and ``python -m
benchmark.engine.measure plans``), LeNet, 28×28×1, batch 128:

* Python loop of jitted steps: ~220–370 images/s.
* Whole epoch in one ``jit`` with a rolled ``lax.scan``: ~20 images/s — convolutions inside an
  XLA:CPU while-loop fall off the fast path (10× slower).
* ``lax.scan(..., unroll=8)``: ~310–450 images/s: the steps are inlined, and the host is
  touched once per chunk instead of once per step.
* ``vmap`` over 4 seeds: ~65 images/s summed (batched convs become grouped convs): on CPU seeds
  run one after another.

So on CPU a chunk is fully unrolled (``chunk_steps == unroll``); on GPU/TPU the dispatch
overhead dominates small models and a long rolled scan is the usual choice.
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
