"""One process prepares a dataset at a time: parallel workers share the data dir."""

from __future__ import annotations

import contextlib
import fcntl
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def prepare_lock(root: Path, name: str) -> Iterator[None]:
    """Hold an exclusive lock on ``root/.NAME.lock`` (``/`` in ``name`` becomes ``-``)."""
    root.mkdir(parents=True, exist_ok=True)
    with open(root / f".{name.replace('/', '-')}.lock", "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
