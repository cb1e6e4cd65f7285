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
from benchmark.models.flops import matmul_flops


def _lenet_params(width: int, hw: int, channels: int, classes: int) -> int:
    conv0 = 9 * channels * width + width
    conv1 = 9 * width * 2 * width + 2 * width
    flat = (hw // 4) ** 2 * 2 * width
    dense = flat * 8 * width + 8 * width
    return conv0 + conv1 + dense + 8 * width * classes + classes


def _convnet_params(width: int, hw: int, channels: int, classes: int) -> int:
    w = width
    convs = (9 * channels * w + w) + (9 * w * w + w) + (9 * w * 2 * w + 2 * w) + (9 * 2 * w * 2 * w + 2 * w)
    dense = (hw // 4) ** 2 * 2 * w * 8 * w + 8 * w
    return convs + dense + 8 * w * classes + classes


@pytest.mark.parametrize("name,blocks", [("lenet", 3), ("resnet", 4), ("convnet", 5)])
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


def test_convnet_param_count_is_exact() -> None:
    for width, hw in [(2, 16), (16, 28)]:
        model = models.build("convnet", {"width": width}, 5)
        params = jax.eval_shape(functools.partial(models.init_params, model, input_shape=(hw, hw, 1)), jax.random.key(0))
        assert models.param_count(params) == _convnet_params(width, hw, 1, 5)


def test_flops_per_image_match_the_analytic_count() -> None:
    # 2 FLOPs per multiply-add: conv0, conv1 (SAME padding), dense, head.
    w, hw = 4, 16
    analytic = 2 * (hw * hw * w * 9 + (hw // 2) ** 2 * 2 * w * 9 * w
                    + (hw // 4) ** 2 * 2 * w * 8 * w + 8 * w * 10)
    flops = models.flops_per_image("lenet", {"width": w}, 10, (hw, hw, 1))
    assert 0.9 * analytic < flops < 1.1 * analytic
    assert models.flops_per_image("lenet", {"width": 8}, 10, (hw, hw, 1)) > 3 * flops


def test_convnet_flops_match_the_analytic_count() -> None:
    # conv0 at full resolution, conv1/conv2 at 1/2, conv3 at 1/4, dense, head.
    w, hw = 4, 16
    analytic = 2 * (hw * hw * w * 9 + (hw // 2) ** 2 * (w * 9 * w + 2 * w * 9 * w)
                    + (hw // 4) ** 2 * (2 * w * 9 * 2 * w + 2 * w * 8 * w) + 8 * w * 10)
    flops = models.flops_per_image("convnet", {"width": w}, 10, (hw, hw, 1))
    assert 0.9 * analytic < flops < 1.1 * analytic


def test_flop_count_of_a_dense_and_a_conv_training_step_is_exact() -> None:
    x = jnp.ones((8, 6, 6, 2))
    w = jnp.ones((3, 3, 2, 5))
    v = jnp.ones((6 * 6 * 5, 4))

    def loss(params):
        h = jax.lax.conv_general_dilated(x, params[0], (1, 1), "SAME",
                                         dimension_numbers=("NHWC", "HWIO", "NHWC"))
        return (h.reshape(8, -1) @ params[1]).sum()

    conv = 2 * 8 * 6 * 6 * 5 * (3 * 3 * 2)
    dense = 2 * 8 * (6 * 6 * 5) * 4
    # forward; backward: weight grads of both, input grad of the dense (not of the images)
    assert matmul_flops(jax.grad(loss), (w, v)) == 2 * conv + 3 * dense
    assert matmul_flops(jax.jit(lambda a, b: a @ b), jnp.ones((7, 3)), jnp.ones((3, 2))) == 2 * 7 * 3 * 2


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


@pytest.fixture(scope="module")
def convnet_pair() -> tuple[dict, dict]:
    """(source, fresh) parameters of a width-2 convnet (two different inits)."""
    model = models.build("convnet", {"width": 2}, 5)
    return (models.init_params(model, jax.random.key(1), tiny.SPEC.shape),
            models.init_params(model, jax.random.key(2), tiny.SPEC.shape))


@pytest.mark.parametrize("n", [-1, 0, 1, 2, 3, 4, 5])
def test_convnet_transplant_copies_exactly_the_blocks_below_n(convnet_pair, n: int) -> None:
    # Yosinski's AnB/BnB at layer n: block0..block{n-1} from the source, the rest fresh.
    source, fresh = convnet_pair
    out = models.transplant(source, fresh, keep_head=False, copy_blocks=n)
    copied = {b for b in source if b != "head" and (n == -1 or int(b[len("block"):]) < n)}
    assert {b for b in out if out[b] is source[b]} == copied
    assert {b for b in out if out[b] is fresh[b]} == set(fresh) - copied
    for b in source:  # the two inits really differ (kernels; biases start at 0 in both)
        assert not all(map(np.array_equal, jax.tree.leaves(source[b]), jax.tree.leaves(fresh[b])))


@pytest.mark.parametrize("k", [0, 2, 5])
def test_finetune_partial_freezes_exactly_the_convnet_blocks_below_k(convnet_pair, k: int) -> None:
    from benchmark.strategies import finetune_partial
    from benchmark.strategies.base import FREEZE, TRAIN, path_str

    labels = finetune_partial.labels({"model": convnet_pair[0]}, {"k": k})
    by_top = {}
    for path, label in jax.tree_util.tree_flatten_with_path(labels)[0]:
        by_top.setdefault(path_str(path).split("/")[1], set()).add(label)
    assert by_top == {**{f"block{i}": {FREEZE if i < k else TRAIN} for i in range(5)}, "head": {TRAIN}}


def test_bad_backbone_names_and_params_are_user_errors() -> None:
    with pytest.raises(UserError, match="unknown backbone 'lenett'"):
        models.build("lenett", {}, 10)
    with pytest.raises(UserError, match="depth"):
        models.build("lenet", {"depth": 3}, 10)
    with pytest.raises(UserError, match="width"):
        models.build("resnet", {"width": 0}, 10)
    with pytest.raises(UserError, match="width"):
        models.build("convnet", {"width": 1.5}, 10)


@pytest.mark.parametrize("shape", [(3, 28, 28, 1), (2, 7, 7, 5)])
def test_conv_as_matmul_and_max_pool_2x2_compute_lax_conv_and_nn_max_pool(shape) -> None:
    # The CNN blocks' fast forms must be the same function as the library ops they replace,
    # values and gradients (odd sizes too: SAME pooling pads the end with -inf).
    import flax.linen as nn

    from benchmark.models.lenet import conv_as_matmul, max_pool_2x2

    x = jax.random.normal(jax.random.key(0), shape)
    w = jax.random.normal(jax.random.key(1), (3, 3, shape[-1], 4))
    dims = ("NHWC", "HWIO", "NHWC")

    def ref(x, w):
        return jax.lax.conv_general_dilated(x, w, (1, 1), "SAME", dimension_numbers=dims)

    def new(x, w):
        return conv_as_matmul(x, w, (1, 1), "SAME", dimension_numbers=dims)

    np.testing.assert_allclose(new(x, w), ref(x, w), rtol=1e-5, atol=1e-5)
    for a, b in zip(jax.grad(lambda x, w: (new(x, w) ** 2).sum(), argnums=(0, 1))(x, w),
                    jax.grad(lambda x, w: (ref(x, w) ** 2).sum(), argnums=(0, 1))(x, w), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-4)
    # Anything but a plain stride-1 conv goes to lax unchanged.
    np.testing.assert_array_equal(
        conv_as_matmul(x, w, (2, 2), "SAME", dimension_numbers=dims),
        jax.lax.conv_general_dilated(x, w, (2, 2), "SAME", dimension_numbers=dims))
    x1, w1 = x[:, 0], w[0]  # a 1-D convolution (NWC / WIO)
    np.testing.assert_array_equal(
        conv_as_matmul(x1, w1, (1,), "SAME", dimension_numbers=("NWC", "WIO", "NWC")),
        jax.lax.conv_general_dilated(x1, w1, (1,), "SAME", dimension_numbers=("NWC", "WIO", "NWC")))

    def pool(y):
        return nn.max_pool(y, (2, 2), strides=(2, 2), padding="SAME")

    np.testing.assert_array_equal(max_pool_2x2(x), pool(x))
    np.testing.assert_array_equal(jax.grad(lambda y: (max_pool_2x2(y) ** 2).sum())(x),
                                  jax.grad(lambda y: (pool(y) ** 2).sum())(x))


@pytest.mark.parametrize("name", ["lenet", "convnet", "resnet"])
def test_jitted_initialiser_gives_flax_eager_init_bit_for_bit(name: str) -> None:
    """``init_params`` jits Flax's ``init`` for these backbones (one dispatch per run instead of
    one per op): every run's starting point must stay the one eager ``init`` draws."""
    params, shape = tiny.BACKBONE_PARAMS, tiny.SPEC.shape
    model = models.build(name, params, 5)
    key = jax.random.key(7)
    eager = model.init(key, jnp.zeros((1, *shape), jnp.uint8))["params"]
    jitted = models.init_params(model, key, shape)
    assert jax.tree.structure(eager) == jax.tree.structure(jitted)
    assert all(np.array_equal(a, b) for a, b in zip(jax.tree.leaves(eager), jax.tree.leaves(jitted), strict=True))
