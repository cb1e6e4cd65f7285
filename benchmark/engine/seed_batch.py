"""A cell's seeds in lock-step: their matching ``Trainer.train`` calls run as one vmapped chunk.

``run_seeds(spec, seeds, data, plan=...)`` (what ``run_cell`` calls when ``plan.batch_seeds``)
runs each seed's ``run_seed`` in a thread of its own, one thread at a time: a turn passes between
them, so everything but training (budgets, source models, features, evaluation, caches on disk)
runs as it does sequentially, never concurrently, and no strategy hook changes. Each thread's
``Trainer.train`` calls come here (``train.ROUTER``): a call is prepared in its seed's thread
(padding, optimiser state: ``train.TrainCall``) and parks. When every seed still running has
parked, the largest group of calls with equal ``TrainCall.signature()`` (same loss, label rule,
model, static hyper-parameters, plan, step range, and pytree structure, shapes and dtypes of
state, data, key and dynamic hyper-parameters; ties: the group of the lowest seed) runs as
``jax.vmap`` of the same chunk kernel over a new leading seed axis (state, data, key and dynamic
hyper-parameters batched, step bounds shared; a data array equal in every seed is passed once).
Each seed keeps the host loop's bookkeeping of ``Trainer.train`` (``train.HostLoop``: history,
divergence watch): a seed that diverges keeps the state of the chunk where it stopped, as
sequentially, and the others go on. A group of one runs alone, exactly as ``Trainer.train``.
The group's seeds then continue, one at a time, to their next call or their end; the other
parked calls wait for the next round (where they may meet calls that match them).

Never a deadlock: every round runs at least one call, and a seed that returns or raises leaves
the lock-step. An exception in one seed stops the others at their next ``train`` call (run
sequentially, they would not have run) and ``run_seeds`` raises it. A batched kernel that fails
(say, out of memory for the stacked state) runs its calls one by one instead. A watchdog: a
thread that has waited ``timeout_s`` with no progress anywhere turns the lock-step off, and the
seeds finish unbatched, concurrently.

Same numbers: per-seed keys, data and hyper-parameters are those of the sequential run, so the
results agree to float rounding (a vmapped matmul may sum in another order):
``tests/test_seed_batch.py``. Whether it is faster is measured per backend and model size in
``benchmark/engine/plan.py``.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import jax
import jax.numpy as jnp
import numpy as np

from benchmark.cellspec import CellSpec
from benchmark.engine.plan import Plan
from benchmark.engine.run import CellData, run_seed
from benchmark.engine.train import ROUTER, HostLoop, TrainCall, _compiled, run_call
from benchmark.results import RunResult
from benchmark.strategies.base import FitResult

log = logging.getLogger(__name__)

T = TypeVar("T")

TIMEOUT_S = 1800.0
"""Seconds a waiting seed tolerates with no progress anywhere before the lock-step is abandoned."""

SHARE_MIN_SIZE = 1 << 16
"""Data arrays of at least this many elements that are equal in every seed are passed once
(unbatched) instead of stacked; smaller ones are stacked without comparing."""


def run_seeds(spec: CellSpec, seeds: Sequence[int], data: CellData, *, plan: Plan,
              checkpoint_dir: str | os.PathLike | None = None, timeout_s: float = TIMEOUT_S) -> list[RunResult]:
    """``run_seed`` for every seed (distinct) in lock-step (see the module docstring); results in
    the order of ``seeds``.

    Turns go in ascending seed order, so every process takes the per-seed locks of
    ``benchmark.engine.pretrain`` (held while a source model pretrains, which parks) in one order:
    no lock cycle between processes. Each result's ``plan`` records ``seed_batch``: how many of its
    train calls ran batched with other seeds and how many alone. Its ``wall_s`` spans its own
    thread's run, training shared with the other seeds included; the batched kernel's compile time
    is charged to the round's lowest seed (``compile_s``), as the first seed pays it sequentially.
    """
    order = sorted(range(len(seeds)), key=lambda k: seeds[k])
    lockstep = LockStep(len(seeds), timeout_s)
    outs = lockstep.run([functools.partial(run_seed, spec, seeds[k], data, plan=plan, checkpoint_dir=checkpoint_dir)
                         for k in order])
    results: list[RunResult | None] = [None] * len(seeds)
    for k, (result, _), (batched, alone) in zip(order, outs, lockstep.calls, strict=True):
        result.plan = {**result.plan, "seed_batch": {"seeds": len(seeds), "calls_batched": batched,
                                                     "calls_alone": alone}}
        results[k] = result
    return results


class _Cancelled(Exception):
    """Another seed raised: this one stops at its next train call."""


@dataclasses.dataclass(eq=False)
class _Parked:
    """One seed's train call waiting for its round. role: None (waiting), "solo" (runs it in its
    own thread), "lead" (runs ``group`` batched), "member" (in a group another thread runs)."""

    seed: int
    call: TrainCall
    signature: tuple
    role: str | None = None
    group: list[_Parked] = dataclasses.field(default_factory=list)
    result: FitResult | BaseException | None = None
    done: bool = False
    batched: bool = True


class LockStep:
    """Runs ``count`` zero-argument functions in threads, one at a time, batching their train calls.

    ``calls[i]``: ``[train calls of function i run batched, run alone]``; ``rounds``: the group
    size of every round, in order; ``broken``: the watchdog turned the lock-step off.
    """

    def __init__(self, count: int, timeout_s: float = TIMEOUT_S):
        self.timeout_s = float(timeout_s)
        self.calls = [[0, 0] for _ in range(count)]
        self.rounds: list[int] = []
        self.broken = False
        self._count = count
        self._cv = threading.Condition()
        self._turn: int | None = 0
        self._running = set(range(count))  # not parked, not finished (the turn holder included)
        self._parked: dict[int, _Parked] = {}
        self._progress = 0
        self._cancelled = False

    def run(self, fns: Sequence[Callable[[], T]]) -> list[T]:
        """Every function's return value, in order; the first exception (in order) is raised."""
        if len(fns) != self._count:
            raise ValueError(f"LockStep({self._count}) given {len(fns)} functions")
        results: list[Any] = [None] * len(fns)
        errors: list[BaseException | None] = [None] * len(fns)
        threads = [threading.Thread(target=self._thread, args=(i, fn, results, errors),
                                    name=f"seed-batch-{i}", daemon=True) for i, fn in enumerate(fns)]
        for thread in threads:
            thread.start()
        try:
            for thread in threads:
                thread.join()
        except BaseException:  # e.g. KeyboardInterrupt in the caller: stop the seeds at their next call
            with self._cv:
                self._cancelled = True
                self._cv.notify_all()
            raise
        raised = [e for e in errors if e is not None]
        first = next((e for e in raised if not isinstance(e, _Cancelled)), raised[0] if raised else None)
        if first is not None:
            raise first
        return results

    # -- threads -------------------------------------------------------------------------------

    def _thread(self, i: int, fn: Callable[[], Any], results: list, errors: list) -> None:
        try:
            with self._cv:
                self._wait(lambda: self._turn == i)
                if self._cancelled:
                    raise _Cancelled
            ROUTER.fn = functools.partial(self._park, i)  # this thread's train calls park here
            results[i] = fn()
        except BaseException as error:  # noqa: BLE001 - handed to run(), which raises it
            errors[i] = error
            if not isinstance(error, _Cancelled):
                with self._cv:
                    self._cancelled = True
        finally:
            with self._cv:
                self._running.discard(i)
                self._pass_turn(i)

    def _park(self, i: int, call: TrainCall) -> FitResult:
        """Thread ``i``'s train call (it holds the turn): wait for its round, return its result."""
        me = _Parked(i, call, call.signature())
        with self._cv:
            if self._cancelled:
                raise _Cancelled
            if not self.broken:
                self._parked[i] = me
                self._running.discard(i)
                self._pass_turn(i)
                self._wait(lambda: me.role is not None)
                if me.role == "member":
                    while not me.done:  # its leader is running it, and always finishes (finally)
                        self._cv.wait()
                    self._wait(lambda: self._turn == i)
                elif me.role is None:  # the watchdog fired while this call waited
                    self._parked.pop(i, None)
                    self._running.add(i)
        if me.role == "lead":
            self._lead(me.group)
        if me.role in (None, "solo"):
            if self._cancelled:
                raise _Cancelled
            self.calls[i][1] += 1
            return run_call(call)
        self.calls[i][0 if me.batched else 1] += 1
        if isinstance(me.result, BaseException):
            raise me.result
        return me.result

    def _lead(self, group: list[_Parked]) -> None:
        """Run ``group``'s calls in one vmapped kernel and hand every member its result."""
        outcomes: list[FitResult | BaseException] = []
        try:
            outcomes = list(run_batched([p.call for p in group]))
        except Exception as error:  # noqa: BLE001 - each call alone instead
            log.warning("seed batching: the batched kernel of %d seeds failed (%s); running them one by one",
                        len(group), error)
            for p in group:
                p.batched = False
                try:
                    outcomes.append(run_call(p.call))
                except Exception as alone_error:  # noqa: BLE001 - raised in the member's own thread
                    outcomes.append(alone_error)
        finally:
            with self._cv:
                for k, p in enumerate(group):
                    p.result = outcomes[k] if k < len(outcomes) else RuntimeError("seed batching: no result")
                    p.done = True
                self._progress += 1
                self._cv.notify_all()

    # -- scheduling (the condition's lock held) -------------------------------------------------

    def _wait(self, predicate: Callable[[], bool]) -> None:
        """Wait for ``predicate``; after ``timeout_s`` without progress anywhere, break the lock-step."""
        seen, since = self._progress, time.monotonic()
        while not (predicate() or self.broken):
            if self._progress != seen:
                seen, since = self._progress, time.monotonic()
            left = since + self.timeout_s - time.monotonic()
            if left <= 0:
                log.warning("seed batching: no progress in %.0f s; the seeds go on unbatched", self.timeout_s)
                self.broken = True
                self._cv.notify_all()
                return
            self._cv.wait(left)

    def _pass_turn(self, i: int) -> None:
        """Thread ``i`` parked or finished: the turn goes to the lowest running seed, or, when every
        seed still running is parked, to the thread that runs the next round's group."""
        self._progress += 1
        if self._turn == i or self._turn is None:
            if self._running:
                self._turn = min(self._running)
            elif self._parked:
                self._turn = self._start_round()
            else:
                self._turn = None
        self._cv.notify_all()

    def _start_round(self) -> int:
        groups: dict[tuple, list[_Parked]] = {}
        for seed in sorted(self._parked):
            parked = self._parked[seed]
            groups.setdefault(parked.signature, []).append(parked)
        group = max(groups.values(), key=lambda g: (len(g), -g[0].seed))
        for parked in group:  # running again: the turn reaches them after the leader's next park
            del self._parked[parked.seed]
            self._running.add(parked.seed)
            parked.role = "member"
        leader = group[0]
        leader.role = "lead" if len(group) > 1 else "solo"
        leader.group = group
        self.rounds.append(len(group))
        return leader.seed


# -- the batched host loop ---------------------------------------------------------------------


def run_batched(calls: Sequence[TrainCall]) -> list[FitResult]:
    """Calls of equal signature as one vmapped chunk per iteration; each seed's FitResult as
    ``train.run_call`` would give it (to float rounding)."""
    first = calls[0]
    state = _stack([c.state for c in calls])
    keys = _stack([c.key for c in calls])
    dynamic = _stack([c.dynamic for c in calls])
    data, axes = _stack_data([c.data for c in calls])
    chunk = _vmapped(first.chunk, axes)
    end_arr = jax.device_put(np.int32(first.end))
    loops = [HostLoop(c) for c in calls]
    final: list[dict | None] = [None] * len(calls)
    i = first.first_step
    while i < first.end and any(p is None for p in final):
        args = (state, data, keys, jax.device_put(np.int32(i)), end_arr, dynamic)
        state, metrics = _compiled(chunk, *args)(*args)
        metrics = jax.device_get(metrics)
        n = min(first.chunk_steps, first.end - i)
        for s, loop in enumerate(loops):
            if final[s] is None and loop.consume({k: v[s] for k, v in metrics.items()}, i, n):
                final[s] = _row(state[0], s)  # diverged: the state of this chunk, as sequentially
        i += n
    return [loop.finish(_row(state[0], s) if p is None else p)
            for s, (loop, p) in enumerate(zip(loops, final, strict=True))]


def _stack(trees: Sequence[Any]) -> Any:
    return jax.tree.map(lambda *xs: jnp.stack(xs), *trees)


def _row(tree: Any, s: int) -> Any:
    return jax.tree.map(lambda a: a[s], tree)


_equal = jax.jit(jnp.array_equal)


def _same(column: Sequence[jax.Array]) -> bool:
    """The same array in every seed: one object, or (large ones) equal shapes and values."""
    head = column[0]
    if all(x is head for x in column):
        return True
    if np.size(head) < SHARE_MIN_SIZE:
        return False
    if any(np.shape(x) != np.shape(head) or x.dtype != head.dtype for x in column):
        return False
    return all(bool(jax.device_get(_equal(head, x))) for x in column[1:])


def _stack_data(datas: Sequence[dict]) -> tuple[dict, dict]:
    """(batched data, its vmap in_axes): arrays equal in every seed once (axis None), others stacked."""
    flat = [jax.tree_util.tree_flatten(d) for d in datas]
    treedef = flat[0][1]
    out, axes = [], []
    for column in zip(*(leaves for leaves, _ in flat), strict=True):
        shared = _same(column)
        out.append(column[0] if shared else jnp.stack(column))
        axes.append(None if shared else 0)
    return jax.tree_util.tree_unflatten(treedef, out), jax.tree_util.tree_unflatten(treedef, axes)


_vmapped_cache: dict[tuple, Any] = {}


def _vmapped(chunk: Any, data_axes: dict) -> Any:
    """``jit(vmap(chunk))`` over the seed axis (state, key, dynamic hp: 0; data: ``data_axes``;
    step bounds shared), its stacked state donated like the chunk's."""
    axes_leaves, axes_def = jax.tree_util.tree_flatten(data_axes, is_leaf=lambda x: x is None)
    key = (chunk, axes_def, tuple(axes_leaves))
    if key not in _vmapped_cache:
        _vmapped_cache[key] = jax.jit(jax.vmap(chunk, in_axes=(0, data_axes, 0, None, None, 0)),
                                      donate_argnums=0)
    return _vmapped_cache[key]
