"""Catalog datasets go through real TFDS: a tiny builder shaped like TFDS's ``mnist`` (``Image``
+ ``ClassLabel`` features, supervised keys) is prepared here as array_record and read back by
the same code path that reads a user's ``tfds build mnist --file_format=array_record``.

Then tiny builders *named* like every dataset of ``suites/catalog.yaml`` (``mnist`` 3.0.1,
``svhn_cropped`` 3.1.0, ``mnist_corrupted/<config>`` 1.0.0, with TFDS's features and splits) are
written by the real TFDS writer into a temp data dir, and the suite validates and loads from it.
"""

from __future__ import annotations

import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import tensorflow_datasets as tfds
import yaml
from PIL import Image

from benchmark.cellspec import InputSpec
from benchmark.cli import main
from benchmark.data import info, load
from benchmark.errors import DatasetUnavailable, UserError

NAME = "tiny_catalog_digits"


class TinyCatalogDigits(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Like tfds' mnist: PNG-encoded ``Image`` (encoded with PIL, no TensorFlow) + ``ClassLabel``."""

    name = NAME
    VERSION = tfds.core.Version("3.0.1")
    url_infos = None

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self,
            description="Tiny stand-in for a catalog dataset.",
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=(8, 8, 1)),
                "label": tfds.features.ClassLabel(names=["zero", "one", "two"]),
            }),
            supervised_keys=("image", "label"),
        )

    def _split_generators(self, dl_manager):
        return {"train": self._generate_examples(12, 0), "test": self._generate_examples(6, 1)}

    def _generate_examples(self, n=0, seed=0):
        for i in range(n):
            png = io.BytesIO()
            Image.fromarray(np.full((8, 8), 10 * i + seed, dtype=np.uint8)).save(png, format="PNG")
            yield i, {"image": png.getvalue(), "label": i % 3}


@pytest.fixture(scope="module")
def catalog_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("catalog")
    TinyCatalogDigits(data_dir=str(root)).download_and_prepare(file_format="array_record")
    return root


def test_prepared_catalog_dataset_loads_through_tfds(catalog_dir):
    meta = info(NAME, catalog_dir)
    assert meta.available and meta.kind == "catalog"
    assert meta.num_classes == 3 and meta.class_names == ("zero", "one", "two")
    assert meta.native_shape == (8, 8, 1) and meta.splits == {"train": 12, "test": 6}
    train = load(NAME, "train", data_dir=catalog_dir)
    assert train.images.shape == (12, 8, 8, 1) and train.images.dtype == np.uint8
    # Every image is constant 10·i: its pixel tells which example it was, so labels must match.
    assert sorted(int(img[0, 0, 0]) // 10 for img in train.images) == list(range(12))
    assert all(int(img[0, 0, 0]) // 10 % 3 == label for img, label in zip(train.images, train.labels, strict=True))
    mapped = load(NAME + "@invert", "test", spec=InputSpec(4, 4, 3), data_dir=catalog_dir)
    assert mapped.images.shape == (6, 4, 4, 3) and int(mapped.images.min()) >= 255 - 51


def test_unprepared_catalog_dataset_names_the_build_command(tmp_path):
    meta = info("mnist", tmp_path)
    assert not meta.available and meta.num_classes == 10
    with pytest.raises(DatasetUnavailable, match=f"tfds build mnist_corrupted/shot_noise --file_format=array_record --data_dir={tmp_path}"):
        load("mnist_corrupted/shot_noise", data_dir=tmp_path)
    with pytest.raises(UserError, match="did you mean 'mnist'"):
        load("mnsit", data_dir=tmp_path)


def test_tfrecord_catalog_folder_says_to_rebuild_as_array_record(catalog_dir, tmp_path):
    folder = tmp_path / NAME / "3.0.1"
    shutil.copytree(catalog_dir / NAME / "3.0.1", folder)
    meta = json.loads((folder / "dataset_info.json").read_text())
    del meta["fileFormat"]  # what `tfds build` writes by default (tfrecord)
    (folder / "dataset_info.json").write_text(json.dumps(meta))
    with pytest.raises(DatasetUnavailable, match="stored as tfrecord.*--file_format=array_record"):
        load(NAME, data_dir=tmp_path)


CATALOG_SUITE = Path(__file__).resolve().parents[1] / "suites" / "catalog.yaml"


class _LikeTfds(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """TFDS's features for the digit datasets: PNG ``Image`` (encoded with PIL) + 10-way ``ClassLabel``.
    Image ``i`` of a split is constant ``10 * (i // 10) + label``, so its pixel tells its label."""

    SHAPE = (28, 28, 1)
    SIZES = {"train": 40, "test": 10}
    url_infos = None

    def _info(self) -> tfds.core.DatasetInfo:
        return tfds.core.DatasetInfo(
            builder=self, description=f"Tiny local {self.name}.",
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Image(shape=self.SHAPE),
                "label": tfds.features.ClassLabel(num_classes=10),
            }),
            supervised_keys=("image", "label"),
        )

    def _split_generators(self, dl_manager):
        return {split: self._generate_examples(n) for split, n in self.SIZES.items()}

    def _generate_examples(self, n=0):
        for i in range(n):
            png = io.BytesIO()
            pixels = np.full(self.SHAPE, 10 * (i // 10) + i % 10, dtype=np.uint8)
            Image.fromarray(pixels[..., 0] if self.SHAPE[-1] == 1 else pixels).save(png, format="PNG")
            yield i, {"image": png.getvalue(), "label": i % 10}


class Mnist(_LikeTfds, skip_registration=True):
    name = "mnist"
    VERSION = tfds.core.Version("3.0.1")


class SvhnCropped(_LikeTfds, skip_registration=True):
    name = "svhn_cropped"
    VERSION = tfds.core.Version("3.1.0")
    SHAPE = (32, 32, 3)


class MnistCorrupted(_LikeTfds, skip_registration=True):
    name = "mnist_corrupted"
    VERSION = tfds.core.Version("1.0.0")
    BUILDER_CONFIGS = [tfds.core.BuilderConfig(name=c) for c in ("shot_noise", "glass_blur", "fog")]


@pytest.fixture(scope="module")
def classic_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("classic")
    tfds.disable_progress_bar()
    Mnist(data_dir=str(root)).download_and_prepare(file_format="array_record")
    SvhnCropped(data_dir=str(root)).download_and_prepare(file_format="array_record")
    for config in MnistCorrupted.BUILDER_CONFIGS:
        MnistCorrupted(data_dir=str(root), config=config.name).download_and_prepare(file_format="array_record")
    return root


def _catalog_suite(tmp_path: Path) -> Path:
    """suites/catalog.yaml with a budget the tiny stand-ins can meet (they have 4 train images per class)."""
    suite = yaml.safe_load(CATALOG_SUITE.read_text())
    suite["labels_per_class"] = [2]
    path = tmp_path / "catalog.yaml"
    path.write_text(yaml.safe_dump(suite))
    return path


def test_catalog_suite_validates_and_loads_from_a_prepared_array_record_dir(classic_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TBENCH_DATA_DIR", str(classic_dir))
    assert main(["show", str(_catalog_suite(tmp_path))]) == 0
    assert "# grid:" in capsys.readouterr().out
    meta = info("mnist")
    assert meta.kind == "catalog" and meta.num_classes == 10 and meta.native_shape == (28, 28, 1)
    assert meta.splits == {"train": 40, "test": 10} and meta.version == "3.0.1"
    for name in ("mnist", "svhn_cropped", "mnist_corrupted/fog"):
        train = load(name, "train", spec=InputSpec(32, 32, 3))
        assert train.images.shape == (40, 32, 32, 3) and train.num_classes == 10
        assert all(int(img[5, 5, 0]) % 10 == label for img, label in zip(train.images, train.labels, strict=True))
        assert sorted(train.labels.tolist()) == sorted(list(range(10)) * 4)


def test_missing_catalog_dataset_says_which_tfds_build_command_prepares_it(classic_dir, tmp_path, monkeypatch, capsys):
    partial = tmp_path / "partial"
    shutil.copytree(classic_dir / "mnist", partial / "mnist")
    monkeypatch.setenv("TBENCH_DATA_DIR", str(partial))
    assert main(["show", str(_catalog_suite(tmp_path))]) == 2
    err = capsys.readouterr().err
    assert "dataset 'svhn_cropped' is not available" in err and f"'tfds build svhn_cropped --file_format=array_record --data_dir={partial}'" in err
    assert err.count("\n") == 1
