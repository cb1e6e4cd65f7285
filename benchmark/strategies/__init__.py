"""Transfer strategies: one file each, registered here by name.

``names()`` lists them; ``get(name)`` returns the :class:`~benchmark.strategies.base.Strategy`
record (``defaults``, ``required``, ``uses_source``, ``uses_source_data``,
``uses_unlabeled_target``, ``min_labels_per_class``, ``resolve(params)``, ``fit(ctx)``).
Adding a strategy = one new file defining ``STRATEGY`` + one line below.
"""

from __future__ import annotations

import importlib

from benchmark.errors import UserError
from benchmark.strategies.base import Strategy

_MODULES = {
    "scratch": "benchmark.strategies.scratch",
    "linear_probe": "benchmark.strategies.linear_probe",
    "finetune_partial": "benchmark.strategies.finetune_partial",
    "finetune_full": "benchmark.strategies.finetune_full",
    "self_training": "benchmark.strategies.self_training",
    "dann": "benchmark.strategies.dann",
    "source_only": "benchmark.strategies.source_only",
}


def names() -> list[str]:
    """Registered strategy names."""
    return sorted(_MODULES)


def get(name: str) -> Strategy:
    """The strategy called ``name``; an unknown name raises :class:`UserError`."""
    if name not in _MODULES:
        raise UserError(f"unknown strategy {name!r}; choose one of {', '.join(names())}", field="strategy")
    return importlib.import_module(_MODULES[name]).STRATEGY


__all__ = ["Strategy", "get", "names"]
