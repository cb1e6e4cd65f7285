"""``lp_ft``: linear probe, then full fine-tuning from the probed head (LP-FT).

Kumar, Raghunathan, Jones, Ma & Liang (ICLR 2022), "Fine-Tuning can Distort Pretrained Features
and Underperform Out-of-Distribution": fine-tuning from a random head changes the
pretrained features a lot while the head is still bad (their feature-distortion argument);
training the head first on frozen features (linear probing), then fine-tuning everything from
that head, distorts them less.

Phase 1 (steps ``0 .. p−1``, ``p = round(probe_fraction × train.steps)``, at least 1 and at most
``steps − 1``): ``linear_probe``'s recipe, a new head on the pretrained features computed once,
the backbone bit-identical. Phase 2 (steps ``p .. steps−1``): ``finetune_full``'s recipe (head at
the base rate, backbone at ``backbone_lr_scale``) starting from the probed head. So at equal
``train.steps`` LP-FT differs from ``finetune_full`` only by the probe first. One learning-rate
schedule spans both phases (``total_steps = train.steps``); each phase has a fresh optimizer
state. Training code (JAX) is imported inside the hooks, so reading the declaration loads no JAX.
"""

from __future__ import annotations

from benchmark.strategies.declaration import Declaration, Needs, Param, SearchDim
from benchmark.strategies.finetune_full import BACKBONE_LR_SCALE

DECLARATION = Declaration(
    name="lp_ft",
    summary="linear probe on frozen features, then full fine-tuning from the probed head (Kumar et al. 2022)",
    hooks=f"{__name__}:fit",
    params={
        "probe_fraction": Param(float, 0.5, "fraction of train.steps spent on the linear probe",
                                minimum=0.0, exclusive_minimum=True, maximum=0.99),
        "backbone_lr_scale": BACKBONE_LR_SCALE,
    },
    needs=Needs(source_model=True),
    search_space=(SearchDim("train.learning_rate", 0.005, 0.2, log=True),
                  SearchDim("probe_fraction", 0.1, 0.9),
                  SearchDim("backbone_lr_scale", 0.01, 1.0, log=True)),
)


def probe_steps(steps: int, fraction: float) -> int:
    """Steps of the probe phase: ``round(fraction × steps)`` within ``[1, steps − 1]``."""
    from benchmark.errors import UserError

    if steps < 2:
        raise UserError(f"lp_ft needs train.steps ≥ 2 (a probe step and a fine-tuning step), got {steps}",
                        field="train.steps")
    return min(max(1, round(fraction * steps)), steps - 1)


def fit(ctx):
    from benchmark.models import transplant
    from benchmark.strategies import finetune_full, linear_probe
    from benchmark.strategies.base import (
        BACKBONE,
        FitResult,
        batch_size,
        labeled_data,
        require_labels,
        supervised_loss,
    )

    require_labels(ctx, "lp_ft")
    params = {"model": transplant(ctx.source_params, ctx.init_params, keep_head=False)}
    total = ctx.hp["steps"]
    p = probe_steps(total, ctx.hp["probe_fraction"])
    hp = {**ctx.hp, "batch_size": batch_size(ctx.hp, ctx.num_labeled), "total_steps": total}
    features = ctx.trainer.features(params["model"], ctx.labeled_images)
    probe = ctx.trainer.train(params, {"features": features, "labels": ctx.labeled_labels}, ctx.key,
                              loss=linear_probe.head_loss, labels=linear_probe.labels, hp=hp, steps=p)
    extras = {"probe_steps": p}
    if probe.curve:
        extras["probe_train_accuracy"] = probe.curve[-1]["accuracy"]
    if probe.diverged_step is not None:
        return FitResult(probe.params, probe.curve, probe.diverged_step, {**probe.extras, **extras})
    tuned = ctx.trainer.train(probe.params, labeled_data(ctx), ctx.key, loss=supervised_loss,
                              labels=finetune_full.labels, hp=hp, steps=total - p, first_step=p,
                              lr_scales={BACKBONE: hp["backbone_lr_scale"]})
    return FitResult(tuned.params, probe.curve + tuned.curve, tuned.diverged_step, {**tuned.extras, **extras})
