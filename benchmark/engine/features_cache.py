"""Bottleneck features of a pretrained source's frozen backbone, computed once and kept on disk.

Feature extraction (``linear_probe``; any strategy that asks ``trainer.features`` of the
unchanged pretrained backbone) on the ImageNet source spends nearly all its time in the
backbone's forward, and every seed, budget and strategy of a target asks for the features of
images it has already seen. :class:`FeatureCachingTrainer` (the engine's trainer for cells whose
source is pretrained outside the suite, ``benchmark.pretrained.sources``) answers
``features(params, images)`` (and ``logits``: the head on those features, which is how the engine
evaluates a ``linear_probe`` cell on the test split) from ``<cache root>/features/<key>.npz`` when ``params`` are the
source's own backbone (head aside), and computes only the images it has not seen.

Key: the file is one (backbone, backbone parameters, SHA-256 of the backbone's weights, image
shape); inside it each image is addressed by the SHA-256 of its bytes, so a (dataset, split,
input spec) is cached once whichever budget or seed asks for its images, and an edited dataset
or another input spec can never be answered with stale features. Writes go to a temporary file
renamed into place (merged with what is on disk at that moment), so concurrent runners never
read half a file; a lost race only means recomputing. ``STATS`` counts images computed and
served from the cache in this process.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import jax
import numpy as np

from benchmark import paths
from benchmark.engine.train import Trainer, apply_batched

STATS = {"computed": 0, "cached": 0}
"""Images whose features this process computed / read from the cache (tests, logs)."""

_memory: dict[Path, dict[bytes, np.ndarray]] = {}


def backbone_digest(params: dict) -> str:
    """SHA-256 of every parameter but the head's (the features do not depend on the head)."""
    from benchmark.engine.pretrain import params_digest

    return params_digest({k: v for k, v in params.items() if k != "head"})


def cache_dir() -> Path:
    return paths.cache_root() / "features"


class FeatureCachingTrainer(Trainer):
    """A :class:`Trainer` whose ``features`` of the frozen source backbone come from the disk cache.

    source_params: the pretrained source model's parameters; ``features`` is cached only when
    called with these backbone weights (a fine-tuned backbone is computed as usual).
    """

    def __init__(self, model_key: tuple, plan, pad_to: int | None = None, *, source_params: dict):
        super().__init__(model_key, plan, pad_to)
        self.source_digest = backbone_digest(source_params)

    def features(self, params: dict, images: jax.Array) -> jax.Array:
        if images.shape[0] == 0 or backbone_digest(params) != self.source_digest:
            return super().features(params, images)
        return jax.device_put(cached_features(self.model_key, params, np.asarray(images), self.source_digest))

    def logits(self, params: dict, images: jax.Array) -> jax.Array:
        """The head on the cached features when the backbone is the source's (the test split of a
        ``linear_probe`` cell is then read through the cache too); else the usual forward."""
        if images.shape[0] == 0 or backbone_digest(params) != self.source_digest:
            return super().logits(params, images)
        return self._batched("classify", params, self.features(params, images))


def _file(model_key: tuple, digest: str, shape: tuple[int, ...], dtype: str) -> Path:
    name, backbone_params, _ = model_key
    payload = {"backbone": name, "params": [list(p) for p in backbone_params], "weights": digest,
               "image_shape": list(shape), "dtype": dtype}
    key = hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]
    return cache_dir() / f"{name}-{key}.npz"


def _read(path: Path) -> dict[bytes, np.ndarray]:
    if path not in _memory:
        table: dict[bytes, np.ndarray] = {}
        try:
            with np.load(path) as npz:
                table = dict(zip((bytes(h) for h in npz["image_sha256"]), npz["features"], strict=True))
        except (OSError, ValueError, KeyError):  # missing or unreadable: recomputed and rewritten
            pass
        _memory[path] = table
    return _memory[path]


def _write(path: Path, new: dict[bytes, np.ndarray]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    _memory.pop(path, None)
    table = {**_read(path), **new}  # merge with whatever another runner wrote meanwhile
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}-", suffix=".npz", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, image_sha256=np.array([np.frombuffer(h, np.uint8) for h in table]),
                     features=np.stack(list(table.values())))
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    _memory[path] = table


def cached_features(model_key: tuple, params: dict, images: np.ndarray, digest: str) -> np.ndarray:
    """``float32[N, D]`` features of ``images uint8[N, H, W, C]`` under ``params`` (whose backbone
    hashes to ``digest``), computed only for the images the cache lacks."""
    path = _file(model_key, digest, images.shape[1:], str(images.dtype))
    table = _read(path)
    hashes = [hashlib.sha256(np.ascontiguousarray(image).tobytes()).digest() for image in images]
    first: dict[bytes, int] = {}
    for i, h in enumerate(hashes):
        if h not in table:
            first.setdefault(h, i)
    missing = list(first.values())
    if missing:
        computed = np.asarray(apply_batched(model_key, "features", params, jax.device_put(images[missing])))
        _write(path, {hashes[i]: row for i, row in zip(missing, computed, strict=True)})
        table = _memory[path]
    STATS["computed"] += len(missing)
    STATS["cached"] += len(images) - len(missing)
    return np.stack([table[h] for h in hashes]).astype(np.float32)
