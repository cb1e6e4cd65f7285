"""``finetune_full``: pretrained blocks + a new head; everything trains, the backbone slower.

Parameters: ``backbone_lr_scale`` (0 < s ≤ 1, default 0.1): the backbone's learning rate is
``s × learning_rate``, the new head's is ``learning_rate`` (the usual discriminative
fine-tuning of Howard & Ruder 2018 / Yosinski et al. 2014 "fine-tuned" transfer).
Training code (JAX) is imported inside the hooks, so reading the declaration loads no JAX.
"""

from __future__ import annotations

from benchmark.strategies.declaration import Declaration, Needs, Param, SearchDim

BACKBONE_LR_SCALE = Param(float, 0.1, "backbone learning rate as a fraction of the head's",
                          minimum=0.0, exclusive_minimum=True, maximum=1.0)

DECLARATION = Declaration(
    name="finetune_full",
    summary="pretrained backbone + new head, all trained; backbone at a lower learning rate",
    hooks=f"{__name__}:fit",
    params={"backbone_lr_scale": BACKBONE_LR_SCALE},
    needs=Needs(source_model=True),
    search_space=(SearchDim("train.learning_rate", 0.005, 0.2, log=True),
                  SearchDim("backbone_lr_scale", 0.01, 1.0, log=True)),
)


def labels(params, hp):
    """The new head at the base rate, every other model parameter at the backbone rate."""
    from benchmark.strategies.base import BACKBONE, TRAIN, label_params

    return label_params(params, lambda p: TRAIN if p.startswith("model/head/") else BACKBONE)


def fit(ctx):
    from benchmark.models import transplant
    from benchmark.strategies.base import (
        BACKBONE,
        batch_size,
        labeled_data,
        require_labels,
        supervised_loss,
    )

    require_labels(ctx, "finetune_full")
    params = {"model": transplant(ctx.source_params, ctx.init_params, keep_head=False)}
    hp = {**ctx.hp, "batch_size": batch_size(ctx.hp, ctx.num_labeled)}
    return ctx.trainer.train(params, labeled_data(ctx), ctx.key, loss=supervised_loss,
                             labels=labels, hp=hp, steps=hp["steps"],
                             lr_scales={BACKBONE: hp["backbone_lr_scale"]})
