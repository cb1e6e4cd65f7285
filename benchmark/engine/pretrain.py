"""Source models: pretrained once per (source, input spec, backbone, pretrain schedule, seed).

A source model is cached as an orbax checkpoint under ``paths.checkpoint_dir()/<key>/`` with a
``meta.json`` completion marker written last, holding a SHA-256 of the parameter bytes. On
load, a missing marker, an unreadable checkpoint or a hash mismatch (a partial or corrupt
write) deletes the entry and pretrains again. Writes go to a temporary directory renamed into
place, so concurrent runners never see half a checkpoint, and a lock file (``.<key>.lock``
beside the entry) lets one process at a time load or pretrain a source: a second process that
needs it meanwhile waits, then loads the first one's checkpoint. Within a process, models are also
kept in memory (a grid reuses one source across many targets and strategies).

A pretrained source (``imagenet``, ``benchmark.pretrained.sources``) is not trained here: its
model is the converted weights (1000 classes, ``pretrain_s`` 0, no orbax), the same for every
seed and input spec, kept in memory keyed by the weights' SHA-256.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from benchmark import models, paths
from benchmark.cellspec import InputSpec
from benchmark.config.schedule import resolve_pretrain
from benchmark.data.spec import parse_name
from benchmark.data.transforms import labels_random_by_design
from benchmark.engine.plan import Plan
from benchmark.engine.train import Trainer
from benchmark.strategies.base import all_train, batch_size, supervised_loss

FORMAT_VERSION = 3
"""Part of every cache key: bump it whenever model or training code changes what a checkpoint
means without changing its config (2: per-image input standardisation in the backbones; 3: CNN
blocks convolve as slices and a matmul and pool by reshape, same function, other float rounding)."""


@dataclasses.dataclass
class SourceModel:
    """params: the pretrained model (source head); model_key for ``models.build``."""

    params: dict
    model_key: tuple
    num_classes: int
    class_names: list[str]
    pretrain_s: float
    from_cache: bool
    diverged_step: int | None = None
    diverged_reason: str | None = None
    pretrained_weights: str | None = None
    """SHA-256 of the converted weights when the source is pretrained outside the suite."""
    evaluations: dict = dataclasses.field(default_factory=dict, compare=False, repr=False)
    """Scores of this model that every run from it shares, computed once per model and process:
    its accuracy on its own task (``engine.run``) and its "before" for forgetting
    (``engine.forgetting``), each under a key naming what was measured."""


_memory: dict[str, SourceModel] = {}


def cache_key(source: str, input_spec: InputSpec, backbone: str, backbone_params: dict[str, Any],
              pretrain: dict[str, Any], seed: int) -> str:
    """Content address of a source model (everything that changes its parameters)."""
    payload = {
        "version": FORMAT_VERSION,
        "source": source,
        "data_version": _data_version(source),
        "input_spec": dataclasses.asdict(input_spec),
        "backbone": backbone,
        "backbone_params": backbone_params,
        "pretrain": resolve_pretrain(pretrain),
        "seed": int(seed),
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:24]


def _data_version(source: str) -> str | None:
    """The data's version (new data = a new source model): a built-in's or plugin's builder
    version, the content fingerprint of a ``folder:``/``npz:`` dataset; None for catalog data."""
    from benchmark.data import data_version

    return data_version(source)


def params_digest(params: Any) -> str:
    """SHA-256 of every leaf's path, dtype, shape and bytes."""
    h = hashlib.sha256()
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        arr = np.asarray(leaf)
        h.update(jax.tree_util.keystr(path).encode())
        h.update(f"{arr.dtype}{arr.shape}".encode())
        h.update(np.ascontiguousarray(arr).tobytes())
    return h.hexdigest()


def get_source_model(source: str, input_spec: InputSpec, backbone: str,
                     backbone_params: dict[str, Any], pretrain: dict[str, Any], seed: int, *,
                     load_train: Callable[[], Any], plan: Plan,
                     checkpoint_dir: str | os.PathLike | None = None) -> SourceModel:
    """The pretrained source model, from memory, from disk, or trained now and saved.

    load_train: returns the source train Domain (``images uint8[N,H,W,C]``, ``labels int32[N]``,
    ``num_classes``, ``class_names``); called only when the model must be trained.
    """
    from benchmark.pretrained import sources as pretrained_sources

    if pretrained_sources.is_pretrained(source):
        return pretrained_source_model(source, backbone, backbone_params)
    key = cache_key(source, input_spec, backbone, backbone_params, pretrain, seed)
    root = paths.checkpoint_dir(checkpoint_dir)
    entry = root / key
    memo = f"{root.resolve()}/{key}"
    if memo in _memory and entry.exists():
        return dataclasses.replace(_memory[memo], pretrain_s=0.0, from_cache=True)
    with _entry_lock(root, key):  # another process pretraining this source: wait, then load theirs
        loaded = _load(entry, backbone, backbone_params, input_spec)
        if loaded is None:
            loaded = _train_and_save(entry, source, input_spec, backbone, backbone_params, pretrain,
                                     seed, load_train, plan)
    if loaded.diverged_step is None:
        _memory[memo] = loaded
    return loaded


def pretrained_source_model(source: str, backbone: str, backbone_params: dict[str, Any]) -> SourceModel:
    """The model of a pretrained source: its converted weights as the parameter tree of
    ``backbone`` with the source's classes (the suite was checked to name that backbone)."""
    from benchmark import pretrained
    from benchmark.pretrained import sources as pretrained_sources

    entry = pretrained_sources.get(source)
    if backbone != entry.backbone or backbone_params.get(entry.param) != entry.value:
        raise ValueError(f"source {source!r} needs backbone {entry.backbone} with {entry.param}: {entry.value}, "
                         f"got {backbone} {backbone_params}")
    digest = pretrained.weights_digest()
    memo = f"pretrained:{source}:{digest}"
    if memo not in _memory:
        model_key = (backbone, tuple(sorted(backbone_params.items())), entry.num_classes)
        _memory[memo] = SourceModel(jax.device_put(pretrained.imagenet_params()), model_key, entry.num_classes,
                                    entry.class_names, 0.0, False, pretrained_weights=digest)
        return _memory[memo]
    return dataclasses.replace(_memory[memo], from_cache=True)


@contextlib.contextmanager
def _entry_lock(root: Path, key: str) -> Iterator[None]:
    """Hold an exclusive lock on ``root/.KEY.lock`` (released by the kernel if the holder dies);
    none in a directory this process cannot write (it can only read checkpoints there)."""
    root.mkdir(parents=True, exist_ok=True)
    try:
        handle = open(root / f".{key}.lock", "a")
    except OSError:
        yield
        return
    with handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _load(entry: Path, backbone: str, backbone_params: dict, input_spec: InputSpec) -> SourceModel | None:
    marker = entry / "meta.json"
    if not marker.exists():
        if entry.exists():
            shutil.rmtree(entry, ignore_errors=True)
        return None
    try:
        meta = json.loads(marker.read_text())
        model_key = (backbone, tuple(sorted(backbone_params.items())), meta["num_classes"])
        model = models.build(backbone, backbone_params, meta["num_classes"])
        template = models.init_params(model, jax.random.key(0), input_spec.shape)
        abstract = jax.tree.map(ocp.utils.to_shape_dtype_struct, template)
        with ocp.StandardCheckpointer() as ckptr:
            params = ckptr.restore((entry / "params").resolve(), abstract)
        if params_digest(params) != meta["sha256"]:
            raise ValueError("parameter digest mismatch")
    except Exception:  # a corrupt or partial entry of any kind is rebuilt, never trusted
        shutil.rmtree(entry, ignore_errors=True)
        return None
    return SourceModel(params, model_key, meta["num_classes"], meta["class_names"], 0.0, True)


def _train_and_save(entry: Path, source: str, input_spec: InputSpec, backbone: str,
                    backbone_params: dict, pretrain: dict, seed: int, load_train: Callable[[], Any],
                    plan: Plan) -> SourceModel:
    t0 = time.perf_counter()
    domain = load_train()
    hp = resolve_pretrain(pretrain)
    model_key = (backbone, tuple(sorted(backbone_params.items())), int(domain.num_classes))
    trainer = Trainer(model_key, plan)
    key = jax.random.fold_in(jax.random.key(seed), 0x5EED)
    init = models.init_params(trainer.model, jax.random.fold_in(key, 0), input_spec.shape)
    data = {"images": jax.device_put(np.asarray(domain.images)),
            "labels": jax.device_put(np.asarray(domain.labels, np.int32))}
    hp = {**hp, "batch_size": batch_size(hp, len(domain.labels))}
    random_labels = labels_random_by_design(parse_name(source).label_ops, int(domain.num_classes))
    fit = trainer.train({"model": init}, data, jax.random.fold_in(key, 1), loss=supervised_loss,
                        labels=all_train, hp=hp, steps=hp["steps"], judge_chance=not random_labels)
    params = fit.params["model"]
    result = SourceModel(params, model_key, int(domain.num_classes), list(domain.class_names),
                         time.perf_counter() - t0, False, fit.diverged_step, fit.extras.get("diverged_reason"))
    if fit.diverged_step is None:
        _save(entry, params, result, source)
    return result


def _save(entry: Path, params: dict, model: SourceModel, source: str) -> None:
    entry.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{entry.name}-", dir=entry.parent))
    try:
        with ocp.StandardCheckpointer() as ckptr:
            ckptr.save((tmp / "params").resolve(), params)
            ckptr.wait_until_finished()
        meta = {"source": source, "num_classes": model.num_classes, "class_names": model.class_names,
                "sha256": params_digest(params), "format": FORMAT_VERSION}
        (tmp / "meta.json").write_text(json.dumps(meta))
        try:
            os.replace(tmp, entry)
        except OSError:  # another runner finished the same source first: keep theirs
            pass
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
