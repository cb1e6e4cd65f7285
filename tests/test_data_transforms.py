"""Transform specs and the numpy ops behind them: exact values on small arrays, no datasets."""

from __future__ import annotations

import numpy as np
import pytest

from benchmark.cellspec import InputSpec
from benchmark.data import transforms
from benchmark.data.spec import parse_name
from benchmark.errors import UserError


def test_parse_name_reads_ops_in_order_with_defaults():
    parsed = parse_name("font_digits@rotate=30,invert,shot_noise,label_noise=0.25")
    assert parsed.base == "font_digits"
    assert parsed.ops == (("rotate", 30.0), ("invert", None), ("shot_noise", 60.0), ("label_noise", 0.25))
    assert [op for op, _ in parsed.input_ops] == ["rotate", "invert", "shot_noise"]
    assert parsed.label_ops == (("label_noise", 0.25),)
    assert parse_name("uci_digits").ops == ()


@pytest.mark.parametrize(
    "name, fragment",
    [
        ("uci_digits@rotat=30", "did you mean 'rotate'"),
        ("uci_digits@label_nosie=0.1", "did you mean 'label_noise'"),
        ("uci_digits@rotate=abc", "needs a number"),
        ("uci_digits@label_noise=1.5", "out of range"),
        ("uci_digits@label_noise", "needs a value"),
        ("uci_digits@invert=1", "takes no value"),
        ("uci_digits@", "ends with '@'"),
        ("@invert", "no base"),
        ("uci_digits@label_permutation=1.5", "needs an integer"),
        ("uci_digits@label_noise=0.1,label_noise=0.2", "repeats a label op"),
    ],
)
def test_bad_transform_specs_raise_user_errors_that_say_how_to_fix(name, fragment):
    with pytest.raises(UserError, match=fragment.replace("(", r"\(")):
        parse_name(name)


def test_gray_and_rgb_mapping_exact():
    rgb = np.array([[[[255, 0, 0], [0, 255, 0]], [[0, 0, 255], [10, 20, 30]]]], dtype=np.uint8)
    # BT.601: 0.299 R + 0.587 G + 0.114 B, rounded half up (PIL's convert("L")).
    assert transforms.to_gray(rgb)[0, :, :, 0].tolist() == [[76, 150], [29, 18]]
    gray = np.array([[[[7], [200]]]], dtype=np.uint8)
    assert transforms.to_rgb(gray)[0].tolist() == [[[7, 7, 7], [200, 200, 200]]]


def test_to_input_spec_resizes_bilinearly_and_maps_channels():
    stripes = np.zeros((1, 4, 4, 1), dtype=np.uint8)
    stripes[..., 2:, 0] = 200
    half = transforms.to_input_spec(stripes, InputSpec(2, 2, 3))
    assert half.shape == (1, 2, 2, 3) and half.dtype == np.uint8
    # Bilinear averaging keeps rows equal and the dark/bright halves ordered and symmetric.
    assert half[0, 0].tolist() == half[0, 1].tolist()
    left, right = int(half[0, 0, 0, 0]), int(half[0, 0, 1, 0])
    assert left < 100 < right and left + right == 200
    constant = np.full((3, 5, 7, 3), 123, dtype=np.uint8)
    assert np.all(transforms.to_input_spec(constant, InputSpec(28, 28, 1)) == 123)
    same = np.arange(16, dtype=np.uint8).reshape(1, 4, 4, 1)
    assert np.array_equal(transforms.to_input_spec(same, InputSpec(4, 4, 1)), same)


def test_input_ops_exact_cases():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(3, 6, 6, 1), dtype=np.uint8)
    assert np.array_equal(transforms.invert(images), 255 - images)
    assert np.array_equal(transforms.rotate(images, 90.0)[:, :, :, 0], np.rot90(images[:, :, :, 0], k=1, axes=(1, 2)))
    assert np.array_equal(transforms.gaussian_noise(images, 0.0, rng), images)
    assert np.array_equal(transforms.contrast(images, 1.0), images)
    flat = transforms.contrast(images, 0.0)
    assert all(len(np.unique(img)) == 1 for img in flat)
    blurred = transforms.blur(images, 2.0)
    assert blurred.std() < images.std()
    assert abs(float(blurred.mean()) - float(images.mean())) < 3
    noisy = transforms.shot_noise(np.full((1, 50, 50, 1), 128, np.uint8), 60.0, rng)
    assert abs(float(noisy.mean()) - 128) < 4 and noisy.std() > 5


def test_label_noise_flips_exactly_the_rate_to_other_classes():
    labels = np.arange(1000) % 10
    noisy = transforms.label_noise(labels, 0.3, 10, np.random.default_rng(1))
    assert int(np.sum(noisy != labels)) == 300
    assert noisy.min() >= 0 and noisy.max() <= 9
    again = transforms.label_noise(labels, 0.3, 10, np.random.default_rng(1))
    assert np.array_equal(noisy, again)


def test_label_permutation_is_a_consistent_derangement_and_shuffle_keeps_marginals():
    labels = np.arange(100) % 10
    permuted = transforms.label_permutation(labels, 10, seed=3)
    mapping = {int(a): int(b) for a, b in zip(labels, permuted, strict=True)}
    assert len(mapping) == 10 and sorted(mapping.values()) == list(range(10))
    assert all(a != b for a, b in mapping.items())
    assert not np.array_equal(transforms.class_derangement(10, 3), transforms.class_derangement(10, 4))
    shuffled = transforms.label_shuffle(labels, seed=3)
    assert np.array_equal(np.bincount(shuffled), np.bincount(labels))
    assert np.mean(shuffled != labels) > 0.5
