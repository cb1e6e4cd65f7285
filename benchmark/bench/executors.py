"""Executors: one process using every core (``local``) vs one single-threaded process per core
(``processes``) on a whole suite, and whether ``tbench run``'s ``auto`` picks the faster one.

Each trial is ``tbench run SUITE --executor NAME`` in a fresh process with every cache empty (no
pretrained sources, no compiled kernels; the prepared datasets are shared, prepared by an untimed
one-cell warm-up run) and a new store: what a user's first run of the suite costs. The two
executors alternate (local, processes, local, ...). The JSON records the medians, the ratio
local ÷ processes (> 1: processes is faster), ``auto``'s choice for this suite on this machine
with its reason (``benchmark.executors.choose_for_grid``), and whether that choice is the faster.
"""

from __future__ import annotations

import dataclasses
import statistics
import tempfile
from pathlib import Path
from typing import Any

from benchmark.bench.grid_throughput import engine_trial
from benchmark.errors import UserError

CONTENDERS = ("local", "processes")


@dataclasses.dataclass(frozen=True)
class ExecutorsConfig:
    """compilation_cache: ``None`` (the measurement: every trial compiles cold), or a JAX cache
    directory the trials share (tests)."""

    suite: str
    repeats: int = 1
    timeout_s: float = 3600.0
    compilation_cache: str | None = None


def run(config: ExecutorsConfig) -> dict[str, Any]:
    """Alternate the contenders ``repeats`` times; medians, ratio, auto's choice."""
    from benchmark.config import load_suite
    from benchmark.engine.plan import usable_cores
    from benchmark.executors import choose_for_grid
    from benchmark.grid import build_grid

    if not Path(config.suite).is_file():
        raise UserError(f"suite file {config.suite!r} does not exist; give a suite YAML path", field="--suite")
    grid = build_grid(load_suite(config.suite))
    auto, why = choose_for_grid(grid)
    trials: dict[str, list[dict[str, Any]]] = {name: [] for name in CONTENDERS}
    with tempfile.TemporaryDirectory(prefix="tbench-bench-executors-") as tmp:
        engine_trial(config.suite, Path(tmp) / "warmup", config.timeout_s, config.compilation_cache,
                     executor="local", max_cells=1)
        for r in range(config.repeats):
            for name in CONTENDERS:
                trials[name].append(engine_trial(config.suite, Path(tmp) / f"{name}-{r}", config.timeout_s,
                                                 config.compilation_cache, executor=name))
    out: dict[str, Any] = {"config": {**dataclasses.asdict(config), "runs": len(grid.runs), "cells": len(grid.cells),
                                      "cores": usable_cores(), "suite_name": grid.suite.name}}
    for name, rows in trials.items():
        out[name] = {"trials": rows, "median_wall_s": statistics.median(r["wall_s"] for r in rows)}
    ratio = out["local"]["median_wall_s"] / out["processes"]["median_wall_s"]
    faster = "processes" if ratio > 1 else "local"
    out.update(local_vs_processes_wall=ratio, faster=faster, auto={"choice": auto, "why": why},
               auto_picks_the_faster=auto == faster)
    return out
