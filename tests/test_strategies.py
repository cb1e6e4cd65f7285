"""Strategies: registry contract, parameter resolution, freezing masks, GRL, Ganin schedules."""

from __future__ import annotations

import math
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tiny

from benchmark import models, strategies
from benchmark.config.schedule import resolve_train
from benchmark.engine.train import _learning_rate, make_optimizer
from benchmark.errors import UserError
from benchmark.strategies import dann, finetune_full, finetune_partial, linear_probe, self_training
from benchmark.strategies.base import BACKBONE, FREEZE, TRAIN, path_str

BUILT_IN = ["bss", "dann", "discriminative_lr", "finetune_full", "finetune_partial", "gradual_unfreeze", "l2sp",
            "linear_probe", "lp_ft", "scratch", "self_training", "source_only", "surgical"]


def _params() -> dict:
    model = models.build(tiny.BACKBONE, tiny.BACKBONE_PARAMS, 10)
    return {"model": models.init_params(model, jax.random.key(0), tiny.SPEC.shape)}


def _labels_by_top(labels) -> dict[str, set[str]]:
    out: dict[str, set[str]] = {}
    for path, label in jax.tree_util.tree_flatten_with_path(labels)[0]:
        out.setdefault(path_str(path).split("/")[1], set()).add(label)
    return out


def test_registry_lists_every_strategy_with_its_declarations() -> None:
    assert strategies.names() == BUILT_IN
    for name in BUILT_IN:
        s = strategies.get(name)
        assert s.name == name
        assert s.resolve({}) == dict(s.defaults)
        assert s.hooks.split(":")[0] == f"benchmark.strategies.{name}" and callable(strategies.fit_hook(name))
    assert not strategies.get("scratch").uses_source
    assert strategies.get("dann").uses_source_data and strategies.get("dann").uses_unlabeled_target
    assert strategies.get("self_training").uses_unlabeled_target
    assert not strategies.get("finetune_full").uses_unlabeled_target
    with pytest.raises(UserError, match="unknown strategy 'finetune'"):
        strategies.get("finetune")


def test_resolve_fills_defaults_and_rejects_bad_params() -> None:
    assert strategies.get("finetune_partial").resolve({"k": 2}) == {"k": 2, "copy_blocks": -1}
    with pytest.raises(UserError, match=r"strategy_params\.k: scratch has no parameter 'k'"):
        strategies.get("scratch").resolve({"k": 1})
    with pytest.raises(UserError, match=r"strategy_params\.backbone_lr_scale: backbone_lr_scale must be ≤ 1"):
        strategies.get("finetune_full").resolve({"backbone_lr_scale": 1.5})
    with pytest.raises(UserError, match=r"strategy_params\.k: k must be ≥ 0"):
        strategies.get("finetune_partial").resolve({"k": -1})
    with pytest.raises(UserError, match=r"strategy_params\.k: k=4 but the backbone has only 3 blocks"):
        strategies.get("finetune_partial").resolve({"k": 4}, num_blocks=3)
    with pytest.raises(UserError, match=r"strategy_params\.gamma: gamma must be a finite number"):
        strategies.get("dann").resolve({"gamma": float("nan")})


def test_declarations_load_no_jax() -> None:
    """Config, grid, report and CLI read declarations; none of them may pull in JAX to do so."""
    code = ("import sys, benchmark.strategies as s\n"
            "for n in s.names(): s.get(n).to_dict()\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('jax', 'flax', 'optax')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_masks_freeze_exactly_the_right_blocks() -> None:
    params = _params()
    assert _labels_by_top(linear_probe.labels(params, {})) == {
        "block0": {FREEZE}, "block1": {FREEZE}, "block2": {FREEZE}, "head": {TRAIN}}
    assert _labels_by_top(finetune_partial.labels(params, {"k": 2})) == {
        "block0": {FREEZE}, "block1": {FREEZE}, "block2": {TRAIN}, "head": {TRAIN}}
    assert _labels_by_top(finetune_full.labels(params, {})) == {
        "block0": {BACKBONE}, "block1": {BACKBONE}, "block2": {BACKBONE}, "head": {TRAIN}}


def test_frozen_params_stay_bit_identical_under_the_optimizer() -> None:
    params = _params()
    hp = {**resolve_train({"weight_decay": 0.1}), "k": 2, "total_steps": 10}
    tx = make_optimizer(hp, finetune_partial.labels)
    grads = jax.tree.map(jnp.ones_like, params)
    updates, _ = tx.update(grads, tx.init(params), params)
    new = jax.tree.map(lambda p, u: p + u, params, updates)
    for block in ("block0", "block1"):
        assert jax.tree.all(jax.tree.map(np.array_equal, new["model"][block], params["model"][block]))
    assert not np.array_equal(new["model"]["block2"]["Dense_0"]["kernel"],
                              params["model"]["block2"]["Dense_0"]["kernel"])


def test_backbone_learning_rate_is_scaled() -> None:
    params = _params()
    hp = {**resolve_train({"momentum": 0.0, "weight_decay": 0.0, "learning_rate": 0.5}),
          "lr_scale:backbone": 0.1, "total_steps": 10}
    tx = make_optimizer(hp, finetune_full.labels)
    updates, _ = tx.update(jax.tree.map(jnp.ones_like, params), tx.init(params), params)
    np.testing.assert_allclose(updates["model"]["head"]["bias"], -0.5)
    np.testing.assert_allclose(updates["model"]["block0"]["Conv_0"]["bias"], -0.05, rtol=1e-6)


def test_gradient_reversal_flips_and_scales_the_gradient_exactly() -> None:
    x = jnp.array([[1.0, -2.0, 3.0]])
    w = jnp.array([[0.5, 4.0, -1.5]])
    assert np.array_equal(dann.grad_reverse()(x, jnp.float32(0.3)), x)
    g = jax.grad(lambda x: jnp.sum(dann.grad_reverse()(x, jnp.float32(0.25)) * w))(x)
    np.testing.assert_array_equal(g, -0.25 * w)
    g_lam = jax.grad(lambda lam: jnp.sum(dann.grad_reverse()(x, lam) * w))(jnp.float32(0.25))
    assert g_lam == 0.0


def test_dann_schedules_match_ganin_et_al() -> None:
    for p in (0.0, 0.1, 0.5, 1.0):
        expected = 2.0 / (1.0 + math.exp(-10.0 * p)) - 1.0
        assert abs(float(dann.dann_lambda(p)) - expected) < 1e-6
    assert float(dann.dann_lambda(0.0)) == 0.0
    schedule = _learning_rate({"learning_rate": 0.01, "lr_schedule": "dann", "total_steps": 200}, 1.0)
    for step in (0, 50, 200):
        p = step / 200
        assert abs(float(schedule(step)) - 0.01 / (1 + 10 * p) ** 0.75) < 1e-9


def test_pseudo_labels_keep_only_confident_predictions() -> None:
    logits = jnp.log(jnp.array([[0.95, 0.05], [0.6, 0.4], [0.02, 0.98]]))
    labels, mask = self_training.pseudo_label(logits, 0.9)
    np.testing.assert_array_equal(labels, [0, 0, 1])
    np.testing.assert_array_equal(mask, [1.0, 0.0, 1.0])


@pytest.mark.parametrize("confident", [True, False])
def test_pseudo_loss_on_padded_arrays_equals_the_unpadded_loss(confident: bool) -> None:
    """The engine pads the pool (mask 0) and the budget and passes their real lengths under
    ``data["num_examples"]``: the loss and metrics must be exactly those of the unpadded arrays,
    with confident rows (mask-weighted draw) and without (uniform draw over the real pool).
    Padding here is garbage (white images, class 9), so a padded row drawn would show."""
    import functools

    from benchmark.strategies.base import NUM_EXAMPLES

    model = models.build(tiny.BACKBONE, tiny.BACKBONE_PARAMS, 10)
    params = _params()
    rng = np.random.default_rng(0)
    n_pool, n_lab, padded = 37, 12, 64
    data = {"unlabeled": rng.integers(0, 200, (n_pool, *tiny.SPEC.shape), np.uint8),
            "pseudo_labels": rng.integers(0, 9, n_pool).astype(np.int32),
            "pseudo_mask": (rng.random(n_pool) < 0.4).astype(np.float32) * confident,
            "images": rng.integers(0, 200, (n_lab, *tiny.SPEC.shape), np.uint8),
            "labels": rng.integers(0, 9, n_lab).astype(np.int32)}
    fill = {"unlabeled": 255, "pseudo_labels": 9, "pseudo_mask": 0, "images": 255, "labels": 9}
    pad = {k: np.concatenate([v, np.full((padded - len(v), *v.shape[1:]), fill[k], v.dtype)])
           for k, v in data.items()}
    pad[NUM_EXAMPLES] = {k: np.int32(len(v)) for k, v in data.items()}
    # Without confident rows, no labels either: the metrics then come from the uniform draw.
    hp = {"batch_size": 8, "pseudo_weight": 1.0, "has_labels": confident}
    loss = jax.jit(functools.partial(self_training.pseudo_loss, model=model, hp=hp))
    for k in range(3):
        key = jax.random.key(k)
        a, ma = loss(params, data, key, 0)
        b, mb = loss(params, pad, key, 0)
        assert float(a) == float(b)
        assert {m: float(v) for m, v in ma.items()} == {m: float(v) for m, v in mb.items()}
