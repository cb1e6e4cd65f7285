"""``self_training``: pseudo-labels on the unlabeled target pool, in rounds (Lee 2013; Xie et al. 2020).

Start from the pretrained backbone (keeping the source head when source and target share their
classes, else a new head). Training is split into phases of ``steps // phases`` steps: with
target labels, phase 0 fine-tunes on the budget; then each of ``rounds`` phases predicts the
unlabeled pool with the current model, keeps the predictions whose softmax confidence is at
least ``confidence_threshold`` as pseudo-labels, and trains on labelled batches + pseudo-labelled
batches (weight ``pseudo_weight``). Pseudo-labels come from the model's own predictions only:
no target label beyond the budget is ever read (the unlabeled pool reaches here without labels).

Parameters: ``rounds`` (3), ``confidence_threshold`` (0.9), ``pseudo_weight`` (1.0),
``backbone_lr_scale`` (0.1, as in ``finetune_full``). Measured on font_digits → font_digits_m
(LeNet-16, 400 steps, seed 0): a backbone at the full rate drifts on its own pseudo-labels
(0.52 with no target labels, 0.31 with 10 per class, vs 0.61 source-only); at 0.1 it keeps
0.61 and 0.59.
Training code (JAX) is imported inside the hooks, so reading the declaration loads no JAX.
"""

from __future__ import annotations

from benchmark.strategies.declaration import Declaration, Needs, Param, SearchDim
from benchmark.strategies.finetune_full import BACKBONE_LR_SCALE

DECLARATION = Declaration(
    name="self_training",
    keeps_source_head=True,
    summary="fine-tune, then rounds of confident pseudo-labels on the unlabeled target pool",
    hooks=f"{__name__}:fit",
    params={
        "rounds": Param(int, 3, "pseudo-labelling rounds", minimum=1, maximum=100),
        "confidence_threshold": Param(float, 0.9, "softmax confidence a pseudo-label needs",
                                      minimum=0.0, maximum=1.0),
        "pseudo_weight": Param(float, 1.0, "weight of the pseudo-labelled loss", minimum=0.0, maximum=1e3),
        "backbone_lr_scale": BACKBONE_LR_SCALE,
    },
    needs=Needs(source_model=True, unlabeled_target=True, min_labels_per_class=0),
    search_space=(SearchDim("train.learning_rate", 0.005, 0.2, log=True),
                  SearchDim("confidence_threshold", 0.5, 0.99)),
)


def labels(params, hp):
    from benchmark.strategies.base import BACKBONE, TRAIN, label_params

    return label_params(params, lambda p: TRAIN if p.startswith("model/head/") else BACKBONE)


def pseudo_label(logits, threshold):
    """``(pseudo_labels int32[N], mask float32[N])``: argmax where max softmax ≥ threshold."""
    import jax
    import jax.numpy as jnp

    probs = jax.nn.softmax(logits, -1)
    return jnp.argmax(probs, -1).astype(jnp.int32), (jnp.max(probs, -1) >= threshold).astype(jnp.float32)


def pseudo_loss(params, data, key, step, *, model, hp):
    """Labelled cross-entropy (if any labels) + ``pseudo_weight`` × pseudo-labelled cross-entropy.

    The pseudo batch is drawn among confident examples only (probabilities ∝ mask; uniformly
    over the pool when none is confident, then with weight 0). Padded pool rows (the engine's,
    mask 0) get probability 0 either way.
    """
    import jax
    import jax.numpy as jnp
    import optax

    from benchmark.strategies.base import cross_entropy, num_examples, sample_indices

    key_l, key_u = jax.random.split(key)
    mask = data["pseudo_mask"]
    count = jnp.sum(mask)
    n = num_examples(data, "pseudo_mask")
    uniform = (jnp.arange(mask.shape[0]) < n) / jnp.asarray(n, jnp.float32)
    p = jnp.where(count > 0, mask / jnp.maximum(count, 1.0), uniform)
    j = jax.random.choice(key_u, mask.shape[0], (hp["batch_size"],), p=p)
    logits_u = model.apply({"params": params["model"]}, data["unlabeled"][j])
    per_example = optax.softmax_cross_entropy_with_integer_labels(logits_u, data["pseudo_labels"][j])
    loss_u = jnp.mean(per_example * mask[j]) * (count > 0)
    loss = hp["pseudo_weight"] * loss_u
    metrics = {"pseudo_loss": loss_u}
    if hp["has_labels"]:
        idx = sample_indices(key_l, num_examples(data, "labels"), hp["batch_size"])
        logits_l = model.apply({"params": params["model"]}, data["images"][idx])
        loss_l, accuracy = cross_entropy(logits_l, data["labels"][idx])
        loss = loss + loss_l
    else:
        accuracy = jnp.mean(jnp.argmax(logits_u, -1) == data["pseudo_labels"][j])
    metrics.update(loss=loss, accuracy=accuracy)
    return loss, metrics


def fit(ctx):
    import jax
    import jax.numpy as jnp

    from benchmark.errors import UserError
    from benchmark.models import transplant
    from benchmark.strategies.base import (
        BACKBONE,
        FitResult,
        batch_size,
        labeled_data,
        supervised_loss,
    )

    has_labels = ctx.num_labeled > 0
    if not has_labels and not ctx.shared_label_space:
        raise UserError("self_training without target labels needs a source with the target's classes",
                        field="labels_per_class")
    params = {"model": transplant(ctx.source_params, ctx.init_params, keep_head=ctx.shared_label_space)}
    pool = ctx.unlabeled_images
    rounds = ctx.hp["rounds"] if pool.shape[0] > 0 else 0
    phases = rounds + (1 if has_labels else 0)
    total = ctx.hp["steps"]
    per_phase = max(1, total // max(phases, 1))
    n = max(ctx.num_labeled, 1)
    hp = {**ctx.hp, "batch_size": batch_size(ctx.hp, n if rounds == 0 else max(n, pool.shape[0])),
          "has_labels": has_labels, "total_steps": total}
    scales = {BACKBONE: hp["backbone_lr_scale"]}
    curve: list[dict[str, float]] = []
    counts: list[int] = []
    step = 0
    if has_labels:
        fit0 = ctx.trainer.train(params, labeled_data(ctx), ctx.key, loss=supervised_loss,
                                 labels=labels, hp=hp, steps=per_phase if rounds else total,
                                 lr_scales=scales)
        curve += fit0.curve
        if fit0.diverged_step is not None:
            return fit0
        params, step = fit0.params, step + (per_phase if rounds else total)
    for r in range(rounds):
        pseudo, mask = pseudo_label(ctx.trainer.logits(params["model"], pool), ctx.hp["confidence_threshold"])
        counts.append(int(jnp.sum(mask)))
        data = {"unlabeled": pool, "pseudo_labels": pseudo, "pseudo_mask": mask}
        if has_labels:
            data.update(labeled_data(ctx))
        steps = per_phase if r < rounds - 1 else total - step
        fit_r = ctx.trainer.train(params, data, jax.random.fold_in(ctx.key, r + 1), loss=pseudo_loss,
                                  labels=labels, hp=hp, steps=steps, first_step=step, lr_scales=scales)
        curve += fit_r.curve
        params, step = fit_r.params, step + steps
        if fit_r.diverged_step is not None:
            return FitResult(params, curve, fit_r.diverged_step, {**fit_r.extras, "pseudo_labels": counts})
    return FitResult(params, curve, None, {"pseudo_labels": counts})
