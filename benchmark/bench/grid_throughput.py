"""Grid throughput: a whole suite with the engine vs the naive grid TLlib/DomainBed users run.

* ``engine``: ``tbench run SUITE --executor local`` (one process, as this section always
  measured; the ``executors`` section compares it with one process per core) in a fresh process with every cache empty (a new cache root:
  no pretrained sources, no compiled kernels) and a new store; the runner pretrains each source
  once, reuses compiled kernels across cells and seeds, and computes frozen features once.
* ``naive``: one fresh process per run (``benchmark.bench.worker``), each with its own empty
  cache root (the source is pretrained for every run, nothing is shared) and the JAX
  persistent compilation cache disabled (``JAX_ENABLE_COMPILATION_CACHE=false``), running the
  engine's simple plan (one jitted step per Python iteration, the Flax-tutorial loop).

Both read the same prepared datasets (preparation is not what is measured). The contenders
alternate (engine, naive, engine, naive, ...). The naive grid can be sampled: ``per_stratum``
runs of each (strategy, budget) stratum are run and the total is estimated as
Σ_stratum (runs in stratum × mean sampled wall), which the JSON says.
Compile share = Σ per-run ``compile_s`` (the engine's own meter, pretraining included) ÷ wall.
"""

from __future__ import annotations

import dataclasses
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

from benchmark import paths
from benchmark.bench import worker
from benchmark.errors import UserError


@dataclasses.dataclass(frozen=True)
class GridConfig:
    """suite: YAML path; per_stratum: naive runs sampled per stratum (None = every run);
    warmup: one untimed engine run first, which prepares the datasets;
    compilation_cache: ``None`` (the measurement: the engine starts with an empty JAX cache), or
    a JAX cache directory the engine processes share (tests: kernels compiled once per session).
    The naive grid never uses one."""

    suite: str
    repeats: int = 1
    per_stratum: int | None = 1
    timeout_s: float = 3600.0
    warmup: bool = True
    compilation_cache: str | None = None


def _env(cache_root: Path, *, naive: bool, compilation_cache: str | None = None) -> dict[str, str]:
    env = dict(os.environ)
    env.pop("TBENCH_JAX_CACHE_DIR", None)
    if compilation_cache and not naive:
        env["TBENCH_JAX_CACHE_DIR"] = compilation_cache
    env["TBENCH_CACHE_DIR"] = str(cache_root)
    env["TBENCH_DATA_DIR"] = str(paths.data_dir())
    if naive:
        env["JAX_ENABLE_COMPILATION_CACHE"] = "false"
        env["TBENCH_PLAN"] = "simple"
    else:
        env.pop("TBENCH_PLAN", None)
    return env


def _stratum(run: Any) -> str:
    spec = run.spec
    budget = "all" if spec.labels_per_class < 0 else str(spec.labels_per_class)
    return f"{spec.strategy_label} @ {budget}"


def engine_trial(suite: str, scratch: Path, timeout_s: float,
                 compilation_cache: str | None = None, executor: str | None = None,
                 max_cells: int | None = None) -> dict[str, Any]:
    """``tbench run`` on ``suite`` with empty caches and store; wall time and the runs' meters.
    executor: ``--executor`` (default: ``tbench run``'s, auto); max_cells: ``--max-cells``."""
    from benchmark.store import Store

    scratch.mkdir(parents=True, exist_ok=True)
    store_path = scratch / "store.sqlite"
    extra = [*(["--executor", executor] if executor else []), *(["--max-cells", str(max_cells)] if max_cells else [])]
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "benchmark.cli", "run", suite, "--store",
                           str(store_path), "--quiet", "--no-measures", *extra],
                          env=_env(scratch / "cache", naive=False, compilation_cache=compilation_cache),
                          capture_output=True, text=True, timeout=timeout_s)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"tbench run {suite} failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
    runs = Store(store_path).runs_frame()
    return {
        "wall_s": wall,
        "runs": len(runs),
        "compile_s": float(runs["compile_s"].sum()),
        "pretrain_s": float(runs["pretrain_s"].sum()),
        "statuses": {str(k): int(v) for k, v in runs["status"].value_counts().items()},
    }


def naive_trial(grid: Any, scratch: Path, per_stratum: int | None, timeout_s: float) -> dict[str, Any]:
    """One process per (sampled) run, all caches cold; the grid's wall estimated from the sample."""
    strata: dict[str, list[Any]] = defaultdict(list)
    for run in grid.runs:
        strata[_stratum(run)].append(run)
    rows: dict[str, dict[str, Any]] = {}
    total_wall = total_compile = total_pretrain = 0.0
    sampled = 0
    for name, runs in strata.items():
        chosen = runs if per_stratum is None else runs[:per_stratum]
        walls, compiles, pretrains = [], [], []
        for i, run in enumerate(chosen):
            job = {"cells": [{"spec": run.spec.to_dict(), "seeds": [run.seed]}]}
            where = scratch / f"{len(rows)}-{i}"
            report = worker.spawn(job, where, _env(where / "cache", naive=True), timeout_s=timeout_s)
            result = report["results"][0]
            walls.append(report["process_wall_s"])
            compiles.append(result["compile_s"])
            pretrains.append(result["pretrain_s"])
        scale = len(runs) / len(chosen)
        total_wall += scale * sum(walls)
        total_compile += scale * sum(compiles)
        total_pretrain += scale * sum(pretrains)
        sampled += len(chosen)
        rows[name] = {"runs": len(runs), "sampled": len(chosen),
                      "mean_process_wall_s": statistics.mean(walls),
                      "mean_compile_s": statistics.mean(compiles)}
    return {"wall_s": total_wall, "compile_s": total_compile, "pretrain_s": total_pretrain,
            "runs": len(grid.runs), "sampled_runs": sampled, "estimated": sampled < len(grid.runs),
            "strata": rows}


def run(config: GridConfig) -> dict[str, Any]:
    """Alternate engine and naive trials ``repeats`` times; medians, ratio, compile shares."""
    from benchmark.config import load_suite
    from benchmark.grid import build_grid

    if not Path(config.suite).is_file():
        raise UserError(f"suite file {config.suite!r} does not exist; give a suite YAML path",
                        field="--suite")
    grid = build_grid(load_suite(config.suite))
    trials: dict[str, list[dict[str, Any]]] = {"engine": [], "naive": []}
    with tempfile.TemporaryDirectory(prefix="tbench-bench-grid-") as tmp:
        # Untimed: prepares the datasets both contenders read (skip when they are prepared).
        warm = engine_trial(config.suite, Path(tmp) / "warmup", config.timeout_s,
                            config.compilation_cache, executor="local") if config.warmup else None
        for r in range(config.repeats):
            trials["engine"].append(engine_trial(config.suite, Path(tmp) / f"engine-{r}", config.timeout_s,
                                                config.compilation_cache, executor="local"))
            trials["naive"].append(naive_trial(grid, Path(tmp) / f"naive-{r}", config.per_stratum,
                                               config.timeout_s))
    out: dict[str, Any] = {
        "config": {**dataclasses.asdict(config), "executor": "local", "runs": len(grid.runs), "cells": len(grid.cells),
                   "suite_name": grid.suite.name},
        "warmup_wall_s": warm["wall_s"] if warm else None,
    }
    for name, rows in trials.items():
        median_wall = statistics.median(r["wall_s"] for r in rows)
        out[name] = {
            "trials": rows,
            "median_wall_s": median_wall,
            "median_compile_share": statistics.median(r["compile_s"] / r["wall_s"] for r in rows),
            "median_pretrain_share": statistics.median(r["pretrain_s"] / r["wall_s"] for r in rows),
            "seconds_per_run": median_wall / len(grid.runs),
        }
    out["speedup_engine_vs_naive"] = out["naive"]["median_wall_s"] / out["engine"]["median_wall_s"]
    return out
