"""The ``classes=LO-HI`` op: a class subset on every split, relabelled from 0 (Yosinski's halves)."""

import numpy as np
import pytest

from benchmark.cellspec import InputSpec
from benchmark.data import load
from benchmark.data.spec import parse_name
from benchmark.errors import UserError

SPEC = InputSpec(16, 16, 1)


@pytest.mark.parametrize("split", ["train", "test"])
def test_subset_keeps_exactly_those_classes_relabelled(data_dir, split):
    full = load("uci_digits", split, SPEC, data_dir)
    half = load("uci_digits@classes=5-9", split, SPEC, data_dir)
    keep = full.labels >= 5
    assert half.num_classes == 5
    assert half.class_names == full.class_names[5:]
    np.testing.assert_array_equal(half.labels, full.labels[keep] - 5)
    np.testing.assert_array_equal(half.images, full.images[keep])


def test_label_ops_see_the_subset_label_space(data_dir):
    noisy = load("uci_digits@classes=0-4,label_noise=1.0", "train", SPEC, data_dir)
    clean = load("uci_digits@classes=0-4", "train", SPEC, data_dir)
    assert noisy.labels.max() <= 4 and noisy.labels.min() >= 0
    assert np.all(noisy.labels != clean.labels)


@pytest.mark.parametrize("name", ["uci_digits@classes=4-2", "uci_digits@classes=a-b",
                                  "uci_digits@classes", "uci_digits@classes=0-1,classes=2-3"])
def test_bad_ranges_are_user_errors(name):
    with pytest.raises(UserError, match="classes"):
        parse_name(name)


def test_range_beyond_the_dataset_names_its_classes(data_dir):
    with pytest.raises(UserError, match="has 10 classes|has 10"):
        load("uci_digits@classes=5-12", "train", SPEC, data_dir)
