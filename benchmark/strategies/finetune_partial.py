"""``finetune_partial``: the bottom ``k`` blocks stay as pretrained, the rest + a new head train.

Parameters:

* ``k`` (default 1): blocks ``block0 .. block{k-1}`` are frozen by the optimizer mask
  (``optax.set_to_zero``); ``k = 0`` is fine-tuning at one learning rate, ``k =`` the number
  of blocks trains only the head.
* ``copy_blocks`` (default -1 = all): only ``block0 .. block{copy_blocks-1}`` are copied from
  the source; the blocks above start from their fresh init. Yosinski et al. (NIPS 2014):
  AnB = ``{k: n, copy_blocks: n}``, AnB+ = ``{k: 0, copy_blocks: n}``.
"""

from __future__ import annotations

from typing import Any

from benchmark.errors import UserError
from benchmark.models import transplant
from benchmark.strategies.base import (
    FREEZE,
    TRAIN,
    FitContext,
    FitResult,
    Strategy,
    batch_size,
    block_index,
    label_params,
    labeled_data,
    require_labels,
    supervised_loss,
)


def labels(params: Any, hp: dict) -> Any:
    """``model/block{i}/*`` with ``i < k`` frozen; everything else trains."""
    k = hp["k"]

    def rule(path: str) -> str:
        i = block_index(path)
        return FREEZE if i is not None and i < k else TRAIN

    return label_params(params, rule)


def fit(ctx: FitContext) -> FitResult:
    require_labels(ctx, "finetune_partial")
    blocks = ctx.model.num_blocks
    if ctx.hp["k"] > blocks:
        raise UserError(f"k={ctx.hp['k']} but the backbone has only {blocks} blocks; use 0..{blocks}",
                        field="strategy_params.k")
    if ctx.hp["copy_blocks"] > blocks:
        raise UserError(f"copy_blocks={ctx.hp['copy_blocks']} but the backbone has only {blocks} "
                        f"blocks; use -1 (all) or 0..{blocks}", field="strategy_params.copy_blocks")
    params = {"model": transplant(ctx.source_params, ctx.init_params, keep_head=False,
                                  copy_blocks=ctx.hp["copy_blocks"])}
    hp = {**ctx.hp, "batch_size": batch_size(ctx.hp, ctx.num_labeled)}
    return ctx.trainer.train(params, labeled_data(ctx), ctx.key, loss=supervised_loss,
                             labels=labels, hp=hp, steps=hp["steps"])


def _validate(p: dict) -> None:
    k = p["k"]
    if not isinstance(k, int) or isinstance(k, bool) or k < 0:
        raise UserError(f"k must be a non-negative integer (frozen bottom blocks), got {k!r}",
                        field="strategy_params.k")
    c = p["copy_blocks"]
    if not isinstance(c, int) or isinstance(c, bool) or c < -1:
        raise UserError(f"copy_blocks must be -1 (all) or a non-negative integer, got {c!r}",
                        field="strategy_params.copy_blocks")


STRATEGY = Strategy(
    name="finetune_partial",
    fit=fit,
    summary="bottom k pretrained blocks frozen; the top blocks and a new head train",
    defaults={"k": 1, "copy_blocks": -1},
    uses_source=True,
    validate=_validate,
)
