"""TFDS catalog datasets (``mnist``, ``svhn_cropped``, ``mnist_corrupted/shot_noise``, ...).

They need a download, so transferbench only *reads* them from a data dir where they were
prepared as ``array_record`` (readable without TensorFlow through ``as_data_source``). On a
machine with internet and TensorFlow::

    pip install tensorflow-cpu tensorflow-datasets
    tfds build mnist_corrupted/shot_noise --file_format=array_record --data_dir=DIR

then copy ``DIR`` to this machine's data dir (``tbench datasets`` prints it). ``tfrecord``
folders (TFDS's default) cannot be read without TensorFlow: rebuild them as above. Any TFDS
dataset prepared this way in the data dir loads by its name, listed here or not.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np

from benchmark.errors import DatasetUnavailable


@dataclasses.dataclass(frozen=True)
class CatalogEntry:
    num_classes: int
    native_shape: tuple[int, int, int] | None
    provenance: str
    licence: str


_MNIST_C = (
    "identity", "shot_noise", "impulse_noise", "glass_blur", "motion_blur", "shear", "scale", "rotate",
    "brightness", "translate", "stripe", "fog", "spatter", "dotted_line", "zigzag", "canny_edges",
)
CATALOG: dict[str, CatalogEntry] = {
    "mnist": CatalogEntry(10, (28, 28, 1), "MNIST (LeCun et al. 1998)", "CC BY-SA 3.0"),
    "kmnist": CatalogEntry(10, (28, 28, 1), "Kuzushiji-MNIST (Clanuwat et al. 2018)", "CC BY-SA 4.0"),
    "emnist/digits": CatalogEntry(10, (28, 28, 1), "EMNIST digits (Cohen et al. 2017)", "CC0"),
    "emnist/mnist": CatalogEntry(10, (28, 28, 1), "EMNIST mnist (Cohen et al. 2017)", "CC0"),
    "emnist/letters": CatalogEntry(37, (28, 28, 1), "EMNIST letters (Cohen et al. 2017)", "CC0"),
    "emnist/balanced": CatalogEntry(47, (28, 28, 1), "EMNIST balanced (Cohen et al. 2017)", "CC0"),
    "svhn_cropped": CatalogEntry(10, (32, 32, 3), "SVHN cropped digits (Netzer et al. 2011)", "non-commercial use"),
    "cifar10": CatalogEntry(10, (32, 32, 3), "CIFAR-10 (Krizhevsky 2009)", "MIT-like (Krizhevsky)"),
    "stl10": CatalogEntry(10, (96, 96, 3), "STL-10 (Coates et al. 2011)", "research use"),
    **{
        f"mnist_corrupted/{c}": CatalogEntry(10, (28, 28, 1), f"MNIST-C {c} (Mu & Gilmer 2019)", "CC BY 4.0")
        for c in _MNIST_C
    },
}


def build_command(name: str, data_dir: Path) -> str:
    return f"tfds build {name} --file_format=array_record --data_dir={data_dir}"


def _version_dirs(folder: Path) -> list[Path]:
    def key(p: Path) -> tuple[int, ...]:
        return tuple(int(x) for x in p.name.split("."))

    found = [p for p in folder.glob("*") if (p / "dataset_info.json").is_file() and p.name.replace(".", "").isdigit()]
    return sorted(found, key=key)


def prepared_dir(name: str, data_dir: Path) -> Path | None:
    """The newest prepared version folder of ``name`` (``NAME[/CONFIG]``) in ``data_dir``, if any."""
    folder = data_dir / name
    versions = _version_dirs(folder) if folder.is_dir() else []
    return versions[-1] if versions else None


def unavailable_reason(name: str, data_dir: Path) -> str | None:
    """Why ``name`` cannot be read from ``data_dir`` (None when it can)."""
    folder = prepared_dir(name, data_dir)
    if folder is None:
        return (
            f"catalog dataset {name!r} is not prepared in {data_dir}; it needs a download: on a machine "
            f"with internet run '{build_command(name, data_dir)}' and copy that folder here"
        )
    # TFDS leaves ``fileFormat`` out of dataset_info.json for its default, tfrecord.
    file_format = json.loads((folder / "dataset_info.json").read_text()).get("fileFormat", "tfrecord")
    if file_format != "array_record":
        return (
            f"catalog dataset {name!r} in {folder} is stored as {file_format}, "
            f"which needs TensorFlow to read; rebuild it with '{build_command(name, data_dir)}'"
        )
    return None


def _builder(name: str, data_dir: Path):
    import tensorflow_datasets as tfds

    reason = unavailable_reason(name, data_dir)
    if reason:
        raise DatasetUnavailable(reason)
    return tfds.builder_from_directory(str(prepared_dir(name, data_dir)))


def _keys(builder) -> tuple[str, str]:
    keys = builder.info.supervised_keys
    if keys and len(keys) == 2 and all(isinstance(k, str) for k in keys):
        return keys
    return "image", "label"


def describe(name: str, data_dir: Path) -> dict:
    """Classes, shape and split sizes read from a prepared catalog dataset's metadata."""
    return describe_builder(_builder(name, data_dir), name)


def describe_builder(builder, name: str) -> dict:
    """``DatasetInfo`` fields of any TFDS builder with an image and a ``ClassLabel`` feature."""
    image_key, label_key = _keys(builder)
    label = builder.info.features[label_key]
    shape = tuple(builder.info.features[image_key].shape)
    return {
        "num_classes": int(label.num_classes),
        "class_names": tuple(label.names),
        "native_shape": shape if None not in shape else None,
        "splits": {s: int(v.num_examples) for s, v in builder.info.splits.items()},
        "provenance": (builder.info.description or name).strip().splitlines()[0][:200],
        "licence": (builder.info.redistribution_info.license or "see the TFDS catalog page").strip()[:200],
    }


def read_split(name: str, split: str, data_dir: Path) -> dict[str, np.ndarray]:
    """``{"image": uint8[N,H,W,C], "label": int64[N]}`` from a prepared array_record dataset."""
    return read_builder(_builder(name, data_dir), split, name)


def read_builder(builder, split: str, name: str) -> dict[str, np.ndarray]:
    """One split of a prepared array_record TFDS builder, in ``index`` order where it has one
    (TFDS shuffles records on write)."""
    if split not in builder.info.splits:
        raise DatasetUnavailable(
            f"dataset {name!r} has no split {split!r} (it has {', '.join(builder.info.splits)})"
        )
    image_key, label_key = _keys(builder)
    source = builder.as_data_source(split=split)
    records = source.__getitems__(list(range(len(source))))
    if "index" in builder.info.features:
        records = [records[i] for i in np.argsort([int(r["index"]) for r in records], kind="stable")]
    images = np.stack([np.asarray(r[image_key], dtype=np.uint8) for r in records]) if records else np.zeros((0, 1, 1, 1), np.uint8)
    if images.ndim == 3:
        images = images[..., None]
    labels = np.asarray([r[label_key] for r in records], dtype=np.int64)
    return {"image": images, "label": labels}
