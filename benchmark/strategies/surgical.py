"""``surgical``: fine-tune one pretrained block only, the block chosen on validation data.

Lee, Chen, Tajwar, Kumar, Yao, Liang & Finn (ICLR 2023), "Surgical Fine-Tuning Improves
Adaptation to Distribution Shifts": tuning a single block (plus nothing else) can beat
full fine-tuning, and which block is best depends on the shift (input-level shifts: the first
block; feature-level: the middle; output-level: the last). They pick the block on held-out data,
as done here.

The head is new (the target's classes may differ) and trains with the chosen block; every other
block stays bit-identical (learning-rate factor 0: the blocks are optimizer labels of their own,
as in ``discriminative_lr``, so every candidate runs on one compiled kernel). The chosen block
learns at the base rate, like the head.

Parameter ``block``: ``-1`` (default) trains every candidate block ``0 .. n−1`` for the whole
budget of ``train.steps`` on the same batches, scores each on the budget's validation part
(``ctx.val_images``, the suite's ``validation`` split) and keeps the best (ties: the lower
block); with no validation data it trains ``block0`` (Lee et al.'s choice for input-level
shifts, the kind of shift between the built-in digit domains). ``extras`` records the block, how
it was chosen and each candidate's validation accuracy. ``block ≥ 0`` trains that block only.
The search costs ``n`` trainings. Training code (JAX) is imported inside the hooks, so reading
the declaration loads no JAX.
"""

from __future__ import annotations

from benchmark.strategies.declaration import Declaration, Needs, Param, SearchDim

DEFAULT_BLOCK = 0
"""The block trained when there is no validation data to choose one (input-level shift)."""

DECLARATION = Declaration(
    name="surgical",
    summary="one pretrained block + a new head train, the block chosen on validation (Lee et al. 2023)",
    hooks=f"{__name__}:fit",
    params={"block": Param(int, -1, "the block to fine-tune (-1: choose on the validation split)",
                           minimum=-1, role="method", max_blocks_offset=-1, omit_in_label=(-1,))},
    needs=Needs(source_model=True),
    search_space=(SearchDim("train.learning_rate", 0.005, 0.2, log=True),),
)


def only_block(num_blocks: int, block: int) -> dict[str, float]:
    """Learning-rate factor per block label: 1 for ``block``, 0 for every other."""
    from benchmark.strategies.discriminative_lr import block_label

    return {block_label(i): float(i == block) for i in range(num_blocks)}


def _accuracy(ctx, params) -> float:
    import jax
    import jax.numpy as jnp

    predictions = jnp.argmax(ctx.trainer.logits(params["model"], ctx.val_images), -1)
    return float(jax.device_get(jnp.mean(predictions == jnp.asarray(ctx.val_labels))))


def fit(ctx):
    from benchmark.models import transplant
    from benchmark.strategies.base import batch_size, labeled_data, require_labels, supervised_loss
    from benchmark.strategies.discriminative_lr import count_blocks, labels

    require_labels(ctx, "surgical")
    params = {"model": transplant(ctx.source_params, ctx.init_params, keep_head=False)}
    n = count_blocks(params)
    hp = {**ctx.hp, "batch_size": batch_size(ctx.hp, ctx.num_labeled)}
    has_val = ctx.val_images is not None and ctx.val_labels is not None and int(ctx.val_labels.shape[0]) > 0
    if hp["block"] >= 0:
        candidates, chosen_by = [hp["block"]], "parameter"
    elif has_val:
        candidates, chosen_by = list(range(n)), "validation"
    else:
        candidates, chosen_by = [DEFAULT_BLOCK], "default (no validation data)"

    def train(block):
        # The same key for every candidate: they see the same batches (a paired comparison).
        return ctx.trainer.train(params, labeled_data(ctx), ctx.key, loss=supervised_loss, labels=labels,
                                 hp=hp, steps=hp["steps"], lr_scales=only_block(n, block))

    best, best_acc, scores = None, -1.0, []
    for block in candidates:
        result = train(block)
        ok = result.diverged_step is None
        acc = _accuracy(ctx, result.params) if ok and len(candidates) > 1 else None
        scores.append(acc)
        if best is None or (ok and (best.diverged_step is not None or (acc or 0.0) > best_acc)):
            best, best_acc, best_block = result, acc or 0.0, block
    best.extras.update(surgical_block=best_block, surgical_chosen_by=chosen_by)
    if len(candidates) > 1:
        best.extras["surgical_val_accuracy"] = scores
    return best
