"""Each cell runs in this process, one at a time, its kernels on every usable core.

The engine keeps pretrained sources and compiled kernels warm between cells. ``auto``'s choice
where a grid is small, the backend is an accelerator or the backbone is large; for small
backbones on a multi-core CPU one single-threaded process per core is faster (``processes``).
"""

from __future__ import annotations

import itertools
from typing import Any

from benchmark.cellspec import CellSpec


class LocalExecutor:
    """Runs :func:`benchmark.executors.run_group` synchronously inside ``submit``."""

    slots = 1

    def __init__(self, *, data_dir: str | None = None, checkpoint_dir: str | None = None):
        self.data_dir = data_dir
        self.checkpoint_dir = checkpoint_dir
        self._done: dict[int, dict[str, Any]] = {}
        self._ids = itertools.count()

    def submit(self, spec: CellSpec, seeds: list[int]) -> int:
        from benchmark.executors import run_group

        handle = next(self._ids)
        self._done[handle] = run_group(spec.to_dict(), seeds, self.data_dir, self.checkpoint_dir)
        return handle

    def wait(self, handles: list[int]) -> list[tuple[int, dict[str, Any]]]:
        return [(h, self._done.pop(h)) for h in handles]

    def shutdown(self) -> None:
        self._done.clear()
