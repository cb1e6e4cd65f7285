"""Transfer strategies: one module each, declared as plain data (see ``declaration``) and found
by the registry (``registry``: this package's modules and the ``transferbench.strategies`` entry
point). ``names()``, ``get(name)`` and ``fit_hook(name)`` are re-exported here.
"""

from __future__ import annotations

from benchmark.strategies.declaration import Declaration, Needs, Param, SearchDim
from benchmark.strategies.registry import ENTRY_POINT_GROUP, fit_hook, get, names, refresh

__all__ = ["ENTRY_POINT_GROUP", "Declaration", "Needs", "Param", "SearchDim", "fit_hook", "get", "names",
           "refresh"]
