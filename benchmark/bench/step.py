"""Training-step throughput: the engine's kernel vs the Flax-tutorial loop vs PyTorch eager.

All contenders train the identical model (``benchmark.models`` LeNet, same initial weights), with
the identical optimiser (SGD momentum, no weight decay), batch and data (uint8 28×28×1 images,
random pixels: throughput does not depend on their values). One trial = ``steps`` steps;
trials are interleaved with a 2048² f32 matmul trial that gives the peak in the same run.

* ``engine``: ``benchmark.engine.train.Trainer(model_key, plan).train(...)`` with the plan the
  engine chooses for this backend (``benchmark.engine.plan.choose``) and its supervised loss —
  the code path every ``run_cell`` takes, including its per-call set-up (optimiser init, params
  copy, metrics to host once per chunk, the final finiteness check).
* ``engine_seeds``: the same for ``seeds`` seeds, one after another (``run_cell`` without
  ``plan.batch_seeds``); images/s summed over seeds.
* ``engine_seeds_batched``: the same seeds in lock-step, their train calls in one vmapped chunk
  (``benchmark.engine.seed_batch.LockStep``, what ``run_cell`` does with ``plan.batch_seeds``);
  images/s summed over seeds. The JSON records the ratio to ``engine_seeds`` and the plan's
  choice for this backend and model with its reason (``benchmark.engine.plan.batch_seeds``).
* ``flax_tutorial``: :mod:`benchmark.bench.flax_tutorial`.
* ``torch_eager``: :mod:`benchmark.bench.torch_reference`.

MFU = training FLOPs per image × images/s ÷ the measured matmul FLOP/s. Training FLOPs per image
are counted from the jaxpr of one tutorial training step (matmuls and convolutions, 2 FLOPs per
multiply-accumulate; :mod:`benchmark.models.flops`), XLA's cost analysis is recorded beside it.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any

import jax
import numpy as np

from benchmark import models
from benchmark.bench import flax_tutorial, timing, torch_reference
from benchmark.bench.peak import MATMUL_N, matmul_trial
from benchmark.config.schedule import resolve_train
from benchmark.engine.plan import batch_seeds, choose
from benchmark.engine.seed_batch import LockStep
from benchmark.engine.train import Trainer
from benchmark.models.flops import matmul_flops, xla_flops
from benchmark.strategies.base import all_train, supervised_loss


@dataclasses.dataclass(frozen=True)
class StepConfig:
    """width: LeNet width; steps: steps per trial (rounded up to whole engine chunks)."""

    width: int = 16
    batch_size: int = 128
    steps: int = 64
    seeds: int = 4
    num_images: int = 4096
    num_classes: int = 10
    learning_rate: float = 0.05
    momentum: float = 0.9
    repeats: int = 5
    matmul_n: int = MATMUL_N
    input_shape: tuple[int, int, int] = (28, 28, 1)


def _engine_trial(trainer: Trainer, params: dict, data: dict, hp: dict, steps: int, seeds: int):
    keys = [jax.random.key(1000 + s) for s in range(seeds)]

    def trial() -> None:
        outs = [trainer.train(params, data, key, loss=supervised_loss, labels=all_train, hp=hp,
                              steps=steps) for key in keys]
        jax.block_until_ready([o.params for o in outs])

    return trial


def _batched_trial(trainer: Trainer, params: dict, data: dict, hp: dict, steps: int, seeds: int):
    keys = [jax.random.key(1000 + s) for s in range(seeds)]

    def trial() -> None:
        outs = LockStep(seeds).run([functools.partial(trainer.train, params, data, key, loss=supervised_loss,
                                                      labels=all_train, hp=hp, steps=steps) for key in keys])
        jax.block_until_ready([o.params for o in outs])

    return trial


def build(config: StepConfig) -> dict[str, Any]:
    """Models, data and the zero-argument trials of every contender (nothing timed yet)."""
    backend = jax.default_backend()
    plan = choose(backend, model=("lenet", {"width": config.width}))
    steps = -(-config.steps // plan.chunk_steps) * plan.chunk_steps
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (config.num_images, *config.input_shape), dtype=np.uint8)
    labels = rng.integers(0, config.num_classes, config.num_images).astype(np.int32)

    model_key = ("lenet", (("width", config.width),), config.num_classes)
    model = models.build("lenet", {"width": config.width}, config.num_classes)
    # Jitted: flax's eager init compiles every op on its own (10 s on a busy 2-core machine).
    params = jax.jit(lambda key: models.init_params(model, key, config.input_shape))(jax.random.key(0))

    hp = {**resolve_train({"batch_size": config.batch_size, "learning_rate": config.learning_rate,
                           "momentum": config.momentum, "weight_decay": 0.0, "log_every": steps}),
          "total_steps": 10**6}
    trainer = Trainer(model_key, plan)
    data = {"images": jax.device_put(images), "labels": jax.device_put(labels)}
    engine_params = {"model": params}

    torch_model = torch_reference.load_flax_params(
        torch_reference.TorchLeNet(config.num_classes, config.width, config.input_shape), params)
    common = {"batch_size": config.batch_size, "learning_rate": config.learning_rate,
              "momentum": config.momentum, "steps": steps}
    matmul, matmul_flops_per_trial = matmul_trial(config.matmul_n)
    trials = {
        "engine": _engine_trial(trainer, engine_params, data, hp, steps, 1),
        "flax_tutorial": flax_tutorial.training_trial(model, params, images, labels, **common),
        "torch_eager": torch_reference.training_trial(torch_model, images, labels, **common),
        "matmul_peak": matmul,
    }
    if config.seeds > 1:
        trials["engine_seeds"] = _engine_trial(trainer, engine_params, data, hp, steps, config.seeds)
        trials["engine_seeds_batched"] = _batched_trial(trainer, engine_params, data, hp, steps, config.seeds)
    return {"trials": trials, "steps": steps, "plan": plan, "model": model, "params": params,
            "torch_model": torch_model, "images": images, "labels": labels,
            "matmul_flops_per_trial": matmul_flops_per_trial}


def run(config: StepConfig) -> dict[str, Any]:
    """Measure; returns a JSON-ready dict (see the module docstring for the contenders)."""
    parts = build(config)
    steps, plan, model, params = parts["steps"], parts["plan"], parts["model"], parts["params"]
    torch_model, images, labels = parts["torch_model"], parts["images"], parts["labels"]
    trials, matmul_flops_per_trial = parts["trials"], parts["matmul_flops_per_trial"]
    times = timing.interleave(trials, repeats=config.repeats, warmup=1)

    images_per_trial = float(steps * config.batch_size)
    summary = {name: timing.summarize(t, images_per_trial, "images") for name, t in times.items()
               if name not in ("matmul_peak", "engine_seeds", "engine_seeds_batched")}
    for name in ("engine_seeds", "engine_seeds_batched"):
        if name in times:
            summary[name] = timing.summarize(times[name], images_per_trial * config.seeds, "images")
    peak = timing.summarize(times["matmul_peak"], matmul_flops_per_trial, "FLOPs")

    one_step, state = flax_tutorial.step_function(model, params, config.learning_rate, config.momentum)
    batch = (images[: config.batch_size], labels[: config.batch_size])
    counted = matmul_flops(one_step, state, *batch) / config.batch_size
    xla = xla_flops(jax.jit(one_step), state, *batch)
    for row in summary.values():
        row["flops_per_s"] = row["rate"] * counted
        row["mfu"] = row["flops_per_s"] / peak["rate"]

    ratios = {
        "engine_vs_torch_eager": timing.ratio(summary["engine"], summary["torch_eager"]),
        "engine_vs_flax_tutorial": timing.ratio(summary["engine"], summary["flax_tutorial"]),
        "flax_tutorial_vs_torch_eager": timing.ratio(summary["flax_tutorial"], summary["torch_eager"]),
    }
    if "engine_seeds" in summary:
        ratios["engine_seeds_vs_flax_tutorial"] = timing.ratio(summary["engine_seeds"],
                                                               summary["flax_tutorial"])
        ratios["engine_seeds_batched_vs_flax_tutorial"] = timing.ratio(summary["engine_seeds_batched"],
                                                                       summary["flax_tutorial"])
        ratios["engine_seeds_batched_vs_engine_seeds"] = timing.ratio(summary["engine_seeds_batched"],
                                                                      summary["engine_seeds"])
    on, why = batch_seeds(jax.default_backend(), ("lenet", {"width": config.width}))  # == plan.batch_seeds
    return {
        "config": {**dataclasses.asdict(config), "steps_per_trial": steps,
                   "data": "random uint8 images, uniform labels (throughput only)",
                   "optimizer": f"SGD lr={config.learning_rate} momentum={config.momentum}, no weight decay"},
        # How run_cell runs a cell's seeds here (benchmark/engine/plan.py); the speed page shows it.
        "plan": {**plan.to_dict(), "seeds": "batched" if on else "sequential", "batch_seeds_reason": why},
        "model": {"name": "lenet", "width": config.width,
                  "param_count": models.param_count(params),
                  "torch_param_count": torch_reference.param_count(torch_model)},
        "flops_per_image": {"training": counted, "method": "jaxpr count of one training step: "
                            "dot_general + conv_general_dilated, 2 FLOPs per MAC",
                            "xla_cost_analysis_training": None if xla is None else xla / config.batch_size},
        "matmul_peak": {**peak, "n": config.matmul_n, "dtype": "float32"},
        "contenders": summary,
        "ratios": ratios,
        "torch": torch_reference.torch_description(),
    }
