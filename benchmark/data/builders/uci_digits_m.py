"""``uci_digits_m``: ``uci_digits`` blended with natural photo patches (MNIST-M style), RGB."""

from __future__ import annotations

import numpy as np

from benchmark.data.builders import photos
from benchmark.data.builders._base import BuiltinBuilder
from benchmark.data.builders.uci_digits import UciDigits, make_uci_digits


class UciDigitsM(BuiltinBuilder, skip_registration=True):
    """UCI digits on photo textures, 28×28×3; same split and labels as ``uci_digits``."""

    name = "uci_digits_m"
    NATIVE_SHAPE = (28, 28, 3)
    SPLIT_SIZES = UciDigits.SPLIT_SIZES
    IMAGES_FROM = "uci_digits"
    PROVENANCE = "uci_digits " + photos.PROVENANCE
    LICENCE = UciDigits.LICENCE + "; " + photos.LICENCE

    def make_splits(self) -> dict[str, dict[str, np.ndarray]]:
        return photos.blend_splits(make_uci_digits(self.SEED), self.SEED)
