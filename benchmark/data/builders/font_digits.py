"""``font_digits``: digits rendered from the TTF fonts matplotlib ships ("Syn Numbers" idea).

Ganin et al. (2016, JMLR, §5.2.2) train on synthetic digits rendered from Windows fonts with
varied position, orientation, stroke and colours. Here: the 21 matplotlib fonts that draw
digits (DejaVu Sans / Sans Mono / Serif, STIX General, Computer Modern; ``cmex10``, ``cmsy10``
and ``cmmi10`` map '0'-'9' to symbols and are left out), random font size, rotation (±20°),
position (centred ±3 px), stroke width and foreground/background colours with a minimum luminance contrast.
The split is BY FONT FAMILY: test digits come from DejaVu Serif and STIX General, which train
never shows (train: DejaVu Sans, DejaVu Sans Mono, Computer Modern). ``font`` (index into
``FONTS``) is stored per example.
"""

from __future__ import annotations

import functools
from pathlib import Path

import matplotlib
import numpy as np
import tensorflow_datasets as tfds
from PIL import Image, ImageDraw, ImageFont

from benchmark.data.builders._base import BuiltinBuilder

# (family, file) — families decide the split.
FONTS: tuple[tuple[str, str], ...] = (
    ("dejavu_sans", "DejaVuSans.ttf"),
    ("dejavu_sans", "DejaVuSans-Bold.ttf"),
    ("dejavu_sans", "DejaVuSans-Oblique.ttf"),
    ("dejavu_sans", "DejaVuSans-BoldOblique.ttf"),
    ("dejavu_sans_mono", "DejaVuSansMono.ttf"),
    ("dejavu_sans_mono", "DejaVuSansMono-Bold.ttf"),
    ("dejavu_sans_mono", "DejaVuSansMono-Oblique.ttf"),
    ("dejavu_sans_mono", "DejaVuSansMono-BoldOblique.ttf"),
    ("computer_modern", "cmr10.ttf"),
    ("computer_modern", "cmb10.ttf"),
    ("computer_modern", "cmss10.ttf"),
    ("computer_modern", "cmti10.ttf"),
    ("computer_modern", "cmtt10.ttf"),
    ("dejavu_serif", "DejaVuSerif.ttf"),
    ("dejavu_serif", "DejaVuSerif-Bold.ttf"),
    ("dejavu_serif", "DejaVuSerif-Italic.ttf"),
    ("dejavu_serif", "DejaVuSerif-BoldItalic.ttf"),
    ("stix_general", "STIXGeneral.ttf"),
    ("stix_general", "STIXGeneralBol.ttf"),
    ("stix_general", "STIXGeneralItalic.ttf"),
    ("stix_general", "STIXGeneralBolIta.ttf"),
)
SPLIT_FAMILIES = {
    "train": ("dejavu_sans", "dejavu_sans_mono", "computer_modern"),
    "test": ("dejavu_serif", "stix_general"),
}
SPLIT_SIZES = {"train": 10_000, "test": 2_000}
CANVAS = 64  # glyphs are drawn large, then rotated, cropped and fitted into the 28×28 frame
_LUMA = np.array([0.299, 0.587, 0.114])


def font_path(filename: str) -> Path:
    return Path(matplotlib.get_data_path()) / "fonts" / "ttf" / filename


@functools.cache
def _font(filename: str, size: int) -> ImageFont.FreeTypeFont:
    return ImageFont.truetype(str(font_path(filename)), size)


def render_digit(digit: int, filename: str, rng: np.random.Generator) -> np.ndarray:
    """One digit's coverage mask: float32[28, 28] in [0, 1], random size/rotation/stroke/position."""
    canvas = Image.new("L", (CANVAS, CANVAS), 0)
    stroke = int(rng.integers(0, 3))
    ImageDraw.Draw(canvas).text(
        (CANVAS // 2, CANVAS // 2), str(digit), font=_font(filename, 40), fill=255,
        anchor="mm", stroke_width=stroke, stroke_fill=255,
    )
    canvas = canvas.rotate(float(rng.uniform(-20, 20)), resample=Image.BILINEAR)
    glyph = canvas.crop(canvas.getbbox())
    height = int(rng.integers(14, 23))
    width = max(1, min(26, round(glyph.width * height / glyph.height)))
    glyph = np.asarray(glyph.resize((width, height), Image.BILINEAR), dtype=np.float32) / 255.0
    mask = np.zeros((28, 28), dtype=np.float32)
    # Roughly centred like the other digit domains (and SVHN crops), jittered by up to ±3 px.
    top = int(np.clip((28 - height) // 2 + rng.integers(-3, 4), 0, 28 - height))
    left = int(np.clip((28 - width) // 2 + rng.integers(-3, 4), 0, 28 - width))
    mask[top:top + height, left:left + width] = glyph
    return mask


def _colours(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Foreground and background RGB in [0, 255] whose luminances differ by at least 80."""
    while True:
        fg, bg = rng.uniform(0, 255, size=(2, 3))
        if abs(fg @ _LUMA - bg @ _LUMA) >= 80:
            return fg, bg


@functools.lru_cache(maxsize=2)  # the *_m variant reuses the same renders
def make_font_digits(
    seed: int, train: int = SPLIT_SIZES["train"], test: int = SPLIT_SIZES["test"]
) -> dict[str, dict[str, np.ndarray]]:
    """``{"train"|"test": {"image": uint8[N,28,28,3], "label": int64[N], "font": int64[N]}}``."""
    out = {}
    for split_index, (split, n) in enumerate({"train": train, "test": test}.items()):
        rng = np.random.default_rng([seed, split_index])
        fonts = [i for i, (family, _f) in enumerate(FONTS) if family in SPLIT_FAMILIES[split]]
        labels = rng.permutation(np.arange(n) % 10).astype(np.int64)
        font_ids = rng.choice(fonts, size=n).astype(np.int64)
        images = np.empty((n, 28, 28, 3), dtype=np.uint8)
        for i in range(n):
            mask = render_digit(int(labels[i]), FONTS[font_ids[i]][1], rng)[..., None]
            fg, bg = _colours(rng)
            images[i] = np.rint(bg * (1 - mask) + fg * mask).astype(np.uint8)
        out[split] = {"image": images, "label": labels, "font": font_ids}
    return out


class FontDigits(BuiltinBuilder, skip_registration=True):
    """Synthetic digits from matplotlib's fonts, 28×28×3; test font families unseen in train."""

    name = "font_digits"
    VERSION = tfds.core.Version("1.1.0")
    RELEASE_NOTES = {"1.0.0": "digits placed anywhere in the frame", "1.1.0": "digits centred ±3 px"}
    NATIVE_SHAPE = (28, 28, 3)
    SPLIT_SIZES = SPLIT_SIZES
    EXTRA_FIELDS = ("font",)
    PROVENANCE = (
        "digits rendered with PIL from 21 TTF fonts shipped by matplotlib (DejaVu, STIX, Computer "
        "Modern), random size/rotation/position/stroke/colours; test font families unseen in train"
    )
    LICENCE = "generated; fonts: DejaVu (Bitstream Vera licence), STIX (OFL 1.1), Computer Modern (Knuth licence / OFL BaKoMa)"

    def make_splits(self) -> dict[str, dict[str, np.ndarray]]:
        return make_font_digits(self.SEED)
