"""``finetune_full``: pretrained blocks + a new head; everything trains, the backbone slower.

Parameters: ``backbone_lr_scale`` (0 < s ≤ 1, default 0.1): the backbone's learning rate is
``s × learning_rate``, the new head's is ``learning_rate`` (the usual discriminative
fine-tuning of Howard & Ruder 2018 / Yosinski et al. 2014 "fine-tuned" transfer).
"""

from __future__ import annotations

from typing import Any

from benchmark.errors import UserError
from benchmark.models import transplant
from benchmark.strategies.base import (
    BACKBONE,
    TRAIN,
    FitContext,
    FitResult,
    Strategy,
    batch_size,
    label_params,
    labeled_data,
    require_labels,
    supervised_loss,
)


def labels(params: Any, hp: dict) -> Any:
    """The new head at the base rate, every other model parameter at the backbone rate."""
    return label_params(params, lambda p: TRAIN if p.startswith("model/head/") else BACKBONE)


def fit(ctx: FitContext) -> FitResult:
    require_labels(ctx, "finetune_full")
    params = {"model": transplant(ctx.source_params, ctx.init_params, keep_head=False)}
    hp = {**ctx.hp, "batch_size": batch_size(ctx.hp, ctx.num_labeled)}
    return ctx.trainer.train(params, labeled_data(ctx), ctx.key, loss=supervised_loss,
                             labels=labels, hp=hp, steps=hp["steps"])


def _validate(p: dict) -> None:
    s = p["backbone_lr_scale"]
    if not isinstance(s, int | float) or not 0 < s <= 1:
        raise UserError(f"backbone_lr_scale must be in (0, 1], got {s!r}",
                        field="strategy_params.backbone_lr_scale")


STRATEGY = Strategy(
    name="finetune_full",
    fit=fit,
    summary="pretrained backbone + new head, all trained; backbone at a lower learning rate",
    defaults={"backbone_lr_scale": 0.1},
    uses_source=True,
    validate=_validate,
)
