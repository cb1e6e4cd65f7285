"""Catalog datasets go through real TFDS: a tiny builder shaped like TFDS's ``mnist`` (``Image``
+ ``ClassLabel`` features, supervised keys) is prepared here as array_record and read back by
the same code path that reads a user's ``tfds build mnist --file_format=array_record``."""

from __future__ import annotations

import io
import json
import shutil

import numpy as np
import pytest
import tensorflow_datasets as tfds
from PIL import Image

from benchmark.cellspec import InputSpec
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
