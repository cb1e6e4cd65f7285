"""``gradual_unfreeze``: unfreeze one block at a time from the top (ULMFiT).

Howard & Ruder (ACL 2018), § 3.3 "Gradual unfreezing": first only the last layer trains, then
the next lower frozen layer is unfrozen every epoch until all layers train. Here the last layer
is the new head and the layers below it are the backbone's blocks: training runs in
``m + 1`` phases of ``s = steps_per_unfreeze`` steps (the last phase runs to ``train.steps``).
Phase ``j`` (``j = 0 .. m``) trains the head and the top ``j`` blocks; block
``n − j`` is unfrozen at step ``j × s``. ``m = unfreeze_blocks`` (``-1``: every block);
blocks below ``n − m`` stay as pretrained throughout.

Parameters: ``unfreeze_blocks`` (at most the backbone's number of blocks: a longer schedule is
refused when the suite is checked), ``steps_per_unfreeze`` (0: ``train.steps`` split evenly into
the ``m + 1`` phases; otherwise ``m × s`` must be below ``train.steps``), ``backbone_lr_scale``
(the unfrozen blocks' rate as a fraction of the head's, as in ``finetune_full``).

A frozen block has learning-rate factor 0 (every block is its own optimizer label, its factor a
traced ``lr_scales`` entry): its update is exactly zero, so it stays bit-identical, and every
phase runs on the one compiled kernel. Each phase is a ``Trainer.train`` call continuing the
global step count (``first_step``) with a fresh optimizer state (momentum starts at 0 when a
block joins). Training code (JAX) is imported inside the hooks, so reading the declaration
loads no JAX.
"""

from __future__ import annotations

from benchmark.strategies.declaration import Declaration, Needs, Param, SearchDim
from benchmark.strategies.finetune_full import BACKBONE_LR_SCALE

DECLARATION = Declaration(
    name="gradual_unfreeze",
    summary="new head first, then one pretrained block more every steps_per_unfreeze steps, top down (ULMFiT)",
    hooks=f"{__name__}:fit",
    params={
        "unfreeze_blocks": Param(int, -1, "blocks unfrozen over the schedule, top first (-1: all)", minimum=-1,
                                 role="method", max_blocks_offset=0, omit_in_label=(-1,)),
        "steps_per_unfreeze": Param(int, 0, "steps between two unfreezings (0: steps split evenly)",
                                    minimum=0, maximum=1_000_000),
        "backbone_lr_scale": BACKBONE_LR_SCALE,
    },
    needs=Needs(source_model=True),
    search_space=(SearchDim("train.learning_rate", 0.005, 0.2, log=True),
                  SearchDim("backbone_lr_scale", 0.01, 1.0, log=True)),
)


def schedule(num_blocks: int, unfreeze_blocks: int, steps_per_unfreeze: int, steps: int) -> list[int]:
    """The step at which each phase starts: ``[0, s, 2s, .., m s]``; raises UserError if the
    last unfreezing would come at or after ``steps``."""
    from benchmark.errors import UserError

    m = num_blocks if unfreeze_blocks < 0 else unfreeze_blocks
    s = steps_per_unfreeze or steps // (m + 1)
    if s == 0 or m * s >= steps:
        raise UserError(f"gradual_unfreeze unfreezes {m} block(s) every {s or 'auto'} steps, which needs more "
                        f"than {m * max(s, 1)} steps; train.steps is {steps}: lower steps_per_unfreeze or "
                        "unfreeze_blocks, or train longer", field="strategy_params.steps_per_unfreeze")
    return [j * s for j in range(m + 1)]


def phase_scales(num_blocks: int, unfrozen: int, rate: float) -> dict[str, float]:
    """Learning-rate factor per block label: ``rate`` for the top ``unfrozen`` blocks, else 0."""
    from benchmark.strategies.discriminative_lr import block_label

    return {block_label(i): (float(rate) if i >= num_blocks - unfrozen else 0.0) for i in range(num_blocks)}


def fit(ctx):
    from benchmark.models import transplant
    from benchmark.strategies.base import (
        FitResult,
        batch_size,
        labeled_data,
        require_labels,
        supervised_loss,
    )
    from benchmark.strategies.discriminative_lr import count_blocks, labels

    require_labels(ctx, "gradual_unfreeze")
    params = {"model": transplant(ctx.source_params, ctx.init_params, keep_head=False)}
    n = count_blocks(params)
    total = ctx.hp["steps"]
    starts = schedule(n, ctx.hp["unfreeze_blocks"], ctx.hp["steps_per_unfreeze"], total)
    hp = {**ctx.hp, "batch_size": batch_size(ctx.hp, ctx.num_labeled), "total_steps": total}
    data = labeled_data(ctx)
    curve: list[dict[str, float]] = []
    extras = {"unfreeze_steps": starts[1:]}
    for j, start in enumerate(starts):
        end = starts[j + 1] if j + 1 < len(starts) else total
        # One key for every phase: the trainer folds in the global step, so the batches are
        # those finetune_full draws at the same steps.
        phase = ctx.trainer.train(params, data, ctx.key, loss=supervised_loss, labels=labels, hp=hp,
                                  steps=end - start, first_step=start,
                                  lr_scales=phase_scales(n, j, hp["backbone_lr_scale"]))
        curve += phase.curve
        params = phase.params
        if phase.diverged_step is not None:
            return FitResult(params, curve, phase.diverged_step, {**phase.extras, **extras})
    return FitResult(params, curve, None, {**phase.extras, **extras})
