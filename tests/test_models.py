"""Backbones: named blocks + head, exact parameter counts, FLOPs, transplanting, bad input."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tiny

from benchmark import models
from benchmark.errors import UserError


def _lenet_params(width: int, hw: int, channels: int, classes: int) -> int:
    conv0 = 9 * channels * width + width
    conv1 = 9 * width * 2 * width + 2 * width
    flat = (hw // 4) ** 2 * 2 * width
    dense = flat * 8 * width + 8 * width
    return conv0 + conv1 + dense + 8 * width * classes + classes


@pytest.mark.parametrize("name,blocks", [("lenet", 3), ("resnet", 4)])
def test_blocks_are_named_bottom_to_top_with_a_head(name: str, blocks: int) -> None:
    # Shapes only (jax.eval_shape): no computation, no compile.
    model = models.build(name, tiny.BACKBONE_PARAMS, 7)
    params = jax.eval_shape(lambda k: models.init_params(model, k, tiny.SPEC.shape), jax.random.key(0))
    assert sorted(params) == sorted([*models.block_names(model), "head"])
    assert models.block_names(model) == [f"block{i}" for i in range(blocks)]
    x = jnp.zeros((3, *tiny.SPEC.shape), jnp.uint8)
    features = jax.eval_shape(lambda p, x: model.apply({"params": p}, x, method=type(model).features), params, x)
    logits = jax.eval_shape(lambda p, x: model.apply({"params": p}, x), params, x)
    assert logits.shape == (3, 7)
    assert params["head"]["kernel"].shape == (features.shape[1], 7)


def test_lenet_param_count_is_exact() -> None:
    for width, hw in [(4, 16), (16, 28)]:
        model = models.build("lenet", {"width": width}, 10)
        params = jax.eval_shape(functools.partial(models.init_params, model, input_shape=(hw, hw, 1)), jax.random.key(0))
        assert models.param_count(params) == _lenet_params(width, hw, 1, 10)


def test_flops_per_image_match_the_analytic_count() -> None:
    # 2 FLOPs per multiply-add: conv0, conv1 (SAME padding), dense, head.
    w, hw = 4, 16
    analytic = 2 * (hw * hw * w * 9 + (hw // 2) ** 2 * 2 * w * 9 * w
                    + (hw // 4) ** 2 * 2 * w * 8 * w + 8 * w * 10)
    flops = models.flops_per_image("lenet", {"width": w}, 10, (hw, hw, 1))
    assert 0.9 * analytic < flops < 1.1 * analytic
    assert models.flops_per_image("lenet", {"width": 8}, 10, (hw, hw, 1)) > 3 * flops


def test_transplant_copies_blocks_and_keeps_a_fresh_head() -> None:
    model = models.build("lenet", tiny.BACKBONE_PARAMS, 10)
    source = models.init_params(model, jax.random.key(1), tiny.SPEC.shape)
    fresh = models.init_params(model, jax.random.key(2), tiny.SPEC.shape)
    out = models.transplant(source, fresh, keep_head=False)
    assert out["block2"] is source["block2"] and out["head"] is fresh["head"]
    assert models.transplant(source, fresh, keep_head=True)["head"] is source["head"]
    partial = models.transplant(source, fresh, keep_head=False, copy_blocks=1)
    assert partial["block0"] is source["block0"]
    assert partial["block1"] is fresh["block1"] and partial["block2"] is fresh["block2"]
    assert not np.array_equal(source["block1"]["Conv_0"]["kernel"], fresh["block1"]["Conv_0"]["kernel"])


def test_bad_backbone_names_and_params_are_user_errors() -> None:
    with pytest.raises(UserError, match="unknown backbone 'lenett'"):
        models.build("lenett", {}, 10)
    with pytest.raises(UserError, match="depth"):
        models.build("lenet", {"depth": 3}, 10)
    with pytest.raises(UserError, match="width"):
        models.build("resnet", {"width": 0}, 10)
