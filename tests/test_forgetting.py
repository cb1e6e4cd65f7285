"""Forgetting (issue 16): one recipe before and after, so an unchanged model forgets exactly 0
and a model whose backbone is re-initialised forgets; the kept-head and linear-probe recipes."""

from __future__ import annotations

import jax
import numpy as np
import pytest
import tiny

from benchmark import models
from benchmark.engine.forgetting import KEPT_HEAD, LINEAR_PROBE, measure_forgetting, ridge_probe
from benchmark.engine.plan import choose
from benchmark.engine.run import load_domain, source_model_for

SPEC = tiny.cell("finetune_full")


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    return source_model_for(SPEC, tiny.SEED, plan=choose("cpu"),
                            checkpoint_dir=str(tmp_path_factory.mktemp("sources")))


@pytest.fixture(scope="module")
def domains(data_dir):
    return load_domain(SPEC.source, "train", SPEC, data_dir), load_domain(SPEC.source, "test", SPEC, data_dir)


def _measure(source, params, domains, *, kept_head, seed=tiny.SEED, **kw):
    train, test = domains
    return measure_forgetting(seed, source, params, source.model_key, train, test, kept_head=kept_head, **kw)


@pytest.mark.parametrize("kept_head", [True, False])
def test_an_unchanged_model_forgets_exactly_nothing(source, domains, kept_head) -> None:
    copy = jax.tree.map(np.array, source.params)  # equal values, other buffers: no identity shortcut
    out = _measure(source, copy, domains, kept_head=kept_head)
    assert out["forgetting"] == 0.0 and out["source_acc_after"] == out["source_acc_before"]
    assert out["forgetting_probe"] == (KEPT_HEAD if kept_head else LINEAR_PROBE)
    assert out["source_acc_before"] > 0.5  # the tiny source model learned its task (chance 0.1)
    assert out["forgetting_n_test"] == min(len(domains[1].labels), 2000)


@pytest.mark.parametrize("kept_head", [True, False])
def test_a_reinitialised_backbone_forgets(source, domains, kept_head) -> None:
    model = models.build(tiny.BACKBONE, tiny.BACKBONE_PARAMS, source.num_classes)
    fresh = models.init_params(model, jax.random.key(7), tiny.SPEC.shape)
    reinit = {**fresh, "head": source.params["head"]}  # every block forgotten, the source head kept
    out = _measure(source, reinit, domains, kept_head=kept_head)
    assert out["forgetting"] > 0.2, out
    assert out["forgetting"] == pytest.approx(out["source_acc_before"] - out["source_acc_after"])


def test_forgetting_reads_only_the_capped_number_of_images(source, domains) -> None:
    """Fewer probe images change the probe, not the rule: still exactly 0 for an unchanged model."""
    out = _measure(source, source.params, domains, kept_head=False, max_train=300, max_test=200)
    assert out["forgetting"] == 0.0 and out["forgetting_n_test"] == 200


def test_kept_head_needs_the_source_classes(source, domains) -> None:
    train, test = domains
    other = (*source.model_key[:2], source.num_classes + 1)
    with pytest.raises(ValueError, match="kept_head needs a head with the source's 10 classes"):
        measure_forgetting(0, source, source.params, other, train, test, kept_head=True)


def test_ridge_probe_separates_linearly_separable_classes() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 3, 300)
    features = np.eye(3)[labels] * 5.0 + rng.normal(0, 0.3, (300, 3))
    features = np.concatenate([features, np.zeros((300, 2))], axis=1)  # two dead features
    weights, mean, scale = ridge_probe(features, labels, 3)
    x = np.concatenate([(features - mean) / scale, np.ones((300, 1))], axis=1)
    assert np.mean(np.argmax(x @ weights, -1) == labels) == 1.0
