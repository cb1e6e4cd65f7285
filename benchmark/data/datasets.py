"""The dataset registry: names, metadata, and ``load`` (prepare on first use, cache in-process).

A name is ``BASE[@OPS]`` (``benchmark.data.spec``). Bases are, in this order of precedence:
the built-in TFDS builders (``benchmark.data.builders.BUILTINS``, prepared on first use into the
data dir), the user's own data (``folder:PATH``, ``npz:PATH``: ``benchmark.data.user``),
datasets of installed plugins (``benchmark.data.plugins``) and TFDS catalog datasets prepared
in the data dir (``benchmark.data.catalog``). ``load`` returns a
:class:`Domain` mapped to the suite's ``InputSpec``; arrays are read-only because the same
object is handed to every caller of the process.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import logging
import os
from pathlib import Path

import numpy as np

from benchmark import paths
from benchmark.cellspec import InputSpec
from benchmark.data import catalog, plugins, transforms, user
from benchmark.data.builders import BUILTINS
from benchmark.data.builders.fashion_mnist import missing_reason as fashion_missing_reason
from benchmark.data.lock import prepare_lock
from benchmark.data.spec import close_matches, parse_name
from benchmark.errors import DatasetUnavailable, UserError

SPLITS = ("train", "test")


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a dataset is, whether or not it is prepared here."""

    name: str
    num_classes: int
    class_names: tuple[str, ...]
    native_shape: tuple[int, int, int] | None
    splits: dict[str, int]
    provenance: str
    licence: str
    available: bool
    unavailable_reason: str | None = None
    kind: str = "builtin"  # "builtin", "user", "plugin" or "catalog"
    # The dataset whose images (same examples, same split) this one is made from:
    # "uci_digits" for uci_digits_m; the name itself otherwise. Pretraining on one reveals
    # labels of the other's images.
    images_from: str = ""
    # What identifies the data's content: the builder's version, or a user dataset's fingerprint.
    version: str = ""


@dataclasses.dataclass(frozen=True, eq=False)
class Domain:
    """One split of one dataset, mapped to an input spec.

    images: uint8[N, H, W, C] (read-only); labels: int32[N] (read-only); ``metadata`` holds
    extra per-example int64[N] fields a builder stores (``font`` for ``font_digits``).
    """

    name: str
    split: str
    images: np.ndarray
    labels: np.ndarray
    num_classes: int
    class_names: tuple[str, ...]
    metadata: dict[str, np.ndarray] = dataclasses.field(default_factory=dict)

    def __len__(self) -> int:
        return int(self.labels.shape[0])


def names() -> list[str]:
    """Every known base name: built-ins, installed plugins, then the TFDS catalog names
    transferbench knows (``folder:PATH`` and ``npz:PATH`` name any folder or file)."""
    found = [n for n in plugins.names() if n not in BUILTINS]
    return list(BUILTINS) + found + sorted(set(catalog.CATALOG) - set(found))


def _resolve_base(base: str, data_dir: Path) -> str:
    """``"builtin"``, ``"user"``, ``"plugin"`` or ``"catalog"``; ``UserError`` for an unknown name."""
    if base in BUILTINS:
        return "builtin"
    if user.is_user(base):
        return "user"
    if base in plugins.entry_points():
        return "plugin"
    if base in catalog.CATALOG or catalog.prepared_dir(base, data_dir) is not None:
        return "catalog"
    raise UserError(
        f"unknown dataset {base!r}{close_matches(base, names())}; run 'tbench datasets' to list them "
        f"(TFDS catalog datasets load once prepared in {data_dir}; your own data is 'folder:PATH' or 'npz:PATH')"
    )


def info(name: str, data_dir: str | os.PathLike | None = None) -> DatasetInfo:
    """Metadata of ``name`` (transform ops allowed and validated; the base is described)."""
    parsed = parse_name(name)
    root = paths.data_dir(data_dir)
    kind = _resolve_base(parsed.base, root)
    if kind == "builtin":
        cls = BUILTINS[parsed.base]
        reason = fashion_missing_reason() if parsed.base == "fashion_mnist" else None
        return DatasetInfo(
            name=parsed.base, num_classes=len(cls.CLASS_NAMES), class_names=tuple(cls.CLASS_NAMES),
            native_shape=tuple(cls.NATIVE_SHAPE), splits=dict(cls.SPLIT_SIZES), provenance=cls.PROVENANCE,
            licence=cls.LICENCE, available=reason is None, unavailable_reason=reason,
            images_from=cls.IMAGES_FROM or parsed.base, version=str(cls.VERSION),
        )
    if kind == "user":
        # Prepared here (read, checked, written once): a bad folder or file fails validation.
        source = user.parse(parsed.base)
        stored, fingerprint = user.prepare(source, root)
        return DatasetInfo(name=parsed.base, available=True, kind="user", images_from=source.name,
                           version=fingerprint, **catalog.describe(stored, root))
    if kind == "plugin":
        try:
            described = plugins.describe(parsed.base, root)
        except DatasetUnavailable as err:  # a broken plugin is one unavailable dataset, not a crash
            return DatasetInfo(name=parsed.base, num_classes=0, class_names=(), native_shape=None, splits={},
                               provenance="?", licence="?", available=False, unavailable_reason=str(err),
                               kind="plugin", images_from=parsed.base)
        return DatasetInfo(name=parsed.base, available=True, kind="plugin", images_from=parsed.base,
                           version=plugins.version(parsed.base), **described)
    reason = catalog.unavailable_reason(parsed.base, root)
    if reason is None:
        described = catalog.describe(parsed.base, root)
        version = catalog.prepared_dir(parsed.base, root).name
        return DatasetInfo(name=parsed.base, available=True, kind="catalog", images_from=parsed.base,
                           version=version, **described)
    entry = catalog.CATALOG.get(parsed.base, catalog.CatalogEntry(0, None, parsed.base, "unknown"))
    return DatasetInfo(
        name=parsed.base, num_classes=entry.num_classes, class_names=tuple(str(i) for i in range(entry.num_classes)),
        native_shape=entry.native_shape, splits={}, provenance=entry.provenance, licence=entry.licence,
        available=False, unavailable_reason=reason, kind="catalog", images_from=parsed.base,
    )


def prepare(base: str, data_dir: str | os.PathLike | None = None):
    """Prepare built-in ``base`` into the data dir unless already there; return its TFDS builder."""
    import tensorflow_datasets as tfds

    root = paths.data_dir(data_dir)
    cls = BUILTINS[base]
    if base == "fashion_mnist" and fashion_missing_reason():
        raise DatasetUnavailable(fashion_missing_reason())
    # TFDS warns about the not-yet-written folder and prints its own banner; we print ours.
    logging.getLogger("absl").setLevel(logging.ERROR)
    builder = cls(data_dir=str(root))
    if builder.is_prepared():
        return builder
    with prepare_lock(root, cls.name):
        builder = cls(data_dir=str(root))
        if builder.is_prepared():
            return builder
        from rich.console import Console

        console = Console(stderr=True)
        sizes = ", ".join(f"{n:,} {s}" for s, n in cls.SPLIT_SIZES.items())
        message = f"Preparing [bold]{base}[/] {cls.VERSION} ({sizes}) into {root} — first use only"
        tfds.disable_progress_bar()
        with console.status(message), contextlib.redirect_stdout(io.StringIO()):
            builder.download_and_prepare(file_format="array_record")
        console.print(f"[green]✓[/] prepared {base} {cls.VERSION} in {builder.data_dir}")
    return builder


def _read_builtin(base: str, split: str, data_dir: Path) -> dict[str, np.ndarray]:
    builder = prepare(base, data_dir)
    source = builder.as_data_source(split=split)
    records = source.__getitems__(list(range(len(source))))
    order = np.argsort([int(r["index"]) for r in records], kind="stable")
    records = [records[i] for i in order]
    arrays = {
        "image": np.stack([np.asarray(r["image"], dtype=np.uint8) for r in records]),
        "label": np.asarray([r["label"] for r in records], dtype=np.int64),
    }
    for field in BUILTINS[base].EXTRA_FIELDS:
        arrays[field] = np.asarray([r[field] for r in records], dtype=np.int64)
    return arrays


_BASE_CACHE: dict[tuple[str, str, str, str], dict[str, np.ndarray]] = {}
_DOMAIN_CACHE: dict[tuple[str, str, InputSpec | None, str, str], Domain] = {}


def clear_cache() -> None:
    """Forget every loaded array and installed plugin seen (tests; long-lived processes that
    change the data dir or install packages)."""
    _BASE_CACHE.clear()
    _DOMAIN_CACHE.clear()
    plugins.entry_points.cache_clear()
    plugins.builder_class.cache_clear()


def _read_base(meta: DatasetInfo, split: str, root: Path) -> dict[str, np.ndarray]:
    # The version is part of the key: an edited user folder is a different dataset.
    key = (meta.images_from if meta.kind == "user" else meta.name, split, str(root), meta.version)
    if key not in _BASE_CACHE:
        if meta.kind == "builtin":
            _BASE_CACHE[key] = _read_builtin(meta.name, split, root)
        elif meta.kind == "plugin":
            _BASE_CACHE[key] = plugins.read_split(meta.name, split, root)
        elif meta.kind == "user":
            source = user.parse(meta.name)
            stored = f"{source.builder_name}/{user.config_name(source, meta.version)}"
            _BASE_CACHE[key] = catalog.read_split(stored, split, root)
        else:
            _BASE_CACHE[key] = catalog.read_split(meta.name, split, root)
    return _BASE_CACHE[key]


def data_version(name: str, data_dir: str | os.PathLike | None = None) -> str | None:
    """The content version of ``name``'s base, for caches keyed by data (source models):
    a built-in's or plugin's builder version, a user dataset's fingerprint; None for catalog
    datasets (TFDS versions them by folder) and unknown names."""
    parsed = parse_name(name)
    if parsed.base in BUILTINS:
        return str(BUILTINS[parsed.base].VERSION)
    if user.is_user(parsed.base) or parsed.base in plugins.entry_points():
        return info(parsed.base, data_dir).version or None
    return None


def _readonly(array: np.ndarray) -> np.ndarray:
    array.flags.writeable = False
    return array


def load(
    name: str,
    split: str = "train",
    spec: InputSpec | None = None,
    data_dir: str | os.PathLike | None = None,
) -> Domain:
    """Load one split of ``name`` (``BASE[@OPS]``), transformed and mapped to ``spec``.

    Input ops apply at native resolution in the order given, then the images are resized and
    channel-mapped to ``spec`` (``None`` keeps the native shape). Label ops apply to the
    train split only. Random ops are seeded from (name, split): the same name gives the same
    bytes in every process. Results are cached per (name, split, spec, data dir).
    """
    parsed = parse_name(name)
    if split not in SPLITS:
        raise UserError(f"unknown split {split!r} for dataset {name!r}{close_matches(split, SPLITS)}; use one of {', '.join(SPLITS)}")
    root = paths.data_dir(data_dir)
    meta = info(parsed.base, root)
    # A user path is keyed by its absolute path and content, not by how the suite spelled it.
    key = (parsed.name.replace(parsed.base, meta.images_from, 1) if meta.kind == "user" else parsed.name,
           split, spec, str(root), meta.version)
    if key in _DOMAIN_CACHE:
        return _DOMAIN_CACHE[key]
    if not meta.available:
        raise DatasetUnavailable(meta.unavailable_reason)
    arrays = _read_base(meta, split, root)
    # Which base image each example is (its position in the base split), kept through subsets:
    # benchmark.leakage compares them across datasets made from the same images.
    arrays = {**arrays, "base_index": np.arange(len(arrays["label"]), dtype=np.int64)}
    num_classes, class_names = meta.num_classes, meta.class_names
    if parsed.class_range is not None:
        arrays, num_classes, class_names = _class_subset(parsed, arrays, num_classes, class_names)
    images, labels = arrays["image"], arrays["label"].astype(np.int32)
    for position, (op, value) in enumerate(parsed.input_ops):
        rng = np.random.default_rng(transforms.stable_seed(parsed.base, split, position, op, value))
        images = transforms.apply_input_op(images, op, value, rng)
    if split == "train":
        for op, value in parsed.label_ops:
            rng = np.random.default_rng(transforms.stable_seed(parsed.base, op, value))
            labels = transforms.apply_label_op(labels, op, value, num_classes, rng)
    if spec is not None:
        images = transforms.to_input_spec(images, spec)
    extras = {k: _readonly(v.copy()) for k, v in arrays.items() if k not in ("image", "label")}
    domain = Domain(
        name=parsed.name, split=split, images=_readonly(np.array(images, copy=True)),
        labels=_readonly(np.array(labels, dtype=np.int32)), num_classes=num_classes,
        class_names=class_names, metadata=extras,
    )
    _DOMAIN_CACHE[key] = domain
    return domain


def _class_subset(parsed, arrays: dict[str, np.ndarray], num_classes: int, class_names):
    """Keep classes lo..hi (every split), relabelled 0..hi-lo: Yosinski et al.'s A/B halves."""
    lo, hi = parsed.class_range
    if hi >= num_classes:
        raise UserError(
            f"dataset name {parsed.name!r}: classes={lo}-{hi} needs classes up to {hi}, but "
            f"{parsed.base!r} has {num_classes} (0-{num_classes - 1})"
        )
    keep = (arrays["label"] >= lo) & (arrays["label"] <= hi)
    subset = {k: v[keep] for k, v in arrays.items()}
    subset["label"] = subset["label"] - lo
    return subset, hi - lo + 1, tuple(class_names)[lo : hi + 1]
