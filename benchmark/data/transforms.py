"""Image and label transforms: input-spec mapping, corruptions, source label perturbations.

Everything is numpy/PIL on uint8 arrays (no JAX): ``images`` are ``uint8[N, H, W, C]`` with
``C`` 1 (gray) or 3 (RGB), ``labels`` ``int32[N]``. Random ops draw from a generator seeded by
the caller (the registry derives it from the dataset name and split), so a name always means
the same pixels and labels.
"""

from __future__ import annotations

import zlib

import numpy as np
from PIL import Image
from scipy import ndimage

from benchmark.cellspec import InputSpec

# ITU-R BT.601 luma, the weights PIL's convert("L") uses.
LUMA_WEIGHTS = np.array([299, 587, 114], dtype=np.int64)


def stable_seed(*parts: object) -> int:
    """A seed that depends only on ``parts`` (not on Python's per-process string hashing)."""
    return zlib.crc32("|".join(str(p) for p in parts).encode())


def to_gray(images: np.ndarray) -> np.ndarray:
    """RGB → gray with BT.601 luma, rounded like PIL: ``uint8[N,H,W,3] -> uint8[N,H,W,1]``."""
    if images.shape[-1] == 1:
        return images
    luma = (images.astype(np.int64) @ LUMA_WEIGHTS + 500) // 1000
    return luma.astype(np.uint8)[..., None]


def to_rgb(images: np.ndarray) -> np.ndarray:
    """Gray → RGB by repeating the channel: ``uint8[N,H,W,1] -> uint8[N,H,W,3]``."""
    if images.shape[-1] == 3:
        return images
    return np.repeat(images, 3, axis=-1)


def resize(images: np.ndarray, height: int, width: int) -> np.ndarray:
    """Bilinear resize of every image with PIL: ``uint8[N,H,W,C] -> uint8[N,height,width,C]``."""
    n, h, w, c = images.shape
    if (h, w) == (height, width):
        return images
    out = np.empty((n, height, width, c), dtype=np.uint8)
    for i in range(n):
        for ch in range(c):
            img = Image.fromarray(images[i, :, :, ch], mode="L")
            out[i, :, :, ch] = np.asarray(img.resize((width, height), Image.BILINEAR))
    return out


def to_input_spec(images: np.ndarray, spec: InputSpec) -> np.ndarray:
    """Map ``uint8[N,H,W,C]`` to ``uint8[N, spec.height, spec.width, spec.channels]``.

    Gray targets are converted before resizing (less work), RGB targets after.
    """
    if spec.channels not in (1, 3):
        raise ValueError(f"InputSpec.channels must be 1 or 3, got {spec.channels}")
    if spec.channels == 1:
        return resize(to_gray(images), spec.height, spec.width)
    return to_rgb(resize(images, spec.height, spec.width))


def _to_unit(images: np.ndarray) -> np.ndarray:
    return images.astype(np.float32) / 255.0


def _to_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(x * 255.0), 0, 255).astype(np.uint8)


def rotate(images: np.ndarray, degrees: float) -> np.ndarray:
    """Rotate counter-clockwise about the centre, bilinear, zero fill; shape unchanged."""
    out = np.empty_like(images)
    for i in range(images.shape[0]):
        for ch in range(images.shape[-1]):
            img = Image.fromarray(images[i, :, :, ch], mode="L")
            out[i, :, :, ch] = np.asarray(img.rotate(degrees, resample=Image.BILINEAR, fillcolor=0))
    return out


def invert(images: np.ndarray) -> np.ndarray:
    return 255 - images


def gaussian_noise(images: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    """x + N(0, sigma²) on the [0, 1] scale, clipped (Hendrycks & Dietterich 2019, ImageNet-C)."""
    x = _to_unit(images)
    return _to_uint8(x + rng.normal(0.0, sigma, size=x.shape))


def shot_noise(images: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    """Poisson(x·c)/c on the [0, 1] scale, as in MNIST-C (Mu & Gilmer 2019), c = ``severity``."""
    x = _to_unit(images).astype(np.float64)
    return _to_uint8(rng.poisson(x * severity) / severity)


def blur(images: np.ndarray, sigma: float) -> np.ndarray:
    """Gaussian blur over height and width only (scipy ``gaussian_filter``, reflect borders)."""
    if sigma == 0:
        return images
    x = images.astype(np.float32)
    return np.clip(np.rint(ndimage.gaussian_filter(x, sigma=(0, sigma, sigma, 0))), 0, 255).astype(np.uint8)


def contrast(images: np.ndarray, factor: float) -> np.ndarray:
    """(x − mean)·factor + mean per image, as CIFAR-10-C's contrast (Hendrycks & Dietterich 2019)."""
    x = _to_unit(images)
    mean = x.mean(axis=(1, 2, 3), keepdims=True)
    return _to_uint8((x - mean) * factor + mean)


def apply_input_op(images: np.ndarray, op: str, value: float | None, rng: np.random.Generator) -> np.ndarray:
    """Apply one parsed input op (see ``benchmark.data.spec.OPS``)."""
    if op == "rotate":
        return rotate(images, float(value))
    if op == "invert":
        return invert(images)
    if op == "gaussian_noise":
        return gaussian_noise(images, float(value), rng)
    if op == "shot_noise":
        return shot_noise(images, float(value), rng)
    if op == "blur":
        return blur(images, float(value))
    if op == "contrast":
        return contrast(images, float(value))
    raise ValueError(f"not an input op: {op!r}")


def label_noise(labels: np.ndarray, rate: float, num_classes: int, rng: np.random.Generator) -> np.ndarray:
    """Symmetric label noise: exactly ``round(rate·N)`` labels move to a uniformly drawn *other* class.

    The flip count is exact (not Bernoulli per label), so ``@label_noise=0.4`` means 40% wrong
    labels on every seed; ``rate = (C−1)/C`` matches uniformly random labels in expectation.
    """
    labels = np.asarray(labels, dtype=np.int32)
    flip = rng.choice(labels.shape[0], size=int(round(rate * labels.shape[0])), replace=False)
    out = labels.copy()
    out[flip] = (labels[flip] + rng.integers(1, num_classes, size=flip.shape[0])) % num_classes
    return out


def class_derangement(num_classes: int, seed: int) -> np.ndarray:
    """A permutation of ``range(num_classes)`` with no fixed point, drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    if num_classes < 2:
        return np.arange(num_classes)
    while True:
        perm = rng.permutation(num_classes)
        if not np.any(perm == np.arange(num_classes)):
            return perm


def label_permutation(labels: np.ndarray, num_classes: int, seed: int) -> np.ndarray:
    """Relabel every class c as π(c), π a derangement drawn from ``seed``.

    Matters where the source head meets the target's label space (DANN, self-training,
    source-only); a replaced head undoes it, so for feature transfer use ``label_shuffle``.
    """
    return class_derangement(num_classes, seed)[np.asarray(labels)].astype(np.int32)


def label_shuffle(labels: np.ndarray, seed: int) -> np.ndarray:
    """Random labels with the class marginals kept (Zhang et al. 2017, "rethinking generalization")."""
    return np.random.default_rng(seed).permutation(np.asarray(labels, dtype=np.int32))


def apply_label_op(labels: np.ndarray, op: str, value: float | None, num_classes: int, rng: np.random.Generator) -> np.ndarray:
    """Apply one parsed label op (train split only; the registry enforces that)."""
    if op == "label_noise":
        return label_noise(labels, float(value), num_classes, rng)
    if op == "label_permutation":
        return label_permutation(labels, num_classes, int(value))
    if op == "label_shuffle":
        return label_shuffle(labels, int(value))
    raise ValueError(f"not a label op: {op!r}")


def labels_random_by_design(label_ops, num_classes: int) -> bool:
    """Whether these train-label ops leave no task to learn: ``label_shuffle``, or ``label_noise``
    at or above (K−1)/K (uniformly random labels). Such a source is *meant* to end at chance on
    its own data (Wang et al.'s r = 1), so neither the divergence watch nor the failed-source
    check judges it."""
    return any(op == "label_shuffle" or (op == "label_noise" and float(value) >= (num_classes - 1) / num_classes)
               for op, value in label_ops)
