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
from benchmark.engine import selection
from benchmark.engine.budget import split_budget
from benchmark.engine.forgetting import measure_forgetting
from benchmark.engine.plan import Plan, usable_cores
from benchmark.engine.pretrain import SourceModel, get_source_model
from benchmark.engine.train import Trainer, apply_batched, compile_seconds
from benchmark.errors import UserError
from benchmark.pretrained import sources as pretrained_sources
from benchmark.results import STATUS_DIVERGED, STATUS_FAILED, STATUS_OK, RunResult
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
    source_test: Any | None = None
    """The source's held-out split: the source model's own accuracy, and ``source_val``."""


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
    source = source_test = None
    # Source train: DANN's data and the forgetting probe; test: the source's own accuracy.
    if strategy.uses_source and not pretrained_sources.is_pretrained(spec.source):  # imagenet: no images
        source = load_domain(spec.source, "train", spec, data_dir)
        source_test = load_domain(spec.source, "test", spec, data_dir)
    return CellData(load_domain(spec.target, "train", spec, data_dir),
                    load_domain(spec.target, "test", spec, data_dir), source, data_dir, source_test)


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
    """Train (every sweep trial), select by the cell's rule, evaluate the choice on the target
    test split once. Returns the result and the chosen model's params (or None)."""
    spec = resolve(spec)
    strategy = strategies.get(spec.strategy)
    t0 = time.perf_counter()
    c0 = compile_seconds()
    train, test = data.target_train, data.target_test
    num_classes = int(train.num_classes)
    train_labels = np.asarray(train.labels)
    budget, unlabeled = split_budget(train_labels, num_classes, spec.labels_per_class, seed)
    labeled, val = selection.split_validation(train_labels, budget, spec.validation, seed)

    source, pretrain_s = None, 0.0
    extras: dict[str, Any] = {"labeled": int(labeled.size), "validation": int(val.size),
                              "unlabeled": int(unlabeled.size)}
    if strategy.uses_source:
        source = source_model_for(spec, seed, plan=plan, data=data, data_dir=data.data_dir,
                                  checkpoint_dir=checkpoint_dir)
        pretrain_s = source.pretrain_s
    if source is not None and source.diverged_step is not None:
        return _diverged(spec, seed, source.diverged_step, t0, c0, pretrain_s, plan,
                         {**extras, "diverged_in": "pretrain",
                          "diverged_reason": source.diverged_reason}), None
    if source is not None and source.pretrained_weights:
        extras.update(source_accuracy=None, source_weights_sha256=source.pretrained_weights,
                      source_accuracy_note=pretrained_sources.get(spec.source).not_measured)
    if source is not None and data.source_test is not None:
        failed = _check_source(source, spec.source, data.source_test, seed, extras)
        if failed:
            return _failed(spec, seed, failed, t0, c0, pretrain_s, plan, extras), None

    model_key = (spec.backbone, tuple(sorted(spec.backbone_params.items())), num_classes)
    # Pad to the train split's size: the budget, the pool and their union all fit, so every
    # budget of this target runs the same compiled kernels.
    trainer = Trainer(model_key, plan, pad_to=len(train.labels))
    if source is not None and source.pretrained_weights:  # frozen-backbone features cached on disk
        from benchmark.engine.features_cache import FeatureCachingTrainer

        trainer = FeatureCachingTrainer(model_key, plan, pad_to=len(train.labels), source_params=source.params)
    key = jax.random.key(seed)
    images = np.asarray(train.images)
    empty = np.zeros((0, *images.shape[1:]), images.dtype)
    shared = bool(source) and _same_classes(source, train)
    rule = selection.rule_for(spec.selection, int(budget.size))
    base = dict(
        model=trainer.model,
        init_params=models.init_params(trainer.model, jax.random.fold_in(key, 1), spec.input_spec.shape),
        source_params=source.params if source else None,
        source_num_classes=source.num_classes if source else None,
        shared_label_space=shared,
        labeled_images=jax.device_put(images[labeled]),
        labeled_labels=jax.device_put(train_labels.astype(np.int32)[labeled]),
        unlabeled_images=jax.device_put(images[unlabeled] if strategy.uses_unlabeled_target else empty),
        source_images=jax.device_put(np.asarray(data.source_train.images)) if strategy.uses_source_data else None,
        source_labels=(jax.device_put(np.asarray(data.source_train.labels, np.int32))
                       if strategy.uses_source_data else None),
        key=jax.random.fold_in(key, 2),
        trainer=trainer,
        val_images=jax.device_put(images[val]),
        val_labels=jax.device_put(train_labels.astype(np.int32)[val]),
    )
    trials = selection.candidates(strategy, spec.strategy_params, spec.train, spec.selection)
    runs, scores = [], []
    for params_t, train_t in trials:
        params_t = strategy.resolve(params_t)
        ctx = FitContext(hp={**resolve_train(train_t), **params_t}, **base)
        fit: FitResult = strategies.fit_hook(spec.strategy)(ctx)
        ok = fit.diverged_step is None
        score = (_score(rule, model_key, fit.params["model"], data, train_labels, val, unlabeled,
                        images, seed, shared) if ok and len(trials) > 1 else None)
        scores.append(score)
        runs.append((fit, params_t, train_t))
    # The best score among trials that did not diverge (the first on ties); all diverged: trial 0.
    finite = [i for i, sc in enumerate(scores) if sc is not None]
    best = max(finite, key=lambda i: (scores[i], -i)) if finite else 0
    if len(trials) == 1 or not finite:
        best = next((i for i, (f, _, _) in enumerate(runs) if f.diverged_step is None), 0)
    fit, params_t, train_t = runs[best]
    extras.update(fit.extras)
    extras["selection_rule"] = rule if len(trials) > 1 else "fixed schedule (no selection)"
    if len(trials) > 1:
        extras.update(trials=len(trials), trial_scores=scores, chosen_trial=best, chosen_params=params_t,
                      chosen_train={k: v for k, v in train_t.items() if spec.train.get(k) != v})
    extras["param_count"] = models.param_count(fit.params["model"])
    if fit.diverged_step is not None:
        result = _diverged(spec, seed, fit.diverged_step, t0, c0, pretrain_s, plan, extras)
        result.curve = fit.curve
        return result, None
    if val.size:
        extras["val_accuracy"] = _accuracy(model_key, fit.params["model"], images[val], train_labels[val])
    if shared and data.source_test is not None:  # training-domain validation, for source_val
        idx = selection.subsample(len(data.source_test.labels), seed)
        extras["source_val_accuracy"] = _accuracy(model_key, fit.params["model"],
                                                  np.asarray(data.source_test.images)[idx],
                                                  np.asarray(data.source_test.labels)[idx])

    if source is not None and data.source_train is not None and data.source_test is not None:
        extras.update(measure_forgetting(seed, source, fit.params["model"], model_key,
                                         data.source_train, data.source_test,
                                         kept_head=shared and strategy.keeps_source_head))
    if strategy.records_domain_gap:
        extras["proxy_a_distance"] = _proxy_a_distance(model_key, fit.params["model"], ctx, seed)
    logits = trainer.logits(fit.params["model"], jax.device_put(np.asarray(test.images)))
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
        device=str(jax.devices()[0].device_kind), plan=plan_record(plan), extras=extras,
    )
    return result, fit.params["model"]


def plan_record(plan: Plan) -> dict[str, Any]:
    """What a run records of how it executed: the plan, and on CPU the threads XLA's intra-op
    pool has (its cores at start-up: a kernel's float rounding follows how many split it)."""
    threads = usable_cores() if jax.default_backend() == "cpu" else None
    return {**plan.to_dict(), "intra_op_threads": threads}


SOURCE_CHANCE_P = 1e-3
"""A source model whose accuracy on its own held-out split is not above chance at this
one-sided binomial p has failed: its runs are ``failed``, never silently "transfer"."""


def _check_source(source: SourceModel, name: str, source_test: Any, seed: int, extras: dict) -> str | None:
    """Record the source model's accuracy on its own task's held-out split; the reason if it failed.

    "Its own task" is the one its train labels define: a ``label_permutation`` source is scored
    against the permuted held-out labels. A source whose labels are random by design
    (``label_shuffle``, or ``label_noise`` at or above (K−1)/K) has no task to be at chance on:
    its accuracy is recorded but not judged.
    """
    from benchmark.analysis.stats import above_chance_p
    from benchmark.data.spec import parse_name
    from benchmark.data.transforms import label_permutation, labels_random_by_design

    idx = selection.subsample(len(source_test.labels), seed)
    k = int(source.num_classes)
    ops = parse_name(name).label_ops
    random_by_design = labels_random_by_design(ops, k)
    memo = ("own task", len(source_test.labels), int(seed), name)
    if memo not in source.evaluations:  # every strategy of a cell shares the seed's source model
        labels = np.asarray(source_test.labels)[idx]
        for op, value in ops:
            if op == "label_permutation":
                labels = label_permutation(labels, k, int(value))
        acc = _accuracy(source.model_key, source.params, np.asarray(source_test.images)[idx], labels)
        source.evaluations[memo] = (acc, above_chance_p(acc, int(idx.size), k))
    acc, p = source.evaluations[memo]
    extras.update(source_accuracy=acc, source_n_test=int(idx.size), source_above_chance_p=p)
    if random_by_design:
        extras["source_check"] = "not judged: the source's train labels are random by design"
        return None
    if p >= SOURCE_CHANCE_P:
        return (f"failed source: the source model scores {acc:.3f} on its own held-out split "
                f"({k} classes, p = {p:.2g} against chance); rerun it with another "
                "seed or pretrain schedule, or leave this source out")
    return None


def _accuracy(model_key: tuple, params: dict, images: np.ndarray, labels: np.ndarray) -> float:
    if len(labels) == 0:
        return float("nan")
    logits = apply_batched(model_key, "__call__", params, jax.device_put(np.asarray(images)))
    return float(np.mean(np.asarray(jnp.argmax(logits, -1)) == np.asarray(labels)))


def _score(rule: str, model_key: tuple, params: dict, data: CellData, train_labels: np.ndarray,
           val: np.ndarray, unlabeled: np.ndarray, images: np.ndarray, seed: int, shared: bool) -> float:
    """The selection score of one trial under ``rule`` (never the target test split)."""
    if rule == "target_val":
        if val.size == 0:
            raise UserError("model selection by target_val needs a validation split of the budget; set "
                            "validation.fraction > 0 or sweep.rule: source_val", field="sweep.rule")
        return _accuracy(model_key, params, images[val], train_labels[val])
    if rule == "oracle":
        idx = unlabeled[selection.subsample(unlabeled.size, seed)]
        return _accuracy(model_key, params, images[idx], train_labels[idx])
    if not shared or data.source_test is None:
        raise UserError("model selection by source_val needs a model that predicts the source's classes "
                        "(source and target share them)", field="sweep.rule")
    idx = selection.subsample(len(data.source_test.labels), seed)
    return _accuracy(model_key, params, np.asarray(data.source_test.images)[idx],
                     np.asarray(data.source_test.labels)[idx])


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


def _failed(spec: CellSpec, seed: int, error: str, t0: float, c0: float, pretrain_s: float,
            plan: Plan, extras: dict) -> RunResult:
    return RunResult(
        seed=int(seed), status=STATUS_FAILED, accuracy=None, error=error,
        wall_s=time.perf_counter() - t0, compile_s=compile_seconds() - c0, pretrain_s=pretrain_s,
        backend=jax.default_backend(), device=str(jax.devices()[0].device_kind),
        plan=plan_record(plan), extras=extras,
    )


def _diverged(spec: CellSpec, seed: int, step: int, t0: float, c0: float, pretrain_s: float,
              plan: Plan, extras: dict) -> RunResult:
    return RunResult(
        seed=int(seed), status=STATUS_DIVERGED, accuracy=None, diverged_step=int(step),
        wall_s=time.perf_counter() - t0, compile_s=compile_seconds() - c0, pretrain_s=pretrain_s,
        backend=jax.default_backend(), device=str(jax.devices()[0].device_kind),
        plan=plan_record(plan), extras=extras,
    )
