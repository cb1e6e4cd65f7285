"""One cell, one seed: budget → source model → strategy.fit → evaluation on the target test split.

``run_cell`` (``benchmark.engine``) loads the data once per cell and calls :func:`run_seed`
per seed. :func:`run_seed` takes the loaded domains, so tests can hand it poisoned copies
(held-out labels, test split) and check that nothing a run computes changes.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from benchmark import models, strategies
from benchmark.cellspec import ALL_LABELS, CellSpec
from benchmark.config.schedule import resolve_pretrain, resolve_train
from benchmark.engine.budget import split_budget
from benchmark.engine.plan import Plan
from benchmark.engine.pretrain import SourceModel, get_source_model
from benchmark.engine.train import Trainer, apply_batched, compile_seconds
from benchmark.errors import UserError
from benchmark.results import STATUS_DIVERGED, STATUS_OK, RunResult
from benchmark.strategies.base import FitContext, FitResult

PAD_EXAMPLES = 2000
"""Examples per domain for ``extras["proxy_a_distance"]``."""


@dataclasses.dataclass
class CellData:
    """The domains one cell reads: target train (budget + unlabeled pool), target test, source train."""

    target_train: Any
    target_test: Any
    source_train: Any | None
    data_dir: str | os.PathLike | None = None


def resolve(spec: CellSpec) -> CellSpec:
    """``spec`` with every default filled in (strategy params, schedules); raises UserError."""
    strategy = strategies.get(spec.strategy)
    num_blocks = models.build(spec.backbone, spec.backbone_params, 2).num_blocks
    if strategy.uses_source and not spec.source:
        raise UserError(f"strategy {spec.strategy!r} needs a source dataset", field="source")
    if spec.labels_per_class != ALL_LABELS and spec.labels_per_class < strategy.min_labels_per_class:
        raise UserError(
            f"strategy {spec.strategy!r} needs at least {strategy.min_labels_per_class} target "
            f"label(s) per class, got labels_per_class={spec.labels_per_class}",
            field="labels_per_class")
    return dataclasses.replace(
        spec,
        strategy_params=strategy.resolve(spec.strategy_params, num_blocks=num_blocks),
        pretrain=resolve_pretrain(spec.pretrain) if strategy.uses_source else dict(spec.pretrain),
        train=resolve_train(spec.train),
    )


def load_domain(name: str, split: str, spec: CellSpec, data_dir: str | os.PathLike | None) -> Any:
    from benchmark.data import load

    return load(name, split=split, spec=spec.input_spec, data_dir=data_dir)


def load_cell_data(spec: CellSpec, data_dir: str | os.PathLike | None = None) -> CellData:
    """Target train/test (and the source train split when the strategy reads source images)."""
    strategy = strategies.get(spec.strategy)
    source = None
    if strategy.uses_source_data:
        source = load_domain(spec.source, "train", spec, data_dir)
    return CellData(load_domain(spec.target, "train", spec, data_dir),
                    load_domain(spec.target, "test", spec, data_dir), source, data_dir)


def source_model_for(spec: CellSpec, seed: int, *, plan: Plan, data: CellData | None = None,
                     data_dir: str | os.PathLike | None = None,
                     checkpoint_dir: str | os.PathLike | None = None) -> SourceModel:
    """The pretrained source model of ``spec`` (source, input spec, backbone, pretrain, seed)."""
    def load_train():
        if data is not None and data.source_train is not None:
            return data.source_train
        return load_domain(spec.source, "train", spec, data_dir)

    return get_source_model(spec.source, spec.input_spec, spec.backbone, dict(spec.backbone_params),
                            dict(spec.pretrain), seed, load_train=load_train, plan=plan,
                            checkpoint_dir=checkpoint_dir)


def run_seed(spec: CellSpec, seed: int, data: CellData, *, plan: Plan,
             checkpoint_dir: str | os.PathLike | None = None) -> tuple[RunResult, dict | None]:
    """Train and evaluate one seed. Returns the result and the trained model params (or None)."""
    spec = resolve(spec)
    strategy = strategies.get(spec.strategy)
    t0 = time.perf_counter()
    c0 = compile_seconds()
    train, test = data.target_train, data.target_test
    num_classes = int(train.num_classes)
    labeled, unlabeled = split_budget(np.asarray(train.labels), num_classes, spec.labels_per_class, seed)

    source, pretrain_s = None, 0.0
    if strategy.uses_source:
        source = source_model_for(spec, seed, plan=plan, data=data, data_dir=data.data_dir,
                                  checkpoint_dir=checkpoint_dir)
        pretrain_s = source.pretrain_s
    extras: dict[str, Any] = {"labeled": int(labeled.size), "unlabeled": int(unlabeled.size)}
    if source is not None and source.diverged_step is not None:
        return _diverged(spec, seed, source.diverged_step, t0, c0, pretrain_s, plan,
                         {**extras, "diverged_in": "pretrain"}), None

    model_key = (spec.backbone, tuple(sorted(spec.backbone_params.items())), num_classes)
    # Pad to the train split's size: the budget, the pool and their union all fit, so every
    # budget of this target runs the same compiled kernels.
    trainer = Trainer(model_key, plan, pad_to=len(train.labels))
    key = jax.random.key(seed)
    images = np.asarray(train.images)
    empty = np.zeros((0, *images.shape[1:]), images.dtype)
    ctx = FitContext(
        model=trainer.model,
        hp={**spec.train, **spec.strategy_params},
        init_params=models.init_params(trainer.model, jax.random.fold_in(key, 1), spec.input_spec.shape),
        source_params=source.params if source else None,
        source_num_classes=source.num_classes if source else None,
        shared_label_space=bool(source) and _same_classes(source, train),
        labeled_images=jax.device_put(images[labeled]),
        labeled_labels=jax.device_put(np.asarray(train.labels, np.int32)[labeled]),
        unlabeled_images=jax.device_put(images[unlabeled] if strategy.uses_unlabeled_target else empty),
        source_images=jax.device_put(np.asarray(data.source_train.images)) if strategy.uses_source_data else None,
        source_labels=(jax.device_put(np.asarray(data.source_train.labels, np.int32))
                       if strategy.uses_source_data else None),
        key=jax.random.fold_in(key, 2),
        trainer=trainer,
    )
    fit: FitResult = strategies.fit_hook(spec.strategy)(ctx)
    extras.update(fit.extras)
    extras["param_count"] = models.param_count(fit.params["model"])
    if fit.diverged_step is not None:
        result = _diverged(spec, seed, fit.diverged_step, t0, c0, pretrain_s, plan, extras)
        result.curve = fit.curve
        return result, None

    if strategy.records_domain_gap:
        extras["proxy_a_distance"] = _proxy_a_distance(model_key, fit.params["model"], ctx, seed)
    logits = apply_batched(model_key, "__call__", fit.params["model"], jax.device_put(np.asarray(test.images)))
    predictions = np.asarray(jnp.argmax(logits, -1))
    truth = np.asarray(test.labels)
    per_class = [float(np.mean(predictions[truth == c] == c)) if np.any(truth == c) else float("nan")
                 for c in range(num_classes)]
    accuracy = float(np.mean(predictions == truth))
    # A run can collapse to guessing without a NaN (loss stuck at ln K): it stays "ok", but the
    # report lists it, so a broken baseline cannot pass as a result (see analysis.stats).
    from benchmark.analysis.stats import above_chance_p

    extras["n_test"] = int(len(truth))
    extras["above_chance_p"] = above_chance_p(accuracy, len(truth), num_classes)
    result = RunResult(
        seed=int(seed), status=STATUS_OK, accuracy=accuracy,
        per_class_accuracy=per_class, curve=fit.curve, wall_s=time.perf_counter() - t0,
        compile_s=compile_seconds() - c0, pretrain_s=pretrain_s, backend=jax.default_backend(),
        device=str(jax.devices()[0].device_kind), plan=plan.to_dict(), extras=extras,
    )
    return result, fit.params["model"]


def _proxy_a_distance(model_key: tuple, params: dict, ctx: FitContext, seed: int) -> float:
    """PAD of the final features: source train vs the unlabeled target pool (never test data)."""
    from benchmark.analysis.gap import proxy_a_distance

    rng = np.random.default_rng([int(seed), 0xAD])
    target = ctx.unlabeled_images if ctx.unlabeled_images.shape[0] else ctx.labeled_images

    def feats(images: jax.Array) -> np.ndarray:
        idx = np.sort(rng.permutation(images.shape[0])[:PAD_EXAMPLES])
        return np.asarray(apply_batched(model_key, "features", params, images[idx]))

    return float(proxy_a_distance(feats(ctx.source_images), feats(target), seed=int(seed)))


def _same_classes(source: SourceModel, target: Any) -> bool:
    return source.num_classes == int(target.num_classes) and list(source.class_names) == list(target.class_names)


def _diverged(spec: CellSpec, seed: int, step: int, t0: float, c0: float, pretrain_s: float,
              plan: Plan, extras: dict) -> RunResult:
    return RunResult(
        seed=int(seed), status=STATUS_DIVERGED, accuracy=None, diverged_step=int(step),
        wall_s=time.perf_counter() - t0, compile_s=compile_seconds() - c0, pretrain_s=pretrain_s,
        backend=jax.default_backend(), device=str(jax.devices()[0].device_kind),
        plan=plan.to_dict(), extras=extras,
    )
