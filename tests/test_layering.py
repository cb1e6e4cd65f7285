"""The package's layers: imports only go downward, the data and report layers never load JAX.

``LAYERS`` is the architecture of ``docs/architecture.md`` as data: a module may import its own
unit (its top-level module or subpackage of ``benchmark``) and any unit of a lower layer, never
a unit of its own layer or a higher one. Every import counts, including those inside functions
(a lazy import is still a dependency). A new top-level module or subpackage must be placed in
the table before this test passes; a genuine exception must be listed in ``EXCEPTIONS`` with
the reason, not silently allowed.
"""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "benchmark"

LAYERS: list[tuple[str, set[str]]] = [  # lowest first
    ("package root, errors, paths", {"benchmark", "errors", "paths"}),
    ("plain records, declaration types, output guards",
     {"cellspec", "results", "strategies.declaration", "outputs"}),
    ("declared schedules and backbones, store file checks", {"config.schedule", "backbones", "storecheck",
                                                               "strategies.registry"}),
    ("data, pretrained weights, store, statistics", {"data", "pretrained", "store", "analysis"}),
    ("report", {"report"}),
    ("flax models", {"models"}),
    ("strategies (declarations + training hooks)", {"strategies"}),
    ("engine; suite schema", {"engine", "config"}),
    ("grid", {"grid"}),
    ("orchestration", {"executors", "measures", "leakage"}),
    ("paper reproductions, speed benchmarks", {"reproduce", "bench"}),
    ("command line", {"cli"}),
]

# (importing module, imported unit): why it is allowed. Keep it short and say what would fix it.
EXCEPTIONS: dict[tuple[str, str], str] = {}

# A module may import its own unit; these units are one unit under two names.
SAME_UNIT = {"commands": "cli"}

MAX_LINES = 400
# module path relative to the repository: why it is still longer.
LONG_MODULES: dict[str, str] = {}

JAX_FREE = ["benchmark.errors", "benchmark.results", "benchmark.cellspec", "benchmark.store",
            "benchmark.config", "benchmark.analysis", "benchmark.report"]
JAX = ("jax", "flax", "optax")


def _modules() -> list[tuple[str, Path]]:
    out = []
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out.append((".".join(parts), path))
    return out


def _unit(module: str) -> str:
    """The longest name in ``LAYERS`` that ``module`` is or is inside (``strategies.declaration``
    before ``strategies``), else its top-level module or subpackage under ``benchmark``."""
    parts = module.split(".")[1:]
    known = {unit for _, units in LAYERS for unit in units}
    for n in range(len(parts), 0, -1):
        if ".".join(parts[:n]) in known:
            return ".".join(parts[:n])
    unit = parts[0] if parts else "benchmark"
    return SAME_UNIT.get(unit, unit)


def _imports(module: str, path: Path) -> list[tuple[str, int]]:
    """``(imported module, line)`` for every ``benchmark`` import in the file, at any depth."""
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            # ``from benchmark import models`` imports the unit ``models``.
            found += [(f"{base}.{alias.name}" if base == "benchmark" else base, node.lineno)
                      for alias in node.names]
    return [(name, line) for name, line in found if name == "benchmark" or name.startswith("benchmark.")]


def _layer_of() -> dict[str, int]:
    return {unit: i for i, (_, units) in enumerate(LAYERS) for unit in units}


def test_every_unit_of_the_package_has_a_layer():
    layer = _layer_of()
    missing = sorted({_unit(m) for m, _ in _modules()} - set(layer))
    assert not missing, f"place {missing} in LAYERS (tests/test_layering.py) and docs/architecture.md"
    assert len(layer) == sum(len(units) for _, units in LAYERS), "a unit is in two layers"


def test_imports_only_go_downward():
    layer = _layer_of()
    upward, used = [], set()
    for module, path in _modules():
        here = _unit(module)
        for name, line in _imports(module, path):
            there = _unit(name)
            if there == here or here not in layer or layer.get(there, len(LAYERS)) < layer[here]:
                continue
            if (module, there) in EXCEPTIONS:
                used.add((module, there))
                continue
            upward.append(f"{path.relative_to(PACKAGE.parent)}:{line} ({LAYERS[layer[here]][0]}) imports "
                          f"{name} ({LAYERS[layer[there]][0] if there in layer else 'no layer'})")
    assert not upward, "imports against the layers:\n" + "\n".join(upward)
    assert used == set(EXCEPTIONS), f"exceptions no longer needed: {sorted(set(EXCEPTIONS) - used)}"


def test_the_layer_check_sees_lazy_relative_and_package_imports(tmp_path):
    source = ("from . import sibling\n"
              "def f():\n"
              "    from benchmark import engine\n"
              "    import benchmark.grid\n"
              "    from ..models.flops import matmul_flops\n")
    path = tmp_path / "__init__.py"
    path.write_text(source)
    assert _imports("benchmark.analysis.sub", path) == [
        ("benchmark.analysis.sub", 1), ("benchmark.engine", 3), ("benchmark.grid", 4),
        ("benchmark.analysis.models.flops", 5)]
    path = tmp_path / "sub.py"
    path.write_text(source)
    assert [_unit(n) for n, _ in _imports("benchmark.analysis.sub", path)] == [
        "analysis", "engine", "grid", "models"]


def test_no_module_is_over_400_lines():
    too_long = {}
    for _, path in _modules():
        name = str(path.relative_to(PACKAGE.parent))
        lines = len(path.read_text().splitlines())
        if lines > MAX_LINES and name not in LONG_MODULES:
            too_long[name] = lines
    assert not too_long, f"split these modules (at most {MAX_LINES} lines): {too_long}"
    still = {name for name in LONG_MODULES if len((PACKAGE.parent / name).read_text().splitlines()) > MAX_LINES}
    assert still == set(LONG_MODULES), f"no longer too long, drop from LONG_MODULES: {set(LONG_MODULES) - still}"


_PROBE = """
import importlib, json, pkgutil, sys
package, watched = importlib.import_module(sys.argv[1]), sys.argv[2:]
names = [package.__name__]
if hasattr(package, "__path__"):
    names += [m.name for m in pkgutil.walk_packages(package.__path__, package.__name__ + ".")]
first = None
for name in names:
    importlib.import_module(name)
    if first is None and any(k in sys.modules for k in watched):
        first = name
print(json.dumps({"modules": names, "loaded": [k for k in watched if k in sys.modules], "first": first}))
"""


@pytest.mark.parametrize("package", JAX_FREE)
def test_data_store_and_report_layers_import_no_jax(package):
    # A fresh interpreter: this test process has imported JAX long ago.
    proc = subprocess.run([sys.executable, "-c", _PROBE, package, *JAX], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    probe = json.loads(proc.stdout.splitlines()[-1])
    assert probe["loaded"] == [], (f"importing {probe['first']} loads {probe['loaded']} "
                                   f"(checked {probe['modules']})")


@pytest.mark.parametrize("code", [
    "import benchmark.strategies as s; [s.get(n) for n in s.names()]",  # every declaration
    "import benchmark.grid, benchmark.executors, benchmark.measures",
    "import benchmark.cli; benchmark.cli.build_parser()",  # every command registered
])
def test_declarations_grid_and_command_line_import_no_jax(code):
    probe = code + "; import sys; print([k for k in sys.argv[1:] if k in sys.modules])"
    proc = subprocess.run([sys.executable, "-c", probe, *JAX], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split("\n")[-2] == "[]", f"{code!r} loads {proc.stdout.splitlines()[-1]}"


def test_importing_the_engine_does_not_tune_the_process():
    # glibc's malloc is tuned by whoever starts training (executors.run_group, the bench), never
    # as a side effect of an import (benchmark/engine/malloc.py).
    code = "import benchmark.engine, benchmark.engine.malloc as m; print(m._applied)"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.split()[-1] == "None"
