"""MNIST-M style blending with natural photos that install offline.

Ganin et al. (2016, JMLR, §5.2.2) build MNIST-M as ``|digit − patch|`` per channel, the patch a
random crop of a BSDS500 colour photo. BSDS500 needs a download, so the patches come from the
photos scikit-learn ships (``china.jpg``, ``flower.jpg``) and six colour photos that
scikit-image bundles (``astronaut``, ``coffee``, ``chelsea``, ``rocket``,
``immunohistochemistry``, ``hubble_deep_field``). Photos are first shrunk to 128 px high so a
28×28 patch holds texture and edges rather than one flat region.
"""

from __future__ import annotations

import functools

import numpy as np
import skimage.data
from PIL import Image
from sklearn.datasets import load_sample_images

SKIMAGE_PHOTOS = ("astronaut", "coffee", "chelsea", "rocket", "immunohistochemistry", "hubble_deep_field")
PHOTO_HEIGHT = 128
PROVENANCE = (
    "|digit - patch| per channel (MNIST-M, Ganin et al. 2016) with 28x28 patches of scikit-learn's "
    "china.jpg/flower.jpg and scikit-image's " + ", ".join(SKIMAGE_PHOTOS)
)
LICENCE = "photos: scikit-learn sample images (CC BY 2.0 / public domain), scikit-image data (public domain / CC0 / CC BY)"


@functools.lru_cache(maxsize=1)
def photos() -> tuple[np.ndarray, ...]:
    """The photos as ``uint8[PHOTO_HEIGHT, W, 3]``, in a fixed order."""
    raw = list(load_sample_images().images) + [getattr(skimage.data, name)() for name in SKIMAGE_PHOTOS]
    out = []
    for img in raw:
        pil = Image.fromarray(np.asarray(img, dtype=np.uint8)).convert("RGB")
        width = round(pil.width * PHOTO_HEIGHT / pil.height)
        out.append(np.asarray(pil.resize((width, PHOTO_HEIGHT), Image.BILINEAR)))
    return tuple(out)


def blend_with_photos(images: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``|digit − patch|`` per channel: ``uint8[N,H,W,C] -> uint8[N,H,W,3]`` (gray digits repeat)."""
    n, h, w, _c = images.shape
    digits = np.broadcast_to(images, (n, h, w, 3)).astype(np.int16)
    pool = photos()
    out = np.empty((n, h, w, 3), dtype=np.uint8)
    which = rng.integers(0, len(pool), size=n)
    for i in range(n):
        photo = pool[which[i]]
        top = int(rng.integers(0, photo.shape[0] - h + 1))
        left = int(rng.integers(0, photo.shape[1] - w + 1))
        patch = photo[top:top + h, left:left + w].astype(np.int16)
        out[i] = np.abs(digits[i] - patch).astype(np.uint8)
    return out


def blend_splits(splits: dict[str, dict[str, np.ndarray]], seed: int) -> dict[str, dict[str, np.ndarray]]:
    """Blend every split's images (other fields kept); each split draws its own patches."""
    out = {}
    for split_index, (split, arrays) in enumerate(splits.items()):
        rng = np.random.default_rng([seed, 1000 + split_index])
        out[split] = dict(arrays, image=blend_with_photos(arrays["image"], rng))
    return out
