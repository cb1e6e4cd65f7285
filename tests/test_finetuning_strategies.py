"""The fine-tuning strategies against forgetting (issue 16): each one's defining mechanism.

Each test fails if the mechanism is taken out: L2-SP's pull toward the source, BSS's spectral
shrinkage, ULMFiT's per-block rates and top-down unfreezing, LP-FT's probe-then-tune, surgical
fine-tuning's one block. Runs use the shared tiny configuration (tests/tiny.py) through
``run_seed``; a phase-by-phase view comes from a ``Trainer`` subclass that records what each
``train`` call received and returned (the real trainer does the work).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import tiny

from benchmark import models, strategies
from benchmark.config.schedule import resolve_train
from benchmark.engine import run as engine_run
from benchmark.engine.plan import choose
from benchmark.engine.run import load_cell_data, run_seed, source_model_for
from benchmark.engine.train import Trainer, make_optimizer
from benchmark.errors import UserError
from benchmark.strategies import discriminative_lr, gradual_unfreeze, linear_probe, surgical
from benchmark.strategies.bss import smallest_singular_energy

FAST = choose("cpu")
BLOCKS = ("block0", "block1", "block2")


def _same(a, b) -> bool:
    return all(np.array_equal(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory) -> str:
    return str(tmp_path_factory.mktemp("sources"))


@pytest.fixture(scope="module")
def cell_data(data_dir):
    return load_cell_data(tiny.cell("finetune_full"), data_dir)


@pytest.fixture(scope="module")
def source(checkpoints):
    return source_model_for(tiny.cell("finetune_full"), tiny.SEED, plan=FAST, checkpoint_dir=checkpoints).params


def _run(name, cell_data, checkpoints, train=None, **params):
    result, trained = run_seed(tiny.cell(name, train=train, **params), tiny.SEED, cell_data, plan=FAST,
                               checkpoint_dir=checkpoints)
    assert result.status == "ok", result.extras
    return result, trained


class RecordingTrainer(Trainer):
    """The engine's trainer, keeping ``(params in, params out, loss)`` of every ``train`` call."""

    calls: list = []

    def train(self, params, data, key, **kwargs):
        before = jax.tree.map(np.asarray, params)
        result = super().train(params, data, key, **kwargs)
        RecordingTrainer.calls.append((before, jax.tree.map(np.asarray, result.params), kwargs["loss"]))
        return result


@pytest.fixture
def recorded(monkeypatch) -> list:
    RecordingTrainer.calls = []
    monkeypatch.setattr(engine_run, "Trainer", RecordingTrainer)
    return RecordingTrainer.calls


def _drift(params, source) -> float:
    """``‖w − w_source‖²`` over the backbone blocks."""
    pairs = zip(jax.tree.leaves({b: params[b] for b in BLOCKS}), jax.tree.leaves({b: source[b] for b in BLOCKS}),
                strict=True)
    return float(sum(np.sum((np.asarray(w) - np.asarray(w0)) ** 2) for w, w0 in pairs))


def test_l2sp_without_penalty_is_finetune_full_and_its_penalty_holds_the_backbone(cell_data, checkpoints,
                                                                                  source) -> None:
    full, full_params = _run("finetune_full", cell_data, checkpoints)
    free, free_params = _run("l2sp", cell_data, checkpoints, alpha=0.0, beta=0.0)
    assert _same(free_params, full_params)
    assert [p["accuracy"] for p in free.curve] == [p["accuracy"] for p in full.curve]
    _, held = _run("l2sp", cell_data, checkpoints, alpha=10.0, beta=0.0)
    # α pulls the backbone toward the source weights: it ends nearer them than without α.
    assert _drift(held, source) < 0.5 * _drift(full_params, source)


def test_bss_shrinks_the_smallest_singular_values_of_the_features(cell_data, checkpoints) -> None:
    """The tiny LeNet's 32 features have ~12 dead units (σ = 0 on every batch), so ``k = 16``
    reaches the ~4 smallest live singular values of a 32-image batch; those must shrink against
    the same run at ``eta = 0``, and the top of the spectrum must stay."""
    _, plain = _run("bss", cell_data, checkpoints, eta=0.0, k=16)
    _, shrunk = _run("bss", cell_data, checkpoints, eta=1.0, k=16)
    model = models.build(tiny.BACKBONE, tiny.BACKBONE_PARAMS, 10)
    images = jnp.asarray(cell_data.target_train.images[:256])

    def spectrum(params):
        features = model.apply({"params": params}, images, method=type(model).features)
        return np.asarray(jnp.linalg.svd(features, compute_uv=False))

    before, after = spectrum(plain), spectrum(shrunk)
    live = int(np.sum(before > 1e-3 * before[0]))
    smallest = slice(live - 4, live)
    assert np.sum(after[smallest] ** 2) < 0.5 * np.sum(before[smallest] ** 2), (before, after)
    assert after[0] > 0.9 * before[0]
    # The eigenvalues of the Gram matrix are the squared singular values, tall or wide.
    rng = np.random.default_rng(0)
    for shape in [(32, 12), (12, 32)]:
        f = rng.normal(size=shape).astype(np.float32)
        s = np.linalg.svd(f.astype(np.float64), compute_uv=False)
        assert float(smallest_singular_energy(jnp.asarray(f), 3)) == pytest.approx(np.sum(s[-3:] ** 2), rel=1e-4)


def test_discriminative_lr_scales_block_i_of_n_by_decay_to_the_n_minus_i() -> None:
    model = models.build(tiny.BACKBONE, tiny.BACKBONE_PARAMS, 10)
    params = {"model": models.init_params(model, jax.random.key(0), tiny.SPEC.shape)}
    n, decay, lr = discriminative_lr.count_blocks(params), 0.5, 0.2
    hp = {**resolve_train({"momentum": 0.0, "weight_decay": 0.0, "learning_rate": lr}), "total_steps": 10,
          **{"lr_scale:" + k: v for k, v in discriminative_lr.block_scales(n, decay).items()}}
    tx = make_optimizer(hp, discriminative_lr.labels)
    updates, _ = tx.update(jax.tree.map(jnp.ones_like, params), tx.init(params), params)
    assert n == 3
    for i in range(n):
        for leaf in jax.tree.leaves(updates["model"][f"block{i}"]):
            np.testing.assert_allclose(leaf, -lr * decay ** (n - i), rtol=1e-6)
    for leaf in jax.tree.leaves(updates["model"]["head"]):
        np.testing.assert_allclose(leaf, -lr, rtol=1e-6)


def test_gradual_unfreeze_keeps_each_block_bitwise_until_its_step(cell_data, checkpoints, source,
                                                                  recorded) -> None:
    result, final = _run("gradual_unfreeze", cell_data, checkpoints)
    steps = tiny.TRAIN["steps"]
    assert result.extras["unfreeze_steps"] == [steps // 4, steps // 2, 3 * steps // 4]
    assert len(recorded) == 4  # head only, then block2, block1, block0 join
    for j, (before, after, _) in enumerate(recorded):
        assert not _same(after["model"]["head"], before["model"]["head"])
        for i, block in enumerate(BLOCKS):
            unfrozen = i >= len(BLOCKS) - j
            assert _same(after["model"][block], before["model"][block]) != unfrozen, (j, block)
    assert _same(recorded[0][0]["model"]["block0"], source["block0"])
    # A shorter schedule leaves the blocks below it as pretrained, to the bit.
    _, partial = _run("gradual_unfreeze", cell_data, checkpoints, unfreeze_blocks=1)
    assert _same(partial["block0"], source["block0"]) and _same(partial["block1"], source["block1"])
    assert not _same(partial["block2"], source["block2"])


def test_gradual_unfreeze_refuses_a_schedule_longer_than_the_backbone_or_the_steps() -> None:
    decl = strategies.get("gradual_unfreeze")
    with pytest.raises(UserError, match=r"strategy_params\.unfreeze_blocks: unfreeze_blocks=4 but the backbone "
                                        "has only 3 blocks"):
        decl.resolve({"unfreeze_blocks": 4}, num_blocks=3)
    with pytest.raises(UserError, match=r"strategy_params\.steps_per_unfreeze: .*train\.steps is 48"):
        gradual_unfreeze.schedule(3, -1, 16, 48)
    assert gradual_unfreeze.schedule(3, 2, 10, 48) == [0, 10, 20]


@pytest.mark.parametrize(("entry", "message"), [
    ("{name: l2sp, params: {alpha: -1}}", "params.alpha (line 8): alpha must be ≥ 0"),
    ("{name: bss, params: {eta: -0.5}}", "params.eta (line 8): eta must be ≥ 0"),
    ("{name: gradual_unfreeze, params: {unfreeze_blocks: 4}}",
     "params.unfreeze_blocks (line 8): unfreeze_blocks=4 but the backbone has only 3 blocks"),
    ("{name: surgical, params: {block: 3}}", "params.block (line 8): block=3 but the backbone has only 3 blocks"),
    ("{name: discriminative_lr, params: {decay: 0}}", "params.decay (line 8): decay must be > 0"),
])
def test_a_suite_with_an_out_of_range_parameter_names_file_line_and_field(tmp_path, entry, message) -> None:
    from benchmark.config import load_suite

    path = tmp_path / "bad.yaml"
    path.write_text("name: bad\ninput: {height: 28, width: 28, channels: 1}\n"
                    "backbone: {name: lenet, params: {width: 8}}\nsources: [font_digits]\n"
                    f"targets: [uci_digits]\nstrategies:\n  - scratch\n  - {entry}\n"
                    "labels_per_class: [10]\nseeds: 1\n")
    with pytest.raises(UserError) as err:
        load_suite(path)
    assert "bad.yaml" in str(err.value) and f"strategies[1].{message}" in str(err.value)


def test_lp_ft_probes_with_the_backbone_fixed_then_tunes_from_the_probed_head(cell_data, checkpoints, source,
                                                                             recorded) -> None:
    result, final = _run("lp_ft", cell_data, checkpoints, probe_fraction=0.25)
    assert result.extras["probe_steps"] == tiny.TRAIN["steps"] // 4
    (probe_in, probe_out, probe_loss), (tune_in, tune_out, _) = recorded
    assert probe_loss is linear_probe.head_loss
    for block in BLOCKS:
        assert _same(probe_in["model"][block], source[block]) and _same(probe_out["model"][block], source[block])
        assert not _same(tune_out["model"][block], source[block])
    assert not _same(probe_out["model"]["head"], probe_in["model"]["head"])
    assert _same(tune_in["model"]["head"], probe_out["model"]["head"])
    assert _same(final, tune_out["model"])


def test_surgical_trains_exactly_the_one_block_it_picks_on_validation(cell_data, checkpoints, source) -> None:
    """With a validation split (here 1 image per class of the 5-label budget) every block is a
    candidate; the best on validation is the one block that ends up changed."""
    spec = dataclasses.replace(tiny.cell("surgical"), validation={"fraction": 0.2, "min_per_class": 1})
    result, params = run_seed(spec, tiny.SEED, cell_data, plan=FAST, checkpoint_dir=checkpoints)
    assert result.status == "ok" and result.extras["validation"] == 10
    scores = result.extras["surgical_val_accuracy"]
    assert result.extras["surgical_chosen_by"] == "validation" and len(scores) == 3
    chosen = result.extras["surgical_block"]
    assert chosen == int(np.argmax(scores))
    changed = [b for b in BLOCKS if not _same(params[b], source[b])]
    assert changed == [f"block{chosen}"]


def test_surgical_without_validation_trains_the_default_block(cell_data, checkpoints, source) -> None:
    result, params = _run("surgical", cell_data, checkpoints)
    assert result.extras["surgical_chosen_by"].startswith("default")
    assert result.extras["surgical_block"] == surgical.DEFAULT_BLOCK == 0
    assert [b for b in BLOCKS if not _same(params[b], source[b])] == ["block0"]
