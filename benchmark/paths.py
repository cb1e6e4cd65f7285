"""Where transferbench keeps prepared datasets, source-model checkpoints and compiled kernels.

Everything lives under one cache root (``$TBENCH_CACHE_DIR``, default the user cache dir,
``~/.cache/transferbench``). Prepared TFDS datasets go to ``$TBENCH_DATA_DIR`` (default
``<cache root>/tfds``); ``--data-dir`` on the command line overrides both.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_root() -> Path:
    env = os.environ.get("TBENCH_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "transferbench"


def data_dir(override: str | os.PathLike | None = None) -> Path:
    """Directory of prepared TFDS datasets (built-in and catalog)."""
    if override:
        return Path(override).expanduser()
    env = os.environ.get("TBENCH_DATA_DIR")
    if env:
        return Path(env).expanduser()
    return cache_root() / "tfds"


def checkpoint_dir(override: str | os.PathLike | None = None) -> Path:
    """Directory of pretrained source models (orbax checkpoints)."""
    if override:
        return Path(override).expanduser()
    return cache_root() / "sources"


def compilation_cache_dir() -> Path:
    """JAX persistent compilation cache (shared by every process of one user)."""
    env = os.environ.get("TBENCH_JAX_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    return cache_root() / "jax"
