"""``l2sp``: fine-tuning with an L2 penalty toward the source weights (L2-SP).

Li, Grandvalet & Davoine (ICML 2018), "Explicit Inductive Bias for Transfer Learning with
Convolutional Networks", eq. 3:

    Ω(w) = α/2 ‖w_S − w_S⁰‖² + β/2 ‖w_S̄‖²

where ``w_S`` are the transferred backbone weights (every ``block*`` parameter), ``w_S⁰`` their
values in the source model and ``w_S̄`` the new head. The loss is the target cross-entropy plus
Ω. ``w_S⁰`` rides along in the params dict as ``params["anchor"]``, labelled ``"freeze"``
(``optax.set_to_zero``), so it is a kernel argument (one compile for every source model) and
never moves.

Parameters: ``alpha`` (0.1) and ``beta`` (0.01), the values Li et al. use; both traced (no
recompile per value). ``backbone_lr_scale`` (0.1) as in ``finetune_full``, so ``alpha = beta = 0``
is exactly ``finetune_full`` on the same seed (``tests/test_finetuning_strategies.py``). The
suite's ``train.weight_decay`` still applies on top; Li et al. use Ω *instead of* weight decay,
so set ``weight_decay: 0`` to match the paper. Training code (JAX) is imported inside the hooks,
so reading the declaration loads no JAX.
"""

from __future__ import annotations

from benchmark.strategies.declaration import Declaration, Needs, Param, SearchDim
from benchmark.strategies.finetune_full import BACKBONE_LR_SCALE

DECLARATION = Declaration(
    name="l2sp",
    summary="fine-tuning with alpha/2 |w - w_source|^2 on the backbone + beta/2 |head|^2 (Li et al. 2018)",
    hooks=f"{__name__}:fit",
    params={
        "alpha": Param(float, 0.1, "weight α of the pull toward the source backbone", minimum=0.0, maximum=1e3),
        "beta": Param(float, 0.01, "weight β of the L2 penalty on the new head", minimum=0.0, maximum=1e3),
        "backbone_lr_scale": BACKBONE_LR_SCALE,
    },
    needs=Needs(source_model=True),
    search_space=(SearchDim("train.learning_rate", 0.005, 0.2, log=True),
                  SearchDim("alpha", 0.001, 1.0, log=True),
                  SearchDim("beta", 0.0001, 0.1, log=True)),
)

ANCHOR = "anchor"


def labels(params, hp):
    """Head at the base rate, backbone at ``backbone_lr_scale``, the anchor frozen."""
    from benchmark.strategies.base import BACKBONE, FREEZE, TRAIN, label_params

    def rule(path: str) -> str:
        if path.startswith(ANCHOR + "/"):
            return FREEZE
        return TRAIN if path.startswith("model/head/") else BACKBONE

    return label_params(params, rule)


def penalty(params, alpha, beta):
    """``(Ω, ‖w_S − w_S⁰‖²)`` of Li et al. eq. 3 for ``{"model": ..., "anchor": ...}``."""
    import jax
    import jax.numpy as jnp

    backbone = {k: v for k, v in params["model"].items() if k != "head"}
    drift = sum(jnp.sum(jnp.square(w - w0)) for w, w0 in
                zip(jax.tree.leaves(backbone), jax.tree.leaves(params[ANCHOR]), strict=True))
    head = sum(jnp.sum(jnp.square(w)) for w in jax.tree.leaves(params["model"]["head"]))
    return 0.5 * alpha * drift + 0.5 * beta * head, drift


def l2sp_loss(params, data, key, step, *, model, hp):
    """Cross-entropy on a budget batch (the batch ``supervised_loss`` draws) + Ω."""
    from benchmark.strategies.base import supervised_loss

    ce, metrics = supervised_loss(params, data, key, step, model=model, hp=hp)
    omega, drift = penalty(params, hp["alpha"], hp["beta"])
    loss = ce + omega
    return loss, {**metrics, "loss": loss, "cross_entropy": ce, "source_drift": drift}


def fit(ctx):
    from benchmark.models import transplant
    from benchmark.strategies.base import BACKBONE, batch_size, labeled_data, require_labels

    require_labels(ctx, "l2sp")
    model = transplant(ctx.source_params, ctx.init_params, keep_head=False)
    params = {"model": model, ANCHOR: {k: v for k, v in model.items() if k != "head"}}
    hp = {**ctx.hp, "batch_size": batch_size(ctx.hp, ctx.num_labeled)}
    result = ctx.trainer.train(params, labeled_data(ctx), ctx.key, loss=l2sp_loss, labels=labels, hp=hp,
                               steps=hp["steps"], lr_scales={BACKBONE: hp["backbone_lr_scale"]})
    result.params = {"model": result.params["model"]}
    if result.curve:
        result.extras["final_source_drift"] = result.curve[-1]["source_drift"]
    return result
