"""Shared base of the built-in TFDS builders: uint8 ``Tensor`` images, labels, an index.

Each built-in computes all its splits as numpy arrays in ``make_splits()`` (deterministic for
the class's ``VERSION`` and ``SEED``); this base turns them into TFDS examples. Images are
``tfds.features.Tensor`` (not ``Image``: encoding PNG from numpy needs TensorFlow), written as
``array_record`` and read back with ``as_data_source()``. Records are shuffled on write, so
every example carries its position ``index`` and the loader restores the order.
Builders skip TFDS's global registration: ``benchmark.data.builders.BUILTINS`` is our
registry, so a name TFDS also uses (``fashion_mnist``) cannot clash.
"""

from __future__ import annotations

import abc
import contextlib
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np
import tensorflow_datasets as tfds
from tensorflow_datasets.core import example_serializer

DIGIT_NAMES = tuple(str(d) for d in range(10))


@contextlib.contextmanager
def deterministic_serialization() -> Iterator[None]:
    """Serialize ``tf.train.Example`` protos with a fixed map order while preparing.

    TFDS calls ``SerializeToString()``, whose feature-map order varies between processes
    (protobuf randomises map iteration), so the same examples gave different file bytes in two
    processes. ``deterministic=True`` fixes the order; the decoded examples are unchanged.
    """
    original = example_serializer.ExampleSerializer.serialize_example

    def serialize(self: example_serializer.ExampleSerializer, example: Any) -> bytes:
        return self.get_tf_example(example).SerializeToString(deterministic=True)

    example_serializer.ExampleSerializer.serialize_example = serialize
    try:
        yield
    finally:
        example_serializer.ExampleSerializer.serialize_example = original


class BuiltinBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """A built-in dataset; subclasses set the class attributes and ``make_splits``."""

    VERSION = tfds.core.Version("1.0.0")
    SEED: ClassVar[int] = 0
    NATIVE_SHAPE: ClassVar[tuple[int, int, int]]
    CLASS_NAMES: ClassVar[tuple[str, ...]] = DIGIT_NAMES
    SPLIT_SIZES: ClassVar[dict[str, int]]
    PROVENANCE: ClassVar[str]
    LICENCE: ClassVar[str]
    # Extra int64 per-example fields (e.g. which font drew the digit).
    EXTRA_FIELDS: ClassVar[tuple[str, ...]] = ()
    # The built-in whose images (and split) this one is made from, when it is a variant.
    IMAGES_FROM: ClassVar[str | None] = None
    # Nothing is downloaded. TFDS would look for a checksums file beside the module, which for
    # a builder inside a package needs the ``importlib_resources`` backport; skip the lookup.
    url_infos = None

    def download_and_prepare(self, *args: Any, **kwargs: Any) -> None:
        """TFDS's ``download_and_prepare``, with byte-for-byte reproducible files."""
        with deterministic_serialization():
            super().download_and_prepare(*args, **kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        features = {
            "image": tfds.features.Tensor(shape=self.NATIVE_SHAPE, dtype=np.uint8),
            "label": tfds.features.ClassLabel(names=list(self.CLASS_NAMES)),
            "index": tfds.features.Scalar(dtype=np.int64),
        }
        features.update({f: tfds.features.Scalar(dtype=np.int64) for f in self.EXTRA_FIELDS})
        return tfds.core.DatasetInfo(
            builder=self,
            description=self.PROVENANCE,
            features=tfds.features.FeaturesDict(features),
            supervised_keys=("image", "label"),
            license=self.LICENCE,
        )

    @abc.abstractmethod
    def make_splits(self) -> dict[str, dict[str, np.ndarray]]:
        """``{split: {"image": uint8[N,*NATIVE_SHAPE], "label": int[N], extra: int[N]}}``."""

    def _split_generators(self, dl_manager: tfds.download.DownloadManager):
        splits = self.make_splits()
        return {name: self._generate_examples(arrays) for name, arrays in splits.items()}

    def _generate_examples(self, arrays: dict[str, np.ndarray]):
        for i in range(arrays["label"].shape[0]):
            example = {"image": arrays["image"][i], "label": int(arrays["label"][i]), "index": i}
            example.update({f: int(arrays[f][i]) for f in self.EXTRA_FIELDS})
            yield i, example
