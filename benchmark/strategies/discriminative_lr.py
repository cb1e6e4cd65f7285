"""``discriminative_lr``: layer-wise learning-rate decay toward the input (ULMFiT).

Howard & Ruder (ACL 2018), "Universal Language Model Fine-tuning for Text Classification",
§ 3.2, eq. 2: each layer l has its own rate, η^{l−1} = η^l / 2.6. Here the layers are the
backbone's blocks ``block0 .. block{n−1}`` (bottom to top) and the new head: block ``i`` of
``n`` learns at ``decay^(n−i) × learning_rate``, the head at ``learning_rate`` (``decay^0``).
``decay = 1`` is fine-tuning everything at one rate; the default ``1 / 2.6`` is ULMFiT's.

Each block is its own optimizer label (``"block{i}"``) with its factor passed as a traced
``lr_scales`` entry, so every ``decay`` runs on one compiled kernel. The pretrained blocks come
from the source, the head is new (as in ``finetune_full``).
Training code (JAX) is imported inside the hooks, so reading the declaration loads no JAX.
"""

from __future__ import annotations

from benchmark.strategies.declaration import Declaration, Needs, Param, SearchDim

ULMFIT_DECAY = 1 / 2.6

DECLARATION = Declaration(
    name="discriminative_lr",
    summary="pretrained backbone + new head, block i of n at decay^(n-i) x the head's rate (ULMFiT)",
    hooks=f"{__name__}:fit",
    params={"decay": Param(float, round(ULMFIT_DECAY, 4), "learning-rate factor per block toward the input",
                           minimum=0.0, exclusive_minimum=True, maximum=1.0)},
    needs=Needs(source_model=True),
    search_space=(SearchDim("train.learning_rate", 0.005, 0.2, log=True),
                  SearchDim("decay", 0.1, 1.0, log=True)),
)


def count_blocks(params) -> int:
    """The number of backbone blocks in ``{"model": {"block0": ..., "head": ...}, ...}``."""
    return sum(1 for name in params["model"] if name.startswith("block"))


def block_label(i: int) -> str:
    """The optimizer label of ``block{i}`` (its own learning-rate factor)."""
    return f"block{i}"


def block_scales(num_blocks: int, decay: float) -> dict[str, float]:
    """``{"block{i}": decay ** (num_blocks - i)}``: the head is layer ``num_blocks`` at factor 1."""
    return {block_label(i): float(decay) ** (num_blocks - i) for i in range(num_blocks)}


def labels(params, hp):
    """``model/block{i}/*`` → ``"block{i}"``; the head (and anything else) at the base rate."""
    from benchmark.strategies.base import TRAIN, block_index, label_params

    def rule(path: str) -> str:
        i = block_index(path)
        return TRAIN if i is None else block_label(i)

    return label_params(params, rule)


def fit(ctx):
    from benchmark.models import transplant
    from benchmark.strategies.base import batch_size, labeled_data, require_labels, supervised_loss

    require_labels(ctx, "discriminative_lr")
    params = {"model": transplant(ctx.source_params, ctx.init_params, keep_head=False)}
    hp = {**ctx.hp, "batch_size": batch_size(ctx.hp, ctx.num_labeled)}
    return ctx.trainer.train(params, labeled_data(ctx), ctx.key, loss=supervised_loss, labels=labels,
                             hp=hp, steps=hp["steps"],
                             lr_scales=block_scales(count_blocks(params), hp["decay"]))
