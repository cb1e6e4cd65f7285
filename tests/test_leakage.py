"""No target test image in a source's training data, checked by base-image ids (derived and
blended domains keep their base's) and by image bytes, for every pair of the shipped suites."""

from __future__ import annotations

import numpy as np
import pytest

from benchmark.cli import main
from benchmark.config import load_suite
from benchmark.grid import build_grid
from benchmark.leakage import base_ids, leaked_images

SHIPPED = ["suites/quick.yaml", "suites/papers/ganin2016.yaml", "suites/papers/wang2019.yaml",
           "suites/defaults/dann_backbone_lr.yaml"]


def test_blended_and_derived_domains_keep_their_base_ids(data_dir) -> None:
    plain = base_ids("uci_digits", "train", data_dir)
    assert base_ids("uci_digits_m", "train", data_dir) == plain
    assert base_ids("uci_digits@rotate=45", "train", data_dir) == plain
    subset = base_ids("uci_digits@classes=0-4", "train", data_dir)
    assert subset < plain and len(subset) < len(plain)
    assert not plain & base_ids("uci_digits", "test", data_dir)


@pytest.mark.parametrize("suite", SHIPPED)
def test_no_pair_of_a_shipped_suite_leaks_test_images(suite, data_dir) -> None:
    pairs = {(r.spec.source, r.spec.target) for r in build_grid(load_suite(suite)).runs if r.spec.source}
    assert pairs
    assert {pair: leaked_images(*pair, data_dir) for pair in pairs} == dict.fromkeys(pairs, 0)


def test_a_source_trained_on_target_test_images_is_refused(tmp_path, data_dir, capsys) -> None:
    """A user dataset whose train split is uci_digits' test split: tbench run exits 2 naming the
    pair, and writes no store."""
    from benchmark import data

    test = data.load("uci_digits", split="test", data_dir=data_dir)
    train = data.load("uci_digits", split="train", data_dir=data_dir)
    npz = tmp_path / "copied.npz"
    np.savez(npz, x_train=np.asarray(test.images), y_train=np.asarray(test.labels),
             x_test=np.asarray(train.images)[:200], y_test=np.asarray(train.labels)[:200])
    suite = tmp_path / "leak.yaml"
    suite.write_text(f"name: leak\nsources: ['npz:{npz}']\ntargets: [uci_digits]\n"
                     "strategies: [finetune_full]\nlabels_per_class: [5]\nseeds: 1\n")
    store = tmp_path / "leak.sqlite"
    assert main(["run", str(suite), "--store", str(store), "--quiet", "--data-dir", str(data_dir)]) == 2
    err = capsys.readouterr().err
    assert "leaks" in err and "uci_digits" in err and str(suite) in err
    assert not store.exists()
