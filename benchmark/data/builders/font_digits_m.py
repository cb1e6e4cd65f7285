"""``font_digits_m``: ``font_digits`` blended with natural photo patches (MNIST-M style)."""

from __future__ import annotations

import numpy as np

from benchmark.data.builders import photos
from benchmark.data.builders._base import BuiltinBuilder
from benchmark.data.builders.font_digits import FontDigits, make_font_digits


class FontDigitsM(BuiltinBuilder, skip_registration=True):
    """Font digits on photo textures, 28×28×3; same fonts, split and labels as ``font_digits``."""

    name = "font_digits_m"
    NATIVE_SHAPE = (28, 28, 3)
    SPLIT_SIZES = FontDigits.SPLIT_SIZES
    IMAGES_FROM = "font_digits"
    VERSION = FontDigits.VERSION
    EXTRA_FIELDS = ("font",)
    PROVENANCE = "font_digits " + photos.PROVENANCE
    LICENCE = FontDigits.LICENCE + "; " + photos.LICENCE

    def make_splits(self) -> dict[str, dict[str, np.ndarray]]:
        return photos.blend_splits(make_font_digits(self.SEED), self.SEED)
