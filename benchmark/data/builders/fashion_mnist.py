"""``fashion_mnist``: the real Fashion-MNIST (Xiao et al. 2017) from Debian's package.

70,000 28×28 grey Zalando product images in 10 classes, read from the original gzipped IDX
files that ``apt-get install dataset-fashion-mnist`` puts in ``/usr/share/datasets/fashion-mnist``
(override with ``$TBENCH_FASHION_MNIST_DIR``). TFDS's own catalog builder of the same name
needs a download and TensorFlow; transferbench's ``fashion_mnist`` is this offline builder,
stored in the data dir as ``fashion_mnist_debian`` so the two never share a folder.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from benchmark.data.builders._base import BuiltinBuilder
from benchmark.data.idx import read_idx
from benchmark.errors import DatasetUnavailable

DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
FILES = {
    "train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
    "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"),
}
CLASS_NAMES = ("t-shirt/top", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot")
ALTERNATIVES = "uci_digits, font_digits, uci_digits_m, font_digits_m"


def fashion_mnist_dir() -> Path:
    return Path(os.environ.get("TBENCH_FASHION_MNIST_DIR") or DEBIAN_DIR)


def missing_reason(directory: Path | None = None) -> str | None:
    """Why Fashion-MNIST cannot be read from ``directory``, or None when it can."""
    directory = directory or fashion_mnist_dir()
    missing = [f for pair in FILES.values() for f in pair if not (directory / f).is_file()]
    if not missing:
        return None
    return (
        f"Fashion-MNIST files are missing in {directory} ({', '.join(missing)}); install them with "
        f"'sudo apt-get install dataset-fashion-mnist' (or set TBENCH_FASHION_MNIST_DIR to a folder "
        f"with the original IDX files), or use a built-in dataset instead: {ALTERNATIVES}"
    )


def read_fashion_mnist(directory: Path | None = None) -> dict[str, dict[str, np.ndarray]]:
    """``{"train"|"test": {"image": uint8[N,28,28,1], "label": int64[N]}}`` from the IDX files."""
    directory = directory or fashion_mnist_dir()
    reason = missing_reason(directory)
    if reason:
        raise DatasetUnavailable(reason)
    out = {}
    for split, (images_file, labels_file) in FILES.items():
        images = read_idx(directory / images_file)
        labels = read_idx(directory / labels_file).astype(np.int64)
        if images.shape[0] != labels.shape[0] or images.shape[1:] != (28, 28):
            raise DatasetUnavailable(f"{directory}: {images_file} {images.shape} does not match {labels_file} {labels.shape}; reinstall dataset-fashion-mnist")
        out[split] = {"image": images[..., None].astype(np.uint8), "label": labels}
    return out


class FashionMnistDebian(BuiltinBuilder, skip_registration=True):
    """Real Fashion-MNIST, 28×28×1, from the Debian package's IDX files."""

    name = "fashion_mnist_debian"
    NATIVE_SHAPE = (28, 28, 1)
    CLASS_NAMES = CLASS_NAMES
    SPLIT_SIZES = {"train": 60_000, "test": 10_000}
    PROVENANCE = "Fashion-MNIST (Xiao, Rasul & Vollgraf 2017), original IDX files from Debian's dataset-fashion-mnist"
    LICENCE = "MIT (Zalando Research)"

    def make_splits(self) -> dict[str, dict[str, np.ndarray]]:
        return read_fashion_mnist()
