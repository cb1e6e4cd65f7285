"""The strategy registry: the built-in modules of ``benchmark.strategies`` and installed plugins.

A strategy is one module that defines ``DECLARATION`` (a
:class:`~benchmark.strategies.declaration.Declaration`, plain data) whose ``hooks`` name its
``fit`` function. Built-ins are found by listing this package (a new file is a new strategy, no
registry line); plugins come from the entry-point group ``transferbench.strategies``, each
entry pointing at a module with ``DECLARATION`` or at a ``Declaration`` object::

    [project.entry-points."transferbench.strategies"]
    my_method = "my_package.my_method"

``names()`` and ``get(name)`` import no JAX; ``fit_hook(name)`` imports the training code.
"""

from __future__ import annotations

import functools
import importlib
import pkgutil
from collections.abc import Callable
from importlib.metadata import entry_points
from typing import Any

from benchmark.errors import UserError, did_you_mean
from benchmark.strategies.declaration import Declaration

ENTRY_POINT_GROUP = "transferbench.strategies"
_PACKAGE = "benchmark.strategies"
_NOT_STRATEGIES = {"declaration", "base", "registry"}


def _declaration_of(obj: Any, origin: str) -> Declaration:
    found = obj if isinstance(obj, Declaration) else getattr(obj, "DECLARATION", None)
    if not isinstance(found, Declaration):
        raise UserError(f"{origin} defines no strategy DECLARATION (a benchmark.strategies.declaration.Declaration)")
    return found


@functools.cache
def _registry() -> dict[str, Declaration]:
    found: dict[str, Declaration] = {}
    package = importlib.import_module(_PACKAGE)
    for info in pkgutil.iter_modules(package.__path__):
        if info.name in _NOT_STRATEGIES or info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{_PACKAGE}.{info.name}")
        decl = _declaration_of(module, f"built-in strategy module {module.__name__}")
        found[decl.name] = decl
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        try:
            decl = _declaration_of(ep.load(), f"plugin {ep.value!r}")
        except UserError:
            raise
        except Exception as err:  # a broken plugin is the user's to fix, not a traceback
            raise UserError(f"the strategy plugin {ep.name!r} ({ep.value}) failed to load: "
                            f"{type(err).__name__}: {err}") from None
        if decl.name in found:
            raise UserError(f"the strategy plugin {ep.value!r} declares {decl.name!r}, which already exists; "
                            "rename it")
        found[decl.name] = decl
    return found


def refresh() -> None:
    """Forget the registry (after installing a plugin in this process)."""
    _registry.cache_clear()


def names() -> list[str]:
    """Every strategy name, built-in and plugin, sorted."""
    return sorted(_registry())


def get(name: str) -> Declaration:
    """The declaration of ``name``; an unknown name raises :class:`UserError`."""
    registry = _registry()
    if name not in registry:
        raise UserError(f"unknown strategy {name!r}" + did_you_mean(name, sorted(registry)), field="strategy")
    return registry[name]


def fit_hook(name: str) -> Callable[[Any], Any]:
    """The ``fit(ctx) -> FitResult`` function of ``name`` (imports its training code: JAX)."""
    module, _, attr = get(name).hooks.partition(":")
    return getattr(importlib.import_module(module), attr or "fit")


