"""The training kit of strategy hooks (JAX): what the engine hands ``fit``, and shared pieces.

A strategy's ``fit(ctx: FitContext) -> FitResult`` hook (named by its declaration, see
``benchmark.strategies.declaration``) decides the initial parameters, which parameters train
(an optax label per parameter path: ``"train"``, ``"freeze"`` (``optax.set_to_zero``) or any
other label whose learning-rate factor it passes as ``lr_scales``, e.g. ``{"backbone": 0.1}``)
and the loss; it trains by calling ``ctx.trainer.train(...)``, which runs the jitted kernels.
Hooks never import the engine: the engine passes itself in (imports go downward only).

Parameters are always a dict ``{"model": <backbone params>, ...extras}`` so label rules are
written over paths like ``model/block0/Conv_0/kernel`` and ``disc/Dense_0/bias``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import flax.linen as nn
import jax
import jax.numpy as jnp
import optax

from benchmark.errors import UserError

TRAIN, BACKBONE, FREEZE = "train", "backbone", "freeze"

LossFn = Callable[..., tuple[jax.Array, dict[str, jax.Array]]]
"""``loss(params, data, key, step, *, model, hp) -> (scalar loss, {"loss", "accuracy", ...})``.

A module-level function (the engine caches compiled kernels by its identity and ``hp``):
``data`` is a dict of device arrays, ``key`` the step's PRNG key, ``step`` the global step
(traced int32), ``model`` the target backbone, ``hp`` the resolved hyper-parameters (static).
The engine may pad every array of ``data`` along axis 0 (one compiled kernel for every label
budget): a loss reads example counts with :func:`num_examples`, never ``.shape[0]``, and
never lets a padded row (index ≥ the count) into a batch or a reduction.
"""

LabelFn = Callable[[Any, Mapping[str, Any]], Any]
"""``labels(params, hp) -> pytree of "train" | "backbone" | "freeze"`` (same structure)."""


@dataclasses.dataclass
class FitResult:
    """params: trained ``{"model": ...}`` tree; curve: ``[{"step", "loss", "accuracy"}]``."""

    params: dict
    curve: list[dict[str, float]]
    diverged_step: int | None = None
    extras: dict[str, Any] = dataclasses.field(default_factory=dict)


class Trainer(Protocol):
    """What the engine provides to ``fit`` (implemented by ``benchmark.engine.train.Trainer``)."""

    def train(self, params: dict, data: dict, key: jax.Array, *, loss: LossFn, labels: LabelFn,
              hp: Mapping[str, Any], steps: int, first_step: int = 0,
              lr_scales: Mapping[str, float] | None = None) -> FitResult: ...

    def logits(self, params: dict, images: jax.Array) -> jax.Array: ...

    def features(self, params: dict, images: jax.Array) -> jax.Array: ...


@dataclasses.dataclass
class FitContext:
    """Everything one (cell, seed) may use. Target test data is deliberately absent.

    labeled_images: uint8[Nl, H, W, C] and labeled_labels: int32[Nl] — the training part of the
        budget only. val_images / val_labels: the budget's validation part (the suite's
        ``validation`` split, per class), for hooks that choose something internally (e.g. a
        block); empty arrays when the budget has no validation part.
    unlabeled_images: uint8[Nu, H, W, C] — the rest of the target train split, without labels.
    source_images / source_labels: the labelled source train split (only for strategies with
        ``uses_source_data``), else ``None``.
    init_params: fresh target-model params; source_params: the pretrained source model's params
        (source head), ``None`` for strategies without ``uses_source``.
    shared_label_space: source and target have the same classes (the source head is reusable).
    hp: the resolved train schedule merged with the strategy's parameters.
    """

    model: nn.Module
    hp: dict[str, Any]
    init_params: dict
    source_params: dict | None
    source_num_classes: int | None
    shared_label_space: bool
    labeled_images: jax.Array
    labeled_labels: jax.Array
    unlabeled_images: jax.Array
    source_images: jax.Array | None
    source_labels: jax.Array | None
    key: jax.Array
    trainer: Trainer
    val_images: jax.Array | None = None
    val_labels: jax.Array | None = None

    @property
    def num_labeled(self) -> int:
        return int(self.labeled_labels.shape[0])


def path_str(path: tuple) -> str:
    """``(DictKey('model'), DictKey('block0'), ...) -> "model/block0/..."``."""
    return "/".join(str(getattr(k, "key", k)) for k in path)


def label_params(params: Any, rule: Callable[[str], str]) -> Any:
    """A label per leaf from ``rule(path_string)`` (big_vision-style freezing by path)."""
    return jax.tree_util.tree_map_with_path(lambda p, _: rule(path_str(p)), params)


def all_train(params: Any, hp: Mapping[str, Any]) -> Any:
    """Every parameter trains at the base learning rate."""
    return label_params(params, lambda _: TRAIN)


def block_index(path: str) -> int | None:
    """``"model/block3/Conv_0/kernel" -> 3``; ``None`` for the head and non-model params."""
    parts = path.split("/")
    if len(parts) > 1 and parts[0] == "model" and parts[1].startswith("block"):
        return int(parts[1][len("block"):])
    return None


NUM_EXAMPLES = "num_examples"
"""Key of ``data`` under which the engine passes ``{name: int32 scalar}``, the real length of
each array it padded (traced: one kernel serves every count)."""


def num_examples(data: Mapping[str, Any], name: str) -> jax.Array | int:
    """The real number of examples in ``data[name]``: the engine's count when it padded the
    array, else its length. Rows at or past it are padding."""
    counts = data.get(NUM_EXAMPLES)
    if counts is not None and name in counts:
        return counts[name]
    return data[name].shape[0]


def sample_indices(key: jax.Array, n: int | jax.Array, batch_size: int) -> jax.Array:
    """``int32[batch_size]`` indices drawn uniformly with replacement from ``range(n)``.

    ``n`` may be a traced int32: the draw is the same as for the Python int (``randint``
    computes with the bound as an array either way; ``tests/test_engine.py`` checks)."""
    return jax.random.randint(key, (batch_size,), 0, n)


def cross_entropy(logits: jax.Array, labels: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Mean softmax cross-entropy and accuracy. ``logits: [B, K]``, ``labels: int32[B]``."""
    loss = optax.softmax_cross_entropy_with_integer_labels(logits, labels).mean()
    accuracy = jnp.mean(jnp.argmax(logits, -1) == labels)
    return loss, accuracy


def supervised_loss(params: dict, data: dict, key: jax.Array, step: jax.Array, *,
                    model: nn.Module, hp: Mapping[str, Any]) -> tuple[jax.Array, dict]:
    """Cross-entropy on a batch gathered from ``data["images"], data["labels"]``."""
    idx = sample_indices(key, num_examples(data, "labels"), hp["batch_size"])
    logits = model.apply({"params": params["model"]}, data["images"][idx])
    loss, accuracy = cross_entropy(logits, data["labels"][idx])
    return loss, {"loss": loss, "accuracy": accuracy}


def labeled_data(ctx: FitContext) -> dict:
    return {"images": ctx.labeled_images, "labels": ctx.labeled_labels}


def require_labels(ctx: FitContext, name: str) -> None:
    if ctx.num_labeled == 0:
        raise UserError(f"strategy {name!r} needs target labels; set labels_per_class to 1 or more",
                        field="labels_per_class")


def batch_size(hp: Mapping[str, Any], n: int) -> int:
    """The configured batch size, capped at the number of examples there are."""
    return max(1, min(int(hp["batch_size"]), n))
