"""The engine: trains one cell of a suite with jitted JAX kernels.

``run_cell(spec, seeds, *, data_dir=None, checkpoint_dir=None, plan=None) -> list[RunResult]``
loads the cell's datasets once, then per seed: draws the target label budget, gets the
pretrained source model (cached), runs the strategy and evaluates on the target test split.
A run whose loss turns NaN/inf comes back as ``status="diverged"``; bad specs raise
``UserError``. ``resolve(spec)`` returns the spec with every default filled in.

``source_features(spec, seed, images)`` gives the pretrained source model's features and
softmax outputs (numpy) for domain-gap and transferability measures.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Sequence

import jax
import numpy as np

from benchmark.cellspec import CellSpec
from benchmark.config.schedule import resolve_pretrain
from benchmark.engine.plan import Plan, choose
from benchmark.engine.run import CellData, load_cell_data, resolve, run_seed, source_model_for
from benchmark.engine.train import apply_batched, enable_compilation_cache
from benchmark.results import RunResult

__all__ = ["CellData", "Plan", "resolve", "run_cell", "source_features"]


def run_cell(spec: CellSpec, seeds: Sequence[int], *, data_dir: str | os.PathLike | None = None,
             checkpoint_dir: str | os.PathLike | None = None,
             plan: str | Plan | None = None) -> list[RunResult]:
    """Train and evaluate ``spec`` once per seed (seeds in order). See the module docstring.

    plan: force an execution plan ("simple", "fast" or a Plan); default per backend and model.
    With ``plan.batch_seeds`` and several distinct seeds, the seeds train in lock-step
    (``benchmark.engine.seed_batch``): the same results to float rounding.
    """
    resolve(spec)
    enable_compilation_cache()  # before any kernel of the cell compiles, eager ones included
    chosen = choose(jax.default_backend(), plan, model=(spec.backbone, spec.backbone_params))
    data = load_cell_data(spec, data_dir)
    if chosen.batch_seeds and len(set(seeds)) == len(seeds) > 1:
        from benchmark.engine.seed_batch import run_seeds

        return run_seeds(spec, seeds, data, plan=chosen, checkpoint_dir=checkpoint_dir)
    return [run_seed(spec, seed, data, plan=chosen, checkpoint_dir=checkpoint_dir)[0] for seed in seeds]


def source_features(spec: CellSpec, seed: int, images: np.ndarray, *,
                    data_dir: str | os.PathLike | None = None,
                    checkpoint_dir: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """``(features float32[N, D], probs float32[N, K_source])`` of the pretrained source model.

    spec: any CellSpec naming ``source``, ``input_spec``, ``backbone``, ``backbone_params``,
    ``pretrain`` (the strategy does not matter); images: uint8[N, H, W, C] in the input spec,
    or a loaded Domain (its ``images`` are used).
    """
    images = getattr(images, "images", images)
    spec = dataclasses.replace(spec, pretrain=resolve_pretrain(spec.pretrain))
    chosen = choose(jax.default_backend())
    model = source_model_for(spec, seed, plan=chosen, data_dir=data_dir, checkpoint_dir=checkpoint_dir)
    x = jax.device_put(np.asarray(images))
    features = apply_batched(model.model_key, "features", model.params, x)
    logits = apply_batched(model.model_key, "__call__", model.params, x)
    return np.asarray(features, np.float32), np.asarray(jax.nn.softmax(logits, -1), np.float32)
