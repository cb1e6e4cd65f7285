"""Built-in datasets, prepared once per session in the shared data dir (``data_dir`` fixture)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from benchmark.cellspec import InputSpec
from benchmark.data import info, load, names, prepare
from benchmark.data.builders import BUILTINS
from benchmark.data.builders.font_digits import FONTS, SPLIT_FAMILIES
from benchmark.data.builders.photos import photos
from benchmark.data.builders.uci_digits import make_uci_digits
from benchmark.errors import DatasetUnavailable, UserError


def _files(builder) -> dict[str, bytes]:
    folder = builder.data_path
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if "array_record" in p.name}


def test_builders_are_deterministic_same_bytes_twice(tmp_path):
    here = prepare("uci_digits", tmp_path / "a")
    # Another process (other hash seeds, other protobuf map order) must write the same bytes.
    code = "import sys; from benchmark.data import prepare; prepare('uci_digits', sys.argv[1])"
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "b")], check=True, capture_output=True)
    there = {p.name: p.read_bytes() for p in sorted((tmp_path / "b" / "uci_digits" / "1.0.0").glob("*array_record*"))}
    assert _files(here) == there and len(there) == 2
    blended = prepare("uci_digits_m", tmp_path / "c")
    make_uci_digits.cache_clear()  # recompute everything, as a fresh process would
    photos.cache_clear()
    again = prepare("uci_digits_m", tmp_path / "d")
    assert _files(blended) == _files(again)
    assert _files(here) != _files(blended)


def test_uci_digits_shapes_labels_and_disjoint_splits(data_dir):
    train, test = load("uci_digits", "train"), load("uci_digits", "test")
    meta = info("uci_digits")
    assert (len(train), len(test)) == (meta.splits["train"], meta.splits["test"]) == (1347, 450)
    assert train.images.shape == (1347, 28, 28, 1) and train.images.dtype == np.uint8
    assert train.labels.dtype == np.int32 and set(np.unique(train.labels)) == set(range(10))
    assert np.all(np.bincount(test.labels) >= 43)  # stratified
    train_set = {img.tobytes() for img in train.images}
    assert not any(img.tobytes() in train_set for img in test.images)
    # MNIST layout: the 4-pixel border is black.
    assert train.images[:, :4].max() == 0 and train.images[:, :, 24:].max() == 0


def test_font_digits_test_fonts_are_unseen_families(data_dir):
    train, test = load("font_digits", "train"), load("font_digits", "test")
    assert train.images.shape == (10_000, 28, 28, 3) and test.images.shape == (2_000, 28, 28, 3)
    assert np.array_equal(np.bincount(train.labels), [1000] * 10)
    families = {split: {FONTS[i][0] for i in np.unique(d.metadata["font"])} for split, d in (("train", train), ("test", test))}
    assert families["train"] == set(SPLIT_FAMILIES["train"]) and families["test"] == set(SPLIT_FAMILIES["test"])
    assert not families["train"] & families["test"]
    assert len(np.unique(train.metadata["font"])) + len(np.unique(test.metadata["font"])) == 21


def test_mnist_m_variant_keeps_labels_and_changes_pixels(data_dir):
    plain, blended = load("uci_digits", "test"), load("uci_digits_m", "test")
    assert np.array_equal(plain.labels, blended.labels)
    assert blended.images.shape == (450, 28, 28, 3)
    # |digit - patch|: where the digit is black the photo shows through, so the borders vary.
    assert blended.images[:, :4].std() > 20
    assert not np.array_equal(blended.images, np.repeat(plain.images, 3, axis=-1))
    assert info("uci_digits_m").images_from == "uci_digits" and info("font_digits_m").images_from == "font_digits"
    assert info("uci_digits@invert").images_from == "uci_digits"


def test_load_maps_to_input_spec_and_caches_read_only_arrays(data_dir):
    rgb = load("uci_digits", "test", spec=InputSpec(32, 32, 3))
    assert rgb.images.shape == (450, 32, 32, 3)
    assert np.array_equal(rgb.images[..., 0], rgb.images[..., 2])
    assert load("uci_digits", "test", spec=InputSpec(32, 32, 3)) is rgb
    with pytest.raises(ValueError):
        rgb.images[0, 0, 0, 0] = 1


def test_label_ops_touch_train_only_and_input_ops_every_split(data_dir):
    clean_train, clean_test = load("uci_digits", "train"), load("uci_digits", "test")
    noisy_train = load("uci_digits@label_noise=0.4", "train")
    assert int(np.sum(noisy_train.labels != clean_train.labels)) == round(0.4 * 1347)
    assert np.array_equal(load("uci_digits@label_noise=0.4", "test").labels, clean_test.labels)
    inverted = load("uci_digits@invert", "test")
    assert np.array_equal(inverted.images, 255 - clean_test.images)
    assert np.array_equal(load("uci_digits@gaussian_noise=0.2", "test").images,
                          load("uci_digits@gaussian_noise=0.2,blur=0", "test").images)


def test_unknown_names_and_splits_suggest_close_matches(data_dir):
    with pytest.raises(UserError, match="did you mean 'uci_digits'"):
        load("uci_digit")
    with pytest.raises(UserError, match="did you mean 'test'"):
        load("uci_digits", split="tset")
    assert set(BUILTINS) <= set(names()) and "mnist" in names()


def test_every_builtin_declares_its_metadata():
    for name in BUILTINS:
        meta = info(name)
        assert meta.num_classes == len(meta.class_names) == 10
        assert meta.provenance and meta.licence and meta.native_shape[:2] == (28, 28)
        assert meta.available or "apt-get install dataset-fashion-mnist" in meta.unavailable_reason


def test_unavailable_builtin_raises_dataset_unavailable(monkeypatch, tmp_path):
    monkeypatch.setenv("TBENCH_FASHION_MNIST_DIR", str(tmp_path / "nowhere"))
    assert not info("fashion_mnist").available
    with pytest.raises(DatasetUnavailable, match="apt-get install dataset-fashion-mnist.*uci_digits"):
        load("fashion_mnist", "test", data_dir=tmp_path / "data")
