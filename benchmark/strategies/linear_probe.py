"""``linear_probe`` (feature extraction): a new head on the frozen pretrained features.

The features of the labelled budget are computed ONCE with the pretrained backbone
(``float32[Nl, D]``); a jitted head-only loop then trains the head on them (softmax
cross-entropy, the train schedule). The label rule freezes every backbone parameter
(``optax.set_to_zero``), so the backbone stays bit-identical (Yosinski et al. 2014's "frozen"
transfer; the VTAB/big_vision linear evaluation).
"""

from __future__ import annotations

from typing import Any

import flax.linen as nn
import jax

from benchmark.models import transplant
from benchmark.strategies.base import (
    FREEZE,
    TRAIN,
    FitContext,
    FitResult,
    Strategy,
    batch_size,
    cross_entropy,
    label_params,
    num_examples,
    require_labels,
    sample_indices,
)


def labels(params: Any, hp: dict) -> Any:
    """Only ``model/head/*`` trains."""
    return label_params(params, lambda p: TRAIN if p.startswith("model/head/") else FREEZE)


def head_loss(params: dict, data: dict, key: jax.Array, step: jax.Array, *,
              model: nn.Module, hp: dict) -> tuple[jax.Array, dict]:
    """Cross-entropy of the head on precomputed ``data["features"]: float32[Nl, D]``."""
    idx = sample_indices(key, num_examples(data, "labels"), hp["batch_size"])
    logits = model.apply({"params": params["model"]}, data["features"][idx], method=type(model).classify)
    loss, accuracy = cross_entropy(logits, data["labels"][idx])
    return loss, {"loss": loss, "accuracy": accuracy}


def fit(ctx: FitContext) -> FitResult:
    require_labels(ctx, "linear_probe")
    params = {"model": transplant(ctx.source_params, ctx.init_params, keep_head=False)}
    features = ctx.trainer.features(params["model"], ctx.labeled_images)
    data = {"features": features, "labels": ctx.labeled_labels}
    hp = {**ctx.hp, "batch_size": batch_size(ctx.hp, ctx.num_labeled)}
    return ctx.trainer.train(params, data, ctx.key, loss=head_loss, labels=labels, hp=hp,
                             steps=hp["steps"])


STRATEGY = Strategy(
    name="linear_probe",
    fit=fit,
    summary="frozen pretrained features (computed once) + a new linear head",
    uses_source=True,
)
