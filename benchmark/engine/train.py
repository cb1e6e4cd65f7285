"""The jitted training kernels and the host loop that drives them.

Kernels are pure: ``step((params, opt_state), data, key, i) -> ((params, opt_state), metrics)``;
a chunk runs ``plan.chunk_steps`` of them in one ``lax.scan(unroll=plan.unroll)``. Data lives
on device (a dict of arrays, an argument, never a constant) and batches are index gathers, so
one compiled kernel serves every seed and every target of the same shapes. The state buffers
are donated. Metrics come to the host once per chunk, where a non-finite loss stops the run.

Label budgets do not change shapes either (``plan.pad_examples``): a run's Trainer pads every
data array along axis 0 to ``pad_to`` (the target train split's size, which bounds the budget,
the unlabeled pool and their union) and passes the real lengths as traced int32 scalars under
``data["num_examples"]``; losses sample indices below them (``strategies.base.num_examples``),
so a padded row is never read and the metrics are those of the unpadded arrays
(``tests/test_engine.py::test_padding_changes_no_result``). One chunk is compiled per
(strategy, target split size, batch size) instead of per budget.

Compiled kernels are cached per (loss, label rule, model, hyper-parameters, plan) in-process
and by JAX's persistent compilation cache across processes (``enable_compilation_cache``).

``Trainer.train`` = ``prepare`` (padding, kernels, optimiser state: a :class:`TrainCall`) then
``run_call`` (the host loop; :class:`HostLoop`: its per-call bookkeeping), so
``benchmark.engine.seed_batch`` can run several seeds' calls in one vmapped chunk (``ROUTER``).
"""

from __future__ import annotations

import dataclasses
import functools
import threading
import time
from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import optax

from benchmark import models, paths
from benchmark.engine.divergence import DivergenceWatch
from benchmark.engine.plan import Plan
from benchmark.strategies.base import (
    FREEZE,
    NUM_EXAMPLES,
    TRAIN,
    FitResult,
    LabelFn,
    LossFn,
)

EVAL_BATCH = 256
_compile_seconds = threading.local()
_cache_enabled = False


def enable_compilation_cache() -> None:
    """Turn on JAX's persistent compilation cache under ``paths.compilation_cache_dir()``."""
    global _cache_enabled
    if _cache_enabled:
        return
    directory = paths.compilation_cache_dir()
    directory.mkdir(parents=True, exist_ok=True)
    jax.config.update("jax_compilation_cache_dir", str(directory))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    _cache_enabled = True


def compile_seconds() -> float:
    """Seconds this thread has spent compiling kernels (read before/after a run for its share)."""
    return getattr(_compile_seconds, "total", 0.0)


def _charge(seconds: float) -> None:
    _compile_seconds.total = compile_seconds() + seconds


def _learning_rate(hp: Mapping[str, Any], scale: Any) -> optax.Schedule:
    """The learning-rate schedule; ``hp`` values may be traced (they are kernel arguments)."""
    base = hp["learning_rate"] * scale
    total = hp["total_steps"]
    if hp["lr_schedule"] == "cosine":
        return lambda step: base * 0.5 * (1.0 + jnp.cos(jnp.pi * jnp.minimum(step, total) / total))
    if hp["lr_schedule"] == "dann":
        # μ_p = μ0 / (1 + α p)^β, p = step / total, α = 10, β = 0.75 (Ganin et al. 2016, § 5.2.2).
        return lambda step: base / (1.0 + 10.0 * step / total) ** 0.75
    return lambda step: base


LR_SCALE_PREFIX = "lr_scale:"
"""``hp[LR_SCALE_PREFIX + label]``: the learning-rate factor of the parameters labelled ``label``
(``Trainer.train(lr_scales=...)`` puts them there, so they are traced, not compiled in)."""


def make_optimizer(hp: Mapping[str, Any], labels: LabelFn) -> optax.GradientTransformation:
    """SGD-momentum or Adam, plus decoupled weight decay, per label; ``"freeze"`` → set_to_zero,
    ``"train"`` at the base rate, any other label at ``hp["lr_scale:<label>"]`` × the base rate.

    Numbers in ``hp`` may be tracers, so one compiled kernel serves every learning rate,
    momentum, weight decay and horizon (a weight decay or momentum of 0 is exact arithmetic).
    """

    def opt(scale: Any) -> optax.GradientTransformation:
        lr = _learning_rate(hp, scale)
        decay = optax.add_decayed_weights(hp["weight_decay"])
        if hp["optimizer"] == "adam":
            return optax.chain(decay, optax.adam(lr))
        return optax.chain(decay, optax.sgd(lr, momentum=hp["momentum"]))

    transforms = {TRAIN: opt(1.0), FREEZE: optax.set_to_zero()}
    for key, scale in hp.items():
        if key.startswith(LR_SCALE_PREFIX):
            transforms[key[len(LR_SCALE_PREFIX):]] = opt(scale)
    static = {k: v for k, v in hp.items() if not isinstance(v, jax.Array | float)}
    return optax.multi_transform(transforms, lambda params: labels(params, static))


_NOT_IN_KERNEL = ("steps", "log_every")


def split_hp(hp: Mapping[str, Any]) -> tuple[tuple, dict[str, np.ndarray]]:
    """``(static, dynamic)``: floats and ``total_steps`` become kernel arguments (no recompile
    per learning rate or step count); strings, ints and bools stay compile-time constants."""
    static, dynamic = [], {}
    for key, value in sorted(hp.items()):
        if key == "total_steps":
            dynamic[key] = np.int32(value)
        elif isinstance(value, float):
            dynamic[key] = np.float32(value)
        elif key not in _NOT_IN_KERNEL:
            static.append((key, tuple(value) if isinstance(value, list) else value))
    return tuple(static), dynamic


@functools.lru_cache(maxsize=256)
def _kernels(loss: LossFn, labels: LabelFn, model_key: tuple, static_hp: tuple, plan: Plan):
    """(optimizer init, jitted chunk) for one training program; built once per process.

    The chunk is ``chunk(state, data, key, start, end, dynamic_hp) -> (state, metrics[chunk])``.
    """
    model = models.build(model_key[0], dict(model_key[1]), model_key[2])
    static = dict(static_hp)

    def step(state, data, key, i, dynamic):
        hp = {**static, **dynamic}
        tx = make_optimizer(hp, labels)
        params, opt_state = state
        grad_fn = jax.value_and_grad(functools.partial(loss, model=model, hp=hp), has_aux=True)
        (_, metrics), grads = grad_fn(params, data, jax.random.fold_in(key, i), i)
        updates, opt_state = tx.update(grads, opt_state, params)
        return (optax.apply_updates(params, updates), opt_state), metrics

    if plan.chunk_steps == 1:
        def chunk(state, data, key, start, end, dynamic):
            state, metrics = step(state, data, key, start, dynamic)
            return state, jax.tree.map(lambda m: m[None], metrics)
    else:
        def chunk(state, data, key, start, end, dynamic):
            def body(state, offset):
                i = start + offset
                new_state, metrics = step(state, data, key, i, dynamic)
                # Steps past `end` (the tail of the last chunk) leave the state unchanged, so
                # any step count runs on the one compiled chunk.
                keep = i < end
                state = jax.tree.map(lambda a, b: jnp.where(keep, a, b), new_state, state)
                return state, metrics

            return jax.lax.scan(body, state, jnp.arange(plan.chunk_steps), unroll=plan.unroll)

    def init(params, dynamic):
        return make_optimizer({**static, **dynamic}, labels).init(params)

    return jax.jit(init), jax.jit(chunk, donate_argnums=0)


_aot: dict[tuple, Any] = {}


def _compiled(fn, *args):
    """Ahead-of-time compile ``fn`` for these argument shapes once, charging the compile time."""
    shapes = jax.tree.map(lambda a: (np.shape(a), str(getattr(a, "dtype", type(a)))), args)
    key = (fn, jax.tree_util.tree_structure(args), tuple(jax.tree_util.tree_leaves(shapes)))
    if key not in _aot:
        enable_compilation_cache()  # also when no Trainer was built yet (an evaluation first)
        t0 = time.perf_counter()
        _aot[key] = fn.lower(*args).compile()
        _charge(time.perf_counter() - t0)
    return _aot[key]


@functools.lru_cache(maxsize=64)
def _apply_fn(model_key: tuple, method: str):
    model = models.build(model_key[0], dict(model_key[1]), model_key[2])
    fn = getattr(type(model), method)
    return jax.jit(lambda params, x: model.apply({"params": params}, x, method=fn))


def _all_finite(tree: Any) -> bool:
    finite = jnp.all(jnp.array([jnp.all(jnp.isfinite(x)) for x in jax.tree_util.tree_leaves(tree)]))
    return bool(jax.device_get(finite))


@dataclasses.dataclass
class TrainCall:
    """One prepared :meth:`Trainer.train` call: its compiled program, initial state and host-loop
    settings. ``program``: ``(loss, labels, model_key, static hp, plan)``, what ``_kernels`` is
    keyed by; steps ``first_step .. end - 1`` run."""

    program: tuple
    chunk: Any
    state: tuple
    data: dict
    key: jax.Array
    dynamic: dict
    first_step: int
    end: int
    chunk_steps: int
    hp: dict
    num_classes: int
    judge_chance: bool

    def signature(self) -> tuple:
        """Equal for calls one vmapped chunk can run together: same program, step range, and
        pytree structure, shapes and dtypes of state, data, key and dynamic hyper-parameters."""
        args = (self.state, self.data, self.key, self.dynamic)
        shapes = tuple((np.shape(a), str(a.dtype)) for a in jax.tree_util.tree_leaves(args))
        return (self.program, self.first_step, self.end, jax.tree_util.tree_structure(args), shapes)


class HostLoop:
    """The per-call bookkeeping of the host loop: metrics history, divergence watch, the curve."""

    def __init__(self, call: TrainCall):
        self.call = call
        self.history: dict[str, list[np.ndarray]] = {}
        self.diverged: int | None = None
        self.watch = DivergenceWatch(call.num_classes, call.hp)  # non-finite, exploding, or at chance

    def consume(self, metrics: Mapping[str, np.ndarray], i: int, n: int) -> bool:
        """Take the host copy of one chunk's metrics (steps ``i .. i + n - 1``); True: it diverged
        (training stops with the state this chunk returned)."""
        losses = np.asarray(metrics["loss"][:n])
        bad = self.watch.bad_steps(losses, i)
        for name, values in metrics.items():
            self.history.setdefault(name, []).append(np.asarray(values[:n], np.float64))
        if bad.any():
            self.diverged = i + int(np.argmax(bad))
            return True
        return False

    def finish(self, params: dict) -> FitResult:
        call, diverged = self.call, self.diverged
        log_every = int(call.hp["log_every"])
        if diverged is None and not _all_finite(params):
            diverged = call.end - 1
            self.watch.params_not_finite(diverged)
        if diverged is None and call.judge_chance and self.watch.at_chance(self.history, log_every):
            diverged = call.end - 1
        return FitResult(params, _curve(self.history, call.first_step, log_every, diverged), diverged,
                         self.watch.extras())


def run_call(call: TrainCall) -> FitResult:
    """Run one prepared call: one compiled chunk per iteration, metrics to the host each chunk."""
    state = call.state
    # Every host↔device transfer in this loop is explicit (device_put / device_get): the
    # tests run it under jax.transfer_guard("disallow").
    end_arr = jax.device_put(np.int32(call.end))
    loop = HostLoop(call)
    i = call.first_step
    while i < call.end:
        args = (state, call.data, call.key, jax.device_put(np.int32(i)), end_arr, call.dynamic)
        state, metrics = _compiled(call.chunk, *args)(*args)
        n = min(call.chunk_steps, call.end - i)
        if loop.consume(jax.device_get(metrics), i, n):
            break
        i += n
    return loop.finish(state[0])


ROUTER = threading.local()
"""``ROUTER.fn(call) -> FitResult``, where a thread sets it: its :meth:`Trainer.train` calls hand
their prepared call to it (to run alone or with other threads' calls) instead of running it."""


class Trainer:
    """Runs training programs for one model on one plan (implements ``strategies.base.Trainer``).

    model_key: ``(backbone name, tuple(sorted(backbone_params.items())), num_classes)``.
    pad_to: with ``plan.pad_examples``, every data array shorter than this is padded to it along
    axis 0 (zeros) and every array's real length goes to the kernel under
    ``data["num_examples"]``; ``None`` pads nothing (one shape per call site anyway, e.g.
    pretraining on a whole split).
    """

    def __init__(self, model_key: tuple, plan: Plan, pad_to: int | None = None):
        enable_compilation_cache()
        self.model_key = model_key
        self.model = models.build(model_key[0], dict(model_key[1]), model_key[2])
        self.plan = plan
        self.pad_to = pad_to if plan.pad_examples else None

    def _padded(self, data: dict) -> dict:
        """``data`` with its arrays padded to ``pad_to`` and their lengths under NUM_EXAMPLES.

        Padding happens on the host (explicit transfers; a device-side pad would compile once
        per input length, which is what padding is for avoiding)."""
        if self.pad_to is None:
            return data
        out, counts = {}, {}
        for name, array in data.items():
            n = int(array.shape[0])
            counts[name] = jax.device_put(np.int32(n))
            if n < self.pad_to:
                host = np.asarray(jax.device_get(array))
                pad = np.zeros((self.pad_to - n, *host.shape[1:]), host.dtype)
                array = jax.device_put(np.concatenate([host, pad]))
            out[name] = array
        return {**out, NUM_EXAMPLES: counts}

    def train(self, params: dict, data: dict, key: jax.Array, *, loss: LossFn, labels: LabelFn,
              hp: Mapping[str, Any], steps: int, first_step: int = 0,
              lr_scales: Mapping[str, float] | None = None, judge_chance: bool = True) -> FitResult:
        """Run steps ``first_step .. first_step + steps - 1`` of ``loss`` from ``params``.

        hp must hold the schedule keys (``resolve_train``); ``hp["total_steps"]`` (default
        ``first_step + steps``) is the horizon of step-dependent schedules. ``lr_scales``: the
        learning-rate factor of each label other than ``"train"`` / ``"freeze"`` that ``labels``
        uses (e.g. ``{"backbone": 0.1}``). ``judge_chance=False``: do not call a run that ends at
        chance on its training data diverged (its labels are random by design). Returns the trained
        params, the curve (``log_every`` windows, accuracy on training batches) and the first
        step whose loss was not finite, if any (training stops there). See ``ROUTER``.
        """
        call = self.prepare(params, data, key, loss=loss, labels=labels, hp=hp, steps=steps,
                            first_step=first_step, lr_scales=lr_scales, judge_chance=judge_chance)
        router = getattr(ROUTER, "fn", None)
        return router(call) if router is not None else run_call(call)

    def prepare(self, params: dict, data: dict, key: jax.Array, *, loss: LossFn, labels: LabelFn,
                hp: Mapping[str, Any], steps: int, first_step: int = 0,
                lr_scales: Mapping[str, float] | None = None, judge_chance: bool = True) -> TrainCall:
        """The set-up of :meth:`train` (padding, kernels, optimiser state), nothing run yet."""
        hp = {**hp, "total_steps": int(hp.get("total_steps", first_step + steps)),
              **{LR_SCALE_PREFIX + k: float(v) for k, v in (lr_scales or {}).items()}}
        data = self._padded(data)
        static, dynamic = split_hp(hp)
        dynamic = jax.device_put(dynamic)
        # Seed batching compiles no other step kernel: one cache entry with or without it.
        program = (loss, labels, self.model_key, static, dataclasses.replace(self.plan, batch_seeds=False))
        init, chunk = _kernels(*program)
        # Copy: the chunk donates its state, and the caller's params (e.g. a cached source
        # model) must survive.
        params = jax.tree.map(jnp.copy, params)
        state = (params, _compiled(init, params, dynamic)(params, dynamic))
        return TrainCall(program, chunk, state, data, key, dynamic, first_step, first_step + steps,
                         self.plan.chunk_steps, hp, self.model_key[2], judge_chance)

    def logits(self, params: dict, images: jax.Array) -> jax.Array:
        """``float32[N, num_classes]`` for ``images uint8[N, H, W, C]`` (model params only)."""
        return self._batched("__call__", params, images)

    def features(self, params: dict, images: jax.Array) -> jax.Array:
        """``float32[N, D]`` penultimate features."""
        return self._batched("features", params, images)

    def _batched(self, method: str, params: dict, images: jax.Array) -> jax.Array:
        return apply_batched(self.model_key, method, params, images)


def apply_batched(model_key: tuple, method: str, params: dict, images: jax.Array) -> jax.Array:
    """Apply ``model.<method>`` over ``images`` in fixed-size batches (one compile per shape)."""
    enable_compilation_cache()  # its eager padding compiles before _compiled does
    fn = _apply_fn(model_key, method)
    n = int(images.shape[0])
    padded = -(-max(n, 1) // EVAL_BATCH) * EVAL_BATCH
    if padded != n:
        pad = jnp.zeros((padded - n, *images.shape[1:]), images.dtype)
        images = jnp.concatenate([jnp.asarray(images), pad])
    outs = []
    for s in range(0, padded, EVAL_BATCH):
        batch = images[s:s + EVAL_BATCH]
        outs.append(_compiled(fn, params, batch)(params, batch))
    return jnp.concatenate(outs)[:n]


def _curve(history: dict[str, list[np.ndarray]], first_step: int, log_every: int,
           diverged: int | None) -> list[dict[str, float]]:
    if not history:
        return []
    series = {k: np.concatenate(v) for k, v in history.items()}
    n = len(series["loss"])
    if diverged is not None:
        n = diverged - first_step
    points = []
    for start in range(0, n, log_every):
        stop = min(start + log_every, n)
        point = {"step": float(first_step + stop)}
        point.update({k: float(np.mean(v[start:stop])) for k, v in series.items()})
        points.append(point)
    return points
