"""Datasets from other installed packages: the ``transferbench.datasets`` entry-point group.

A package adds a dataset with one entry point (``pyproject.toml``)::

    [project.entry-points."transferbench.datasets"]
    leaves = "my_package.leaves:Leaves"

The contract, kept minimal:

* the entry point's **name** is the dataset's name in suites (letters, digits, ``_``, ``-``,
  ``.``; a built-in of the same name wins, and the plugin wins over a TFDS catalog name);
* its **object** is a TFDS builder *class* (a ``tfds.core.GeneratorBasedBuilder`` subclass, not
  an instance) that generates splits ``train`` and ``test`` from files on the machine (nothing
  is downloaded), with an image feature (``tfds.features.Tensor`` uint8 H×W×C, or
  ``tfds.features.Image``) and a ``tfds.features.ClassLabel``, named by its ``supervised_keys``
  (default ``("image", "label")``);
* optional: an int64 ``index`` feature (records are read back in its order; TFDS shuffles them on
  write), class attributes ``PROVENANCE`` and ``LICENCE`` (shown by ``tbench datasets``).

``benchmark.data.builders.BuiltinBuilder`` is the easiest base: set ``name``, ``NATIVE_SHAPE``,
``CLASS_NAMES``, ``SPLIT_SIZES``, ``PROVENANCE``, ``LICENCE`` and write ``make_splits()``.
The builder is prepared into the data dir as array_record on first use, like a built-in; its
``VERSION`` is the data's version (bump it when the data changes: source models are keyed by
it). A plugin that fails to import, or is not such a class, makes its dataset unavailable with
one sentence naming the package; other datasets are unaffected.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import io
import logging
import re
from pathlib import Path

import numpy as np

from benchmark.errors import DatasetUnavailable, UserError

GROUP = "transferbench.datasets"
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


@functools.cache
def entry_points() -> dict[str, importlib.metadata.EntryPoint]:
    """Dataset entry points of every installed package, by name (the first of a repeated name)."""
    found: dict[str, importlib.metadata.EntryPoint] = {}
    for entry in importlib.metadata.entry_points(group=GROUP):
        found.setdefault(entry.name, entry)
    return found


def names() -> list[str]:
    return sorted(entry_points())


def _where(name: str) -> str:
    entry = entry_points()[name]
    package = entry.dist.name if entry.dist is not None else "an unknown package"
    return f"dataset plugin {name!r} ({entry.value}, from {package})"


@functools.cache
def builder_class(name: str) -> type:
    """The entry point's builder class; ``DatasetUnavailable`` (one sentence) when it is broken."""
    import tensorflow_datasets as tfds

    if not _NAME.match(name):
        raise DatasetUnavailable(f"{_where(name)} has a name transferbench cannot use in a suite; name the "
                                 "entry point with letters, digits, '_', '-' or '.' only")
    try:
        cls = entry_points()[name].load()
    except Exception as err:  # a plugin can fail in any way on import; it is the package's bug
        raise DatasetUnavailable(f"{_where(name)} cannot be imported ({type(err).__name__}: {err}); fix or "
                                 "uninstall that package") from None
    if not (isinstance(cls, type) and issubclass(cls, tfds.core.GeneratorBasedBuilder)):
        raise DatasetUnavailable(f"{_where(name)} is {cls!r}, not a tfds.core.GeneratorBasedBuilder subclass; "
                                 "see benchmark/data/plugins.py for the contract")
    return cls


def _failed(name: str, doing: str, err: Exception) -> DatasetUnavailable:
    return DatasetUnavailable(f"{_where(name)} failed while {doing} ({type(err).__name__}: {err}); fix or "
                              "uninstall that package")


def describe(name: str, root: Path) -> dict:
    """Classes, shape, split sizes (once prepared, or as the class declares) and provenance."""
    from benchmark.data.catalog import describe_builder

    cls = builder_class(name)
    try:
        found = describe_builder(cls(data_dir=str(root)), name)
    except Exception as err:
        raise _failed(name, "describing its features", err) from None
    if not found["splits"]:
        found["splits"] = dict(getattr(cls, "SPLIT_SIZES", {}) or {})
    found["provenance"] = str(getattr(cls, "PROVENANCE", "") or found["provenance"])
    found["licence"] = str(getattr(cls, "LICENCE", "") or found["licence"])
    return found


def version(name: str) -> str:
    return str(builder_class(name).VERSION)


def prepare(name: str, root: Path):
    """The plugin's builder, prepared into ``root`` as array_record unless it already is."""
    import tensorflow_datasets as tfds

    from benchmark.data.builders._base import deterministic_serialization
    from benchmark.data.lock import prepare_lock

    cls = builder_class(name)
    logging.getLogger("absl").setLevel(logging.ERROR)
    try:
        builder = cls(data_dir=str(root))
        if builder.is_prepared():
            return builder
        with prepare_lock(root, builder.name):
            builder = cls(data_dir=str(root))
            if not builder.is_prepared():
                from rich.console import Console

                tfds.disable_progress_bar()
                console = Console(stderr=True)
                with console.status(f"Preparing [bold]{name}[/] (plugin) into {root} — first use only"), \
                        contextlib.redirect_stdout(io.StringIO()), deterministic_serialization():
                    builder.download_and_prepare(file_format="array_record")
                console.print(f"[green]✓[/] prepared {name} {cls.VERSION} in {builder.data_dir}")
    except UserError:
        raise
    except Exception as err:
        raise _failed(name, "preparing its data", err) from None
    return builder


def read_split(name: str, split: str, root: Path) -> dict[str, np.ndarray]:
    from benchmark.data.catalog import read_builder

    return read_builder(prepare(name, root), split, name)
