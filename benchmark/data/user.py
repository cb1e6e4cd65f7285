"""The user's own data: ``folder:PATH`` and ``npz:PATH``, fingerprinted and prepared once.

A name ``folder:PATH[@OPS]`` or ``npz:PATH[@OPS]`` (layouts: ``benchmark.data.user_folder``,
``benchmark.data.user_npz``) is read, checked, and written into the data dir as an
``array_record`` TFDS dataset like the built-ins: ``DATA_DIR/user_folder/<name>-<fingerprint>/``.
Later reads come from there. The fingerprint is a SHA-256 of the bytes of every file read (and
their relative paths), so an edited, added or removed image gives a new fingerprint and the data
is prepared again; the older copy of the same path is then deleted. Within one process the
hash of an unchanged file (same inode, size, mtime and ctime) is reused.

PATH: relative paths resolve against the current directory of the process that reads the data
(``tbench`` is usually started from the project folder; use absolute paths on a Ray cluster).
``~`` expands. A path may contain ``,`` but not ``@``, which starts the transform ops.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import io
import json
import logging
import os
import re
import shutil
from pathlib import Path

import numpy as np
import tensorflow_datasets as tfds

from benchmark.data.builders._base import deterministic_serialization
from benchmark.data.lock import prepare_lock
from benchmark.data.user_folder import image_extensions, image_files, list_files, read_folder
from benchmark.data.user_npz import read_npz
from benchmark.errors import UserError

PREFIXES = ("folder", "npz")
# Part of every fingerprint: a change to how files become arrays re-prepares every user dataset.
FORMAT_VERSION = "1"
LICENCE = "the user's own data"
_READERS = {"folder": read_folder, "npz": read_npz}
_FILE_HASHES: dict[tuple, str] = {}


def is_user(base: str) -> bool:
    """Whether a dataset base names the user's own data (``folder:...``, ``npz:...``)."""
    return base.partition(":")[0] in PREFIXES and ":" in base


@dataclasses.dataclass(frozen=True)
class UserSource:
    """A parsed ``folder:PATH`` / ``npz:PATH``: ``path`` is absolute."""

    kind: str
    path: Path

    @property
    def name(self) -> str:
        return f"{self.kind}:{self.path}"

    @property
    def builder_name(self) -> str:
        return f"user_{self.kind}"


def parse(base: str) -> UserSource:
    kind, _, raw = base.partition(":")
    if not raw.strip():
        example = "data/pets" if kind == "folder" else "data/digits.npz"
        raise UserError(f"dataset name {base!r} has no path after '{kind}:'; write e.g. '{kind}:{example}'")
    return UserSource(kind, Path(os.path.abspath(os.path.expanduser(raw.strip()))))


def _files(source: UserSource) -> list[Path]:
    """Every file the reader reads; ``UserError`` when the path is missing or of the wrong kind."""
    if source.kind == "npz":
        if not source.path.is_file():
            read_npz(source.path)  # raises the sentence for a missing path or a folder
        return [source.path]
    if not source.path.is_dir():
        list_files(source.path)  # raises the sentence for a missing path or a file
    return image_files(source.path, image_extensions())


def _file_hash(file: Path) -> str:
    try:
        st = file.stat()
        key = (str(file), st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)
        if key not in _FILE_HASHES:
            with open(file, "rb") as handle:
                _FILE_HASHES[key] = hashlib.file_digest(handle, "sha256").hexdigest()
        return _FILE_HASHES[key]
    except OSError as err:
        raise UserError(f"{file} cannot be read ({err.strerror}); check its permissions") from None


def fingerprint(source: UserSource) -> str:
    """SHA-256 (hex) of the format version and every file's relative path and bytes."""
    digest = hashlib.sha256(f"transferbench-user-data {FORMAT_VERSION} {source.kind}\n".encode())
    for file in _files(source):
        relative = file.relative_to(source.path) if source.kind == "folder" else Path(file.name)
        digest.update(f"{relative.as_posix()}\0{_file_hash(file)}\n".encode())
    return digest.hexdigest()


def config_name(source: UserSource, print_: str) -> str:
    """``<readable stem>-<16 hex digits>``: the dataset's folder under ``DATA_DIR/user_<kind>/``."""
    stem = re.sub(r"[^a-z0-9_]+", "_", source.path.stem.lower()).strip("_")[:40] or "data"
    return f"{stem}-{print_[:16]}"


class _UserBuilder(tfds.core.GeneratorBasedBuilder, skip_registration=True):
    """Writes arrays already read and checked (``splits``) as a TFDS dataset."""

    VERSION = tfds.core.Version("1.0.0")
    url_infos = None  # nothing to download; skips TFDS's checksum-file lookup

    def __init__(self, *, splits: dict[str, dict[str, np.ndarray]], class_names: tuple[str, ...], **kwargs):
        self._splits = splits
        self._class_names = class_names
        super().__init__(**kwargs)

    def _info(self) -> tfds.core.DatasetInfo:
        shape = next(iter(self._splits.values()))["image"].shape[1:]
        return tfds.core.DatasetInfo(
            builder=self,
            description=self.builder_config.description,
            features=tfds.features.FeaturesDict({
                "image": tfds.features.Tensor(shape=shape, dtype=np.uint8),
                "label": tfds.features.ClassLabel(names=list(self._class_names)),
                "index": tfds.features.Scalar(dtype=np.int64),
            }),
            supervised_keys=("image", "label"),
            license=LICENCE,
        )

    def _split_generators(self, dl_manager):
        return {split: self._generate_examples(arrays) for split, arrays in self._splits.items()}

    def _generate_examples(self, arrays):
        for i in range(arrays["label"].shape[0]):
            yield i, {"image": arrays["image"][i], "label": int(arrays["label"][i]), "index": i}


class _FolderBuilder(_UserBuilder, skip_registration=True):
    name = "user_folder"


class _NpzBuilder(_UserBuilder, skip_registration=True):
    name = "user_npz"


_BUILDERS = {"folder": _FolderBuilder, "npz": _NpzBuilder}


def _info_file(version_dir: Path) -> Path:
    return version_dir / "dataset_info.json"


def prepare(source: UserSource, root: Path) -> tuple[str, str]:
    """Prepare ``source`` into ``root`` unless this content is there; ``(TFDS name/config, fingerprint)``.

    The files are read and checked before anything is written, so bad input leaves no trace.
    """
    print_ = fingerprint(source)
    config = config_name(source, print_)
    stored = f"{source.builder_name}/{config}"
    version_dir = root / stored / str(_UserBuilder.VERSION)
    if _info_file(version_dir).is_file():
        return stored, print_
    splits, class_names = _READERS[source.kind](source.path)
    if fingerprint(source) != print_:
        raise UserError(f"{source.path} changed while it was being read; run the command again")
    logging.getLogger("absl").setLevel(logging.ERROR)
    with prepare_lock(root, source.builder_name):
        if not _info_file(version_dir).is_file():
            from rich.console import Console

            builder = _BUILDERS[source.kind](
                splits=splits, class_names=class_names, data_dir=str(root),
                config=tfds.core.BuilderConfig(name=config, description=source.name),
            )
            sizes = ", ".join(f"{len(a['label']):,} {s}" for s, a in splits.items())
            tfds.disable_progress_bar()
            console = Console(stderr=True)
            with console.status(f"Preparing [bold]{source.name}[/] ({sizes}) into {root}"), \
                    contextlib.redirect_stdout(io.StringIO()), deterministic_serialization():
                builder.download_and_prepare(file_format="array_record")
            console.print(f"[green]✓[/] prepared {source.name} ({len(class_names)} classes; {sizes}) in {version_dir}")
            _remove_older_copies(root, source, keep=config)
    return stored, print_


def _remove_older_copies(root: Path, source: UserSource, keep: str) -> None:
    """Delete copies of the same path prepared from older content (they can never be read again)."""
    for copy in prepared(root):
        if copy["source"] == source.name and copy["config"] != keep and copy["builder"] == source.builder_name:
            shutil.rmtree(root / copy["builder"] / copy["config"], ignore_errors=True)


def prepared(root: Path) -> list[dict]:
    """Every user dataset prepared in ``root``: ``{"source", "builder", "config", "classes", "splits", "shape"}``."""
    found = []
    for kind in PREFIXES:
        folder = root / f"user_{kind}"
        for info_file in sorted(folder.glob(f"*/{_UserBuilder.VERSION}/dataset_info.json")) if folder.is_dir() else []:
            try:
                meta = json.loads(info_file.read_text())
                features = json.loads((info_file.parent / "features.json").read_text())
                image = features["featuresDict"]["features"]["image"]["tensor"]["shape"]["dimensions"]
                classes = features["featuresDict"]["features"]["label"]["classLabel"]["numClasses"]
            except (OSError, ValueError, KeyError):
                continue  # a copy being written or deleted right now
            found.append({
                "source": meta.get("description", ""), "builder": f"user_{kind}",
                "config": info_file.parent.parent.name, "classes": int(classes),
                "shape": tuple(int(d) for d in image),
                "splits": {s["name"]: int(sum(int(n) for n in s.get("shardLengths", []))) for s in meta.get("splits", [])},
            })
    return found


def status(copy: dict) -> str:
    """``"current"``, ``"stale"`` (its source changed since; prepared again on next use) or ``"missing"``."""
    kind, _, path = copy["source"].partition(":")
    source = UserSource(kind, Path(path))
    if not source.path.exists():
        return "missing"
    try:
        return "current" if config_name(source, fingerprint(source)) == copy["config"] else "stale"
    except UserError:
        return "stale"
