"""``scratch``: random init, every parameter trains on the target's labelled budget.

The reference every gain is measured against (gain = acc(strategy) − acc(scratch)); the
"∅ → T" of the negative transfer gap (Wang et al., CVPR 2019). Never touches the source.
Training code (JAX) is imported inside the hook, so reading the declaration loads no JAX.
"""

from __future__ import annotations

from benchmark.strategies.declaration import Declaration, Needs, SearchDim

DECLARATION = Declaration(
    name="scratch",
    summary="random init; everything trains on the target labels",
    hooks=f"{__name__}:fit",
    needs=Needs(),
    search_space=(SearchDim("train.learning_rate", 0.005, 0.2, log=True),),
    comparison_arm="",
    batch_norm="trained (the backbones here have no batch norm)",
)


def fit(ctx):
    from benchmark.strategies.base import (
        all_train,
        batch_size,
        labeled_data,
        require_labels,
        supervised_loss,
    )

    require_labels(ctx, "scratch")
    hp = {**ctx.hp, "batch_size": batch_size(ctx.hp, ctx.num_labeled)}
    return ctx.trainer.train({"model": ctx.init_params}, labeled_data(ctx), ctx.key,
                             loss=supervised_loss, labels=all_train, hp=hp, steps=hp["steps"])
