"""Backbones with an explicit features/head split and named blocks.

Every model is a flax linen module with submodules ``block0 .. block{n-1}`` (bottom to top) and
``head`` (the classifier), and the methods ``features(images) -> float32[B, D]``,
``classify(features) -> logits`` and ``__call__(images) -> logits float32[B, num_classes]``.
Strategies freeze by parameter path (``block0/...``), never by changing the model.

``build("lenet", {"width": 4}, num_classes=10)``; ``names()`` lists the backbones. What a
backbone is (its parameters, blocks, input sizes, constructor) is declared, without JAX, in
``benchmark.backbones``; this package holds the flax modules and what needs them.
"""

from __future__ import annotations

import functools
import importlib
import math
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np

from benchmark import backbones
from benchmark.models.discriminator import DomainDiscriminator
from benchmark.models.flops import matmul_flops

__all__ = [
    "DomainDiscriminator",
    "block_names",
    "build",
    "flops_per_image",
    "init_params",
    "names",
    "param_count",
    "transplant",
]


def names() -> list[str]:
    """Declared backbone names (``benchmark.backbones``)."""
    return backbones.names()


def build(name: str, params: dict[str, Any] | None, num_classes: int) -> nn.Module:
    """The backbone ``name`` with constructor ``params`` and a ``num_classes``-way head.

    Name and params are checked against the backbone's declaration (``benchmark.backbones``,
    ``UserError`` naming the field); the declaration's ``factory`` constructs the module.
    """
    declared = backbones.get(name)
    params = declared.resolve(params, field="backbone_params")
    module, _, attr = declared.factory.partition(":")
    return getattr(importlib.import_module(module), attr)(num_classes=num_classes, **params)


def block_names(model: nn.Module) -> list[str]:
    """``['block0', ..., 'block{n-1}']``, bottom to top (the head is not a block)."""
    return [f"block{i}" for i in range(model.num_blocks)]


def init_params(model: nn.Module, key: jax.Array, input_shape: tuple[int, int, int]) -> dict:
    """Fresh parameters for images of ``input_shape`` (H, W, C).

    One jitted initialiser per (model, input shape) for the backbones in ``_JIT_INIT``: Flax's
    eager ``init`` dispatches every op on its own (~50 ms for a LeNet on 2 CPU cores, paid by
    every run); jitted, theirs draws the same bits (``tests/test_models.py``). EfficientNet-Lite0's
    jitted init differs from its eager one in the last bits, so it stays eager: a run's starting
    point never depends on this choice.
    """
    if type(model).__name__ not in _JIT_INIT:
        return model.init(key, jnp.zeros((1, *input_shape), jnp.uint8))["params"]
    return _initializer(model, tuple(input_shape))(key)


_JIT_INIT = frozenset({"LeNet", "ConvNet", "ResNet"})
"""Model classes whose jitted ``init`` is measured bit-identical to the eager one."""


@functools.lru_cache(maxsize=64)
def _initializer(model: nn.Module, input_shape: tuple[int, ...]):
    return jax.jit(lambda key: model.init(key, jnp.zeros((1, *input_shape), jnp.uint8))["params"])


def transplant(pretrained: dict, fresh: dict, *, keep_head: bool, copy_blocks: int = -1) -> dict:
    """Pretrained blocks + (the pretrained head if ``keep_head`` else the fresh head).

    big_vision's ``dont_load=['head/.*']``: the target's label space may differ from the
    source's, so the head is new unless the caller knows both share one. ``copy_blocks = n ≥ 0``
    copies only ``block0 .. block{n-1}``; the blocks above keep their fresh init (Yosinski et
    al. 2014's AnB / AnB+ treatments); -1 copies every block.
    """
    out = dict(fresh)
    for name, value in pretrained.items():
        if name == "head":
            continue
        if copy_blocks >= 0 and name.startswith("block") and int(name[len("block"):]) >= copy_blocks:
            continue
        out[name] = value
    out["head"] = pretrained["head"] if keep_head else fresh["head"]
    return out


def param_count(params: Any) -> int:
    """Number of scalars in a parameter pytree (arrays or ``jax.eval_shape`` structs)."""
    return int(sum(math.prod(getattr(x, "shape", np.shape(x))) for x in jax.tree_util.tree_leaves(params)))


@functools.lru_cache(maxsize=32)
def _flops(name: str, frozen_params: tuple, num_classes: int, input_shape: tuple[int, int, int]) -> float:
    model = build(name, dict(frozen_params), num_classes)
    params = jax.eval_shape(functools.partial(init_params, model, input_shape=input_shape), jax.random.key(0))
    x = jax.ShapeDtypeStruct((1, *input_shape), jnp.uint8)
    return matmul_flops(lambda p, x: model.apply({"params": p}, x), params, x)


def flops_per_image(name: str, params: dict[str, Any] | None, num_classes: int,
                    input_shape: tuple[int, int, int]) -> float:
    """Forward FLOPs for one image: 2 per multiply-accumulate of every matmul and convolution in
    the forward's jaxpr (``benchmark.models.flops.matmul_flops``, the count ``tbench bench``'s MFU
    uses); elementwise work (relu, pooling, standardisation) is not counted."""
    return _flops(name, tuple(sorted((params or {}).items())), num_classes, tuple(input_shape))
