"""``finetune_partial``: the bottom ``k`` blocks stay as pretrained, the rest + a new head train.

Parameters:

* ``k`` (default 1): blocks ``block0 .. block{k-1}`` are frozen by the optimizer mask
  (``optax.set_to_zero``); ``k = 0`` is fine-tuning at one learning rate, ``k =`` the number
  of blocks trains only the head.
* ``copy_blocks`` (default -1 = all): only ``block0 .. block{copy_blocks-1}`` are copied from
  the source; the blocks above start from their fresh init. Yosinski et al. (NIPS 2014):
  AnB = ``{k: n, copy_blocks: n}``, AnB+ = ``{k: 0, copy_blocks: n}``.

Both bounded by the backbone's number of blocks when the suite is validated.
Training code (JAX) is imported inside the hooks, so reading the declaration loads no JAX.
"""

from __future__ import annotations

from benchmark.strategies.declaration import Declaration, Needs, Param, SearchDim

DECLARATION = Declaration(
    name="finetune_partial",
    summary="bottom k pretrained blocks frozen; the top blocks and a new head train",
    hooks=f"{__name__}:fit",
    params={
        "k": Param(int, 1, "frozen bottom blocks", minimum=0, role="method", max_blocks_offset=0),
        "copy_blocks": Param(int, -1, "bottom blocks copied from the source (-1: all)", minimum=-1,
                             role="method", max_blocks_offset=0, omit_in_label=(-1,)),
    },
    needs=Needs(source_model=True),
    search_space=(SearchDim("train.learning_rate", 0.005, 0.2, log=True),),
)


def labels(params, hp):
    """``model/block{i}/*`` with ``i < k`` frozen; everything else trains."""
    from benchmark.strategies.base import FREEZE, TRAIN, block_index, label_params

    k = hp["k"]

    def rule(path: str) -> str:
        i = block_index(path)
        return FREEZE if i is not None and i < k else TRAIN

    return label_params(params, rule)


def fit(ctx):
    from benchmark.models import transplant
    from benchmark.strategies.base import batch_size, labeled_data, require_labels, supervised_loss

    require_labels(ctx, "finetune_partial")
    params = {"model": transplant(ctx.source_params, ctx.init_params, keep_head=False,
                                  copy_blocks=ctx.hp["copy_blocks"])}
    hp = {**ctx.hp, "batch_size": batch_size(ctx.hp, ctx.num_labeled)}
    return ctx.trainer.train(params, labeled_data(ctx), ctx.key, loss=supervised_loss,
                             labels=labels, hp=hp, steps=hp["steps"])
