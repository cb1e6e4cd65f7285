"""``scratch``: random init, every parameter trains on the target's labelled budget.

The reference every gain is measured against (gain = acc(strategy) − acc(scratch)); the
"∅ → T" of the negative transfer gap (Wang et al., CVPR 2019). Never touches the source.
"""

from __future__ import annotations

from benchmark.strategies.base import (
    FitContext,
    FitResult,
    Strategy,
    all_train,
    batch_size,
    labeled_data,
    require_labels,
    supervised_loss,
)


def fit(ctx: FitContext) -> FitResult:
    require_labels(ctx, "scratch")
    hp = {**ctx.hp, "batch_size": batch_size(ctx.hp, ctx.num_labeled)}
    return ctx.trainer.train({"model": ctx.init_params}, labeled_data(ctx), ctx.key,
                             loss=supervised_loss, labels=all_train, hp=hp, steps=hp["steps"])


STRATEGY = Strategy(
    name="scratch",
    fit=fit,
    summary="random init; everything trains on the target labels",
)
