"""Validation split, sweeps and model selection: the target test split never chooses anything,
and a source model at chance on its own task is a failed source, not a "transfer"."""

from __future__ import annotations

import dataclasses
import types

import numpy as np
import pytest
import tiny

from benchmark.cellspec import cell_id
from benchmark.engine.budget import split_budget
from benchmark.engine.plan import choose
from benchmark.engine.run import load_cell_data, run_seed
from benchmark.engine.selection import candidates, rule_for, split_validation
from benchmark.strategies import get

FAST = choose("cpu")
VALIDATION = {"fraction": 0.2, "min_per_class": 1}


def test_validation_split_is_per_class_disjoint_and_covers_the_budget() -> None:
    labels = np.repeat(np.arange(10), 30)
    budget, _ = split_budget(labels, 10, 10, seed=3)
    train, val = split_validation(labels, budget, VALIDATION, seed=3)
    assert not set(train) & set(val) and set(train) | set(val) == set(budget)
    assert np.all(np.bincount(labels[val], minlength=10) == 2)  # round(0.2 × 10) per class
    assert np.all(np.bincount(labels[train], minlength=10) == 8)
    small, _ = split_budget(labels, 10, 2, seed=3)
    train, val = split_validation(labels, small, VALIDATION, seed=3)
    assert np.all(np.bincount(labels[val], minlength=10) == 1)  # at least one, one left to train
    assert split_validation(labels, budget, {"fraction": 0.0}, seed=3)[1].size == 0


def test_sweep_candidates_are_seeded_and_start_from_the_suite_values() -> None:
    decl = get("dann")
    sel = {"trials": 4, "seed": 7, "rule": "target_val"}
    a = candidates(decl, decl.defaults, {"learning_rate": 0.05}, sel)
    assert a == candidates(decl, decl.defaults, {"learning_rate": 0.05}, sel)
    assert a[0] == (decl.defaults, {"learning_rate": 0.05}) and len(a) == 4
    assert len({p["backbone_lr_scale"] for p, _ in a}) == 4
    assert all(0.005 <= t["learning_rate"] <= 0.2 for _, t in a[1:])
    assert rule_for(sel, 0) == "source_val" and rule_for(sel, 50) == "target_val"


def test_validation_and_selection_are_part_of_the_cell_identity() -> None:
    plain = tiny.cell("scratch")
    assert cell_id(plain) != cell_id(dataclasses.replace(plain, validation=VALIDATION))
    assert cell_id(plain) != cell_id(dataclasses.replace(plain, selection={"trials": 3}))


@pytest.fixture(scope="module")
def cell_data(data_dir):
    return load_cell_data(tiny.cell("finetune_full"), data_dir)


def test_selection_never_reads_the_test_split(cell_data, tmp_path) -> None:
    """Poison the test split (noise images, shuffled labels): the chosen trial and every
    selection score stay exactly the same; only the final test accuracy may move."""
    spec = dataclasses.replace(tiny.cell("scratch"), validation=VALIDATION,
                               selection={"trials": 3, "seed": 1, "rule": "target_val"})
    clean, _ = run_seed(spec, tiny.SEED, cell_data, plan=FAST, checkpoint_dir=str(tmp_path))
    rng = np.random.default_rng(0)
    test = cell_data.target_test
    poisoned = dataclasses.replace(cell_data, target_test=types.SimpleNamespace(
        images=rng.integers(0, 256, np.shape(test.images), np.uint8),
        labels=rng.permutation(np.asarray(test.labels)), num_classes=test.num_classes,
        class_names=test.class_names, name=test.name))
    dirty, _ = run_seed(spec, tiny.SEED, poisoned, plan=FAST, checkpoint_dir=str(tmp_path))
    assert clean.extras["selection_rule"] == "target_val" and clean.extras["trials"] == 3
    assert clean.extras["trial_scores"] == dirty.extras["trial_scores"]
    assert clean.extras["chosen_params"] == dirty.extras["chosen_params"]
    assert clean.extras["chosen_train"] == dirty.extras["chosen_train"]
    assert clean.extras["val_accuracy"] == dirty.extras["val_accuracy"]
    assert clean.accuracy != dirty.accuracy
    scores = clean.extras["trial_scores"]  # None: the trial diverged
    finite = {i: sc for i, sc in enumerate(scores) if sc is not None}
    assert clean.extras["chosen_trial"] == max(finite, key=lambda i: (finite[i], -i))


def test_a_source_at_chance_on_its_own_task_fails_its_runs(data_dir, tmp_path, monkeypatch) -> None:
    """A source model at chance on its own held-out split (here: an untrained init standing in for
    a collapsed pretraining) fails every run from it, with the reason, instead of a silent
    'transfer' from a dead source; a trained source passes the same check."""
    import jax

    from benchmark import models
    from benchmark.engine import run as run_module
    from benchmark.engine.pretrain import SourceModel

    data = load_cell_data(tiny.cell("finetune_full"), data_dir)
    good, _ = run_seed(tiny.cell("finetune_full"), tiny.SEED, data, plan=FAST, checkpoint_dir=str(tmp_path))
    assert good.status == "ok" and good.extras["source_above_chance_p"] < 1e-6

    model_key = (tiny.BACKBONE, tuple(sorted(tiny.BACKBONE_PARAMS.items())), 10)
    dead = models.init_params(models.build(tiny.BACKBONE, tiny.BACKBONE_PARAMS, 10), jax.random.key(5), tiny.SPEC.shape)
    dead = jax.tree.map(lambda a: a * 0, dead)  # constant logits: one class for every image
    names = list(data.target_train.class_names)
    monkeypatch.setattr(run_module, "source_model_for",
                        lambda *a, **k: SourceModel(dead, model_key, 10, names, 0.0, True))
    result, params = run_seed(tiny.cell("finetune_full"), tiny.SEED, data, plan=FAST, checkpoint_dir=str(tmp_path))
    assert result.status == "failed" and params is None
    assert "failed source" in result.error and result.extras["source_above_chance_p"] >= 1e-3


def test_a_permuted_source_is_judged_on_its_own_task(data_dir, tmp_path) -> None:
    """The quick suite's bad-by-design source (labels permuted) scores ~0 on the clean held-out
    labels but is not a failed source: its own task is the permuted one, and it learnt it."""
    spec = tiny.cell("finetune_full", source="font_digits@label_permutation=1")
    result, _ = run_seed(spec, tiny.SEED, load_cell_data(spec, data_dir), plan=FAST,
                         checkpoint_dir=str(tmp_path))
    assert result.status == "ok" and result.extras["source_above_chance_p"] < 1e-6
    # Every run from a source records forgetting: a new head, so through the probe recipe.
    assert result.extras["forgetting_probe"] == "linear probe"
    assert result.extras["forgetting"] == result.extras["source_acc_before"] - result.extras["source_acc_after"]


def test_a_source_with_random_labels_by_design_is_neither_diverged_nor_failed(data_dir, tmp_path) -> None:
    """Wang et al.'s r = 1 source (every label moved to another class) ends at chance on its own
    training data by design: it must still be pretrained and used, its check recorded as not judged."""
    spec = tiny.cell("finetune_full", source="font_digits@label_noise=1.0", train={"steps": 192})
    result, _ = run_seed(spec, tiny.SEED, load_cell_data(spec, data_dir), plan=FAST,
                         checkpoint_dir=str(tmp_path))
    assert result.status == "ok", result.extras.get("diverged_reason")
    assert result.extras["source_check"].startswith("not judged")
