"""Training step time of each fine-tuning strategy relative to ``finetune_full`` (issue 16, Speed).

Every strategy trains through its real ``fit`` hook (``strategies.fit_hook``) with a
:class:`~benchmark.strategies.base.FitContext` built as ``benchmark.engine.run.run_seed`` builds
one: the engine's :class:`~benchmark.engine.train.Trainer` on the plan it chooses for this backend
(padded to the train split, as a run pads), the strategy's default parameters
(``Declaration.resolve``), the same source model and fresh init for all. What is timed is one
whole ``fit`` call (its per-call set-up, optimizer init, host round trips per chunk and, for
``surgical``, its validation scoring included), i.e. what a run pays for ``train.steps``.

Model and data as the ``step`` section: LeNet width 16 from ``benchmark.models``, 28×28×1 uint8
images with random pixels and labels, batch 128, SGD momentum, no weight decay. The source
params are a fresh init of the same model (throughput does not depend on their values). The
budget has ``num_images`` labelled images and ``num_val`` validation images (``surgical`` picks
its block on them, as a run with a validation split does).

One warm-up ``fit`` per strategy compiles its kernels (its seconds and compile seconds are
recorded) and counts the ``Trainer.train`` calls the fit makes (:class:`CountingTrainer`): the
steps one fit trains are measured, not assumed. Then ``repeats`` rounds, each strategy once per
round in turn (:func:`benchmark.bench.timing.interleave`), medians.

Per strategy: ``fit`` (the median seconds of one fit for the same ``train.steps``), ``trained_steps``
(steps over all its train calls: ``surgical`` trains one candidate per block, so n × steps),
``seconds_per_step`` = fit seconds / trained steps, and the two ratios to ``finetune_full``:
``fit_ratio`` (per fit) and ``step_ratio`` (per trained step; what the issue's targets judge),
both ratios of medians; ``step_ratio_paired`` is the median over rounds of the ratio within a
round (less sensitive to load drifting between rounds).
"""

from __future__ import annotations

import dataclasses
import statistics
import time
from typing import Any

import jax
import numpy as np

from benchmark import models, strategies
from benchmark.bench import timing
from benchmark.config.schedule import resolve_train
from benchmark.engine.plan import choose
from benchmark.engine.train import Trainer, compile_seconds
from benchmark.strategies.base import FitContext

REFERENCE = "finetune_full"
STRATEGIES = (REFERENCE, "discriminative_lr", "gradual_unfreeze", "l2sp", "bss", "lp_ft", "surgical")

STEP_COVERS = {
    "finetune_full": "one SGD step of the whole model (new head at the base rate, backbone at 0.1x)",
    "discriminative_lr": "one SGD step of the whole model, one learning-rate factor per block",
    "gradual_unfreeze": "one SGD step; the fit is n+1 train calls (phases), frozen blocks at factor 0",
    "l2sp": "one SGD step of the whole model plus the L2 pull toward the source weights",
    "bss": "one SGD step of the whole model plus the eigh of the batch features' Gram matrix",
    "lp_ft": "probe steps (head only, on features computed once per fit) then full fine-tuning steps; "
             "both count as steps",
    "surgical": "one SGD step of one candidate block + head; the fit trains every block as a candidate "
                "for train.steps each and scores each on the validation images",
}
"""What one trained step of each strategy is (the measured ``phases`` say how a fit splits)."""


@dataclasses.dataclass(frozen=True)
class StrategyStepConfig:
    """steps: ``train.steps`` of every fit (rounded up to whole engine chunks)."""

    strategies: tuple[str, ...] = STRATEGIES
    width: int = 16
    batch_size: int = 128
    steps: int = 64
    num_images: int = 4096
    num_val: int = 256
    num_classes: int = 10
    learning_rate: float = 0.05
    momentum: float = 0.9
    repeats: int = 5
    input_shape: tuple[int, int, int] = (28, 28, 1)


class CountingTrainer:
    """The engine's trainer, recording each ``train`` call's steps and loss (for the warm-up fit)."""

    def __init__(self, trainer: Trainer):
        self.trainer = trainer
        self.calls: list[dict[str, Any]] = []

    def train(self, params, data, key, **kwargs):
        self.calls.append({"loss": kwargs["loss"].__name__, "steps": int(kwargs["steps"])})
        return self.trainer.train(params, data, key, **kwargs)

    def logits(self, params, images):
        return self.trainer.logits(params, images)

    def features(self, params, images):
        return self.trainer.features(params, images)


def build(config: StrategyStepConfig) -> dict[str, Any]:
    """The shared context pieces and each strategy's ``(fit hook, FitContext)``; nothing timed yet."""
    unknown = [n for n in config.strategies if n not in strategies.names()]
    if unknown or REFERENCE not in config.strategies:
        raise ValueError(f"strategies must be known and include {REFERENCE!r}, got {list(config.strategies)}")
    plan = choose(jax.default_backend())
    steps = -(-config.steps // plan.chunk_steps) * plan.chunk_steps
    rng = np.random.default_rng(0)
    n = config.num_images + config.num_val
    images = rng.integers(0, 256, (n, *config.input_shape), dtype=np.uint8)
    labels = rng.integers(0, config.num_classes, n).astype(np.int32)

    model_key = ("lenet", (("width", config.width),), config.num_classes)
    trainer = Trainer(model_key, plan, pad_to=config.num_images)
    init = jax.jit(lambda key: models.init_params(trainer.model, key, config.input_shape))
    source_params, init_params = init(jax.random.key(0)), init(jax.random.key(1))
    train = {"steps": steps, "batch_size": config.batch_size, "learning_rate": config.learning_rate,
             "momentum": config.momentum, "weight_decay": 0.0, "log_every": steps}
    base = dict(model=trainer.model, init_params=init_params, source_params=source_params,
                source_num_classes=config.num_classes, shared_label_space=False,
                labeled_images=jax.device_put(images[:config.num_images]),
                labeled_labels=jax.device_put(labels[:config.num_images]),
                unlabeled_images=jax.device_put(images[:0]), source_images=None, source_labels=None,
                key=jax.random.key(2), trainer=trainer,
                val_images=jax.device_put(images[config.num_images:]),
                val_labels=jax.device_put(labels[config.num_images:]))
    fits = {}
    for name in config.strategies:
        params = strategies.get(name).resolve(None, num_blocks=trainer.model.num_blocks)
        fits[name] = (strategies.fit_hook(name), FitContext(hp={**resolve_train(train), **params}, **base),
                      params)
    return {"plan": plan, "steps": steps, "trainer": trainer, "fits": fits,
            "param_count": models.param_count(init_params), "num_blocks": trainer.model.num_blocks}


def _trial(fit, ctx: FitContext):
    def trial() -> None:
        result = fit(ctx)
        jax.block_until_ready(result.params)

    return trial


def _warm_up(fit, ctx: FitContext) -> dict[str, Any]:
    """One fit that compiles; its train calls counted, its seconds and compile seconds recorded."""
    counting = CountingTrainer(ctx.trainer)
    c0, t0 = compile_seconds(), time.perf_counter()
    result = fit(dataclasses.replace(ctx, trainer=counting))
    jax.block_until_ready(result.params)
    return {"first_fit_s": time.perf_counter() - t0, "compile_s": compile_seconds() - c0,
            "phases": counting.calls, "trained_steps": sum(c["steps"] for c in counting.calls),
            "diverged_step": result.diverged_step}


def run(config: StrategyStepConfig) -> dict[str, Any]:
    """Measure; returns a JSON-ready dict (see the module docstring)."""
    parts = build(config)
    warm = {name: _warm_up(fit, ctx) for name, (fit, ctx, _) in parts["fits"].items()}
    trials = {name: _trial(fit, ctx) for name, (fit, ctx, _) in parts["fits"].items()}
    times = timing.interleave(trials, repeats=config.repeats, warmup=0)

    rows: dict[str, dict[str, Any]] = {}
    for name, (_, _, params) in parts["fits"].items():
        trained = warm[name]["trained_steps"]
        row = {**timing.summarize(times[name], float(trained), "steps"), **warm[name],
               "params": params, "step_covers": STEP_COVERS.get(name, "one Trainer.train step")}
        row["seconds_per_step"] = row["median_s"] / trained
        rows[name] = row
    ref = rows[REFERENCE]
    for name, row in rows.items():
        row["fit_ratio"] = row["median_s"] / ref["median_s"]
        row["step_ratio"] = row["seconds_per_step"] / ref["seconds_per_step"]
        # The same ratio within each round, then the median: load drift between rounds cancels.
        per_round = [t / ref_t * ref["trained_steps"] / row["trained_steps"]
                     for t, ref_t in zip(times[name], times[REFERENCE], strict=True)]
        row["step_ratio_paired"] = statistics.median(per_round)
    return {
        "config": {**dataclasses.asdict(config), "steps_per_fit": parts["steps"],
                   "data": "random uint8 images, uniform labels (throughput only)",
                   "optimizer": f"SGD lr={config.learning_rate} momentum={config.momentum}, no weight decay",
                   "source_params": "a fresh init of the same model, shared by every strategy"},
        "plan": parts["plan"].to_dict(),
        "model": {"name": "lenet", "width": config.width, "param_count": parts["param_count"],
                  "num_blocks": parts["num_blocks"]},
        "reference": REFERENCE,
        "strategies": rows,
        "step_ratios": {name: row["step_ratio"] for name, row in rows.items()},
        "fit_ratios": {name: row["fit_ratio"] for name, row in rows.items()},
    }
