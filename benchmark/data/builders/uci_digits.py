"""``uci_digits``: scikit-learn's bundled UCI optical handwritten digits, upsampled MNIST-style.

1,797 real 8×8 images (values 0..16) of digits written by 43 people (Alpaydin & Kaynak 1998,
UCI ML repository "Optical Recognition of Handwritten Digits", CC BY 4.0). Each is scaled to
0..255, resized bilinearly to 20×20 and centred in a 28×28 black canvas (MNIST's layout).
The train/test split is stratified by class and keeps identical 8×8 images in the same split,
so no test image also appears in train.
"""

from __future__ import annotations

import functools

import numpy as np
from PIL import Image
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split

from benchmark.data.builders._base import BuiltinBuilder

TEST_FRACTION = 0.25


@functools.lru_cache(maxsize=2)  # uci_digits_m reuses the same arrays
def make_uci_digits(seed: int) -> dict[str, dict[str, np.ndarray]]:
    """``{"train"|"test": {"image": uint8[N,28,28,1], "label": int64[N]}}``."""
    digits = load_digits()
    raw = digits.images.astype(np.float64)  # [1797, 8, 8], 0..16
    labels = digits.target.astype(np.int64)
    scaled = np.rint(raw * (255.0 / 16.0)).astype(np.uint8)
    # Identical images form one group; split groups (stratified by the group's first label).
    _, first, group = np.unique(scaled.reshape(len(scaled), -1), axis=0, return_index=True, return_inverse=True)
    group_ids = np.arange(len(first))
    train_groups, _test_groups = train_test_split(
        group_ids, test_size=TEST_FRACTION, random_state=seed, stratify=labels[first]
    )
    in_train = np.isin(group.ravel(), train_groups)
    images = np.zeros((len(scaled), 28, 28, 1), dtype=np.uint8)
    for i, img in enumerate(scaled):
        small = Image.fromarray(img, mode="L").resize((20, 20), Image.BILINEAR)
        images[i, 4:24, 4:24, 0] = np.asarray(small)
    return {
        "train": {"image": images[in_train], "label": labels[in_train]},
        "test": {"image": images[~in_train], "label": labels[~in_train]},
    }


class UciDigits(BuiltinBuilder, skip_registration=True):
    """Real handwritten digits (UCI, via scikit-learn), 28×28×1."""

    name = "uci_digits"
    NATIVE_SHAPE = (28, 28, 1)
    SPLIT_SIZES = {"train": 1347, "test": 450}
    PROVENANCE = (
        "UCI Optical Recognition of Handwritten Digits (Alpaydin & Kaynak 1998), 1,797 8x8 images "
        "bundled with scikit-learn, upsampled to 20x20 and centred in 28x28"
    )
    LICENCE = "CC BY 4.0 (UCI Machine Learning Repository)"

    def make_splits(self) -> dict[str, dict[str, np.ndarray]]:
        return make_uci_digits(self.SEED)
