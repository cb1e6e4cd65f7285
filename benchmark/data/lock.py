"""One process prepares a dataset at a time: parallel workers share the data dir.

Whoever takes the lock removes the ``incomplete.*`` folders TFDS left under the dataset
by a preparation that was killed (no live preparer can own them while the lock is held).
"""

from __future__ import annotations

import contextlib
import fcntl
import shutil
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def prepare_lock(root: Path, name: str) -> Iterator[None]:
    """Hold an exclusive lock on ``root/.NAME.lock`` (``/`` in ``name`` becomes ``-``)."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f".{name.replace('/', '-')}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        _remove_incomplete(root / name)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _remove_incomplete(folder: Path) -> None:
    """TFDS writes into ``<dataset>[/<config>]/incomplete.XXXXXX_<version>/`` and renames it when
    done; a SIGKILL leaves it behind for good (the next preparation makes a new one)."""
    for left in [*folder.glob("incomplete.*"), *folder.glob("*/incomplete.*")]:
        if left.is_dir() and not left.is_symlink():
            shutil.rmtree(left, ignore_errors=True)
