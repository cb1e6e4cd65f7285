"""``bss``: fine-tuning with batch spectral shrinkage (BSS).

Chen, Wang, Fu, Long & Wang (NeurIPS 2019), "Catastrophic Forgetting Meets Negative Transfer:
Batch Spectral Shrinkage for Safe Transfer Learning", the BSS regulariser (as TLlib's
``BatchSpectralShrinkage`` computes it):

    L_bss(F) = η Σ_{i=1..k} σ²_{−i}

where ``σ_{−1} ≤ σ_{−2} ≤ ...`` are the smallest singular values of the batch feature matrix
``F: float32[B, D]`` (the backbone's penultimate features of the training batch). The paper's
argument: the small singular directions carry non-transferable source detail, and shrinking
them suppresses it. The loss is the target cross-entropy plus ``L_bss``, computed inside the
jitted step from the eigenvalues of the batch's Gram matrix (= the squared singular values; see
:func:`smallest_singular_energy` for why not ``jnp.linalg.svd``).

Parameters: ``eta`` (0.001) and ``k`` (1), TLlib's defaults (``BatchSpectralShrinkage(k=1)``,
trade-off 0.001); ``k`` above ``min(B, D)`` counts every singular value. ``eta`` is traced (no
recompile per value). ``backbone_lr_scale`` (0.1) as in ``finetune_full``: with ``eta = 0`` this
is ``finetune_full``. Training code (JAX) is imported inside the hooks, so reading the
declaration loads no JAX.
"""

from __future__ import annotations

from benchmark.strategies.declaration import Declaration, Needs, Param, SearchDim
from benchmark.strategies.finetune_full import BACKBONE_LR_SCALE

DECLARATION = Declaration(
    name="bss",
    summary="fine-tuning + eta x the k smallest squared singular values of the batch features (Chen et al. 2019)",
    hooks=f"{__name__}:fit",
    params={
        "eta": Param(float, 0.001, "weight η of the spectral shrinkage term", minimum=0.0, maximum=1e3),
        "k": Param(int, 1, "number of smallest singular values shrunk", minimum=1, maximum=65_536),
        "backbone_lr_scale": BACKBONE_LR_SCALE,
    },
    needs=Needs(source_model=True),
    search_space=(SearchDim("train.learning_rate", 0.005, 0.2, log=True),
                  SearchDim("eta", 0.0001, 0.1, log=True)),
)


def smallest_singular_energy(features, k: int):
    """``Σ_{i=1..k} σ²_{−i}`` of ``features: float32[B, D]`` (``L_bss`` without η).

    The σ² are the eigenvalues of the smaller Gram matrix (``FᵀF`` or ``FFᵀ``, min(B, D) square),
    from ``jnp.linalg.eigh``: the same numbers as ``jnp.linalg.svd(F)``'s squared (the test
    checks), with the gradient ``2 F v vᵀ`` per eigenvector. Why not the SVD: on this project's
    2-core VM under load, with OpenBLAS's default threads, value-and-gradient of 64 x 64 took
    12–42 ms through ``svd`` and 0.3–1.1 ms through ``eigh`` (single-threaded OpenBLAS: 0.6 vs
    1.5 ms); ``eigh`` is the one that stays cheap either way.
    """
    import jax.numpy as jnp

    b, d = features.shape
    gram = features.T @ features if b >= d else features @ features.T
    eigenvalues = jnp.linalg.eigh(gram)[0]  # ascending
    return jnp.sum(eigenvalues[:min(int(k), eigenvalues.shape[0])])


def bss_loss(params, data, key, step, *, model, hp):
    """Cross-entropy on a budget batch + ``eta`` × the batch features' smallest spectral energy."""
    from benchmark.strategies.base import cross_entropy, num_examples, sample_indices

    idx = sample_indices(key, num_examples(data, "labels"), hp["batch_size"])
    variables = {"params": params["model"]}
    features = model.apply(variables, data["images"][idx], method=type(model).features)
    ce, accuracy = cross_entropy(model.apply(variables, features, method=type(model).classify),
                                 data["labels"][idx])
    shrink = smallest_singular_energy(features, hp["k"])
    loss = ce + hp["eta"] * shrink
    return loss, {"loss": loss, "accuracy": accuracy, "cross_entropy": ce, "spectral_energy": shrink}


def fit(ctx):
    from threadpoolctl import threadpool_limits

    from benchmark.models import transplant
    from benchmark.strategies.base import BACKBONE, batch_size, labeled_data, require_labels
    from benchmark.strategies.finetune_full import labels

    require_labels(ctx, "bss")
    params = {"model": transplant(ctx.source_params, ctx.init_params, keep_head=False)}
    hp = {**ctx.hp, "batch_size": batch_size(ctx.hp, ctx.num_labeled)}
    # eigh runs in LAPACK (OpenBLAS) inside the step, beside XLA's own threads: OpenBLAS's extra
    # threads only oversubscribe the cores for a D x D problem this small (value and gradient
    # of a 128 x 128 eigh: 120 ms with OpenBLAS's 2 threads on the loaded 2-core VM, 2.4 ms with 1).
    with threadpool_limits(limits=1, user_api="blas"):
        result = ctx.trainer.train(params, labeled_data(ctx), ctx.key, loss=bss_loss, labels=labels, hp=hp,
                                   steps=hp["steps"], lr_scales={BACKBONE: hp["backbone_lr_scale"]})
    if result.curve:
        result.extras["final_spectral_energy"] = result.curve[-1]["spectral_energy"]
    return result
