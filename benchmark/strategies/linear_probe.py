"""``linear_probe`` (feature extraction): a new head on the frozen pretrained features.

The features of the labelled budget are computed ONCE with the pretrained backbone
(``float32[Nl, D]``); a jitted head-only loop then trains the head on them (softmax
cross-entropy, the train schedule). The label rule freezes every backbone parameter
(``optax.set_to_zero``), so the backbone stays bit-identical (Yosinski et al. 2014's "frozen"
transfer; the VTAB/big_vision linear evaluation).
Training code (JAX) is imported inside the hooks, so reading the declaration loads no JAX.
"""

from __future__ import annotations

from benchmark.strategies.declaration import Declaration, Needs, SearchDim

DECLARATION = Declaration(
    name="linear_probe",
    summary="frozen pretrained features (computed once) + a new linear head",
    hooks=f"{__name__}:fit",
    needs=Needs(source_model=True),
    search_space=(SearchDim("train.learning_rate", 0.005, 0.5, log=True),),
    batch_norm="frozen (features computed once)",
)


def labels(params, hp):
    """Only ``model/head/*`` trains."""
    from benchmark.strategies.base import FREEZE, TRAIN, label_params

    return label_params(params, lambda p: TRAIN if p.startswith("model/head/") else FREEZE)


def head_loss(params, data, key, step, *, model, hp):
    """Cross-entropy of the head on precomputed ``data["features"]: float32[Nl, D]``."""
    from benchmark.strategies.base import cross_entropy, num_examples, sample_indices

    idx = sample_indices(key, num_examples(data, "labels"), hp["batch_size"])
    logits = model.apply({"params": params["model"]}, data["features"][idx], method=type(model).classify)
    loss, accuracy = cross_entropy(logits, data["labels"][idx])
    return loss, {"loss": loss, "accuracy": accuracy}


def fit(ctx):
    from benchmark.models import transplant
    from benchmark.strategies.base import batch_size, require_labels

    require_labels(ctx, "linear_probe")
    params = {"model": transplant(ctx.source_params, ctx.init_params, keep_head=False)}
    features = ctx.trainer.features(params["model"], ctx.labeled_images)
    data = {"features": features, "labels": ctx.labeled_labels}
    hp = {**ctx.hp, "batch_size": batch_size(ctx.hp, ctx.num_labeled)}
    return ctx.trainer.train(params, data, ctx.key, loss=head_loss, labels=labels, hp=hp,
                             steps=hp["steps"])
