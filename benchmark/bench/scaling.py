"""Scaling: how the time per cell moves as the grid grows (cells, seeds, target data size).

Each point is a fresh process (``benchmark.bench.worker``) with an empty cache root, running
cells from the suite's own grid through ``run_cell`` in order — the engine's cold start, so the
fixed costs (compiling, pretraining each source once, loading data) show up and their
amortisation over more cells / seeds is what the curves show:

* ``cells``: the first N cells of the grid, one seed each; seconds per cell.
* ``seeds``: one cell (the first that uses a source) with 1, 2, 4, ... seeds; seconds per run.
* ``labels_per_class``: that cell at several target label budgets (1 seed); seconds per run.

Seconds are the worker's time after imports (loading data, pretraining, compiling, training,
evaluating); the compile part is the engine's own meter.
"""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path
from typing import Any

from benchmark.bench import worker
from benchmark.bench.grid_throughput import _env

LABEL_POINTS = (1, 10, -1)


@dataclasses.dataclass(frozen=True)
class ScalingConfig:
    suite: str
    cells: tuple[int, ...] = (1, 2, 4, 8)
    seeds: tuple[int, ...] = (1, 2, 4)
    labels_per_class: tuple[int, ...] = LABEL_POINTS
    timeout_s: float = 1800.0
    compilation_cache: str | None = None  # as GridConfig: None = every point starts cold


def _point(cells: list[tuple[Any, list[int]]], scratch: Path, config: ScalingConfig) -> dict[str, Any]:
    job = {"cells": [{"spec": spec.to_dict(), "seeds": seeds} for spec, seeds in cells]}
    env = _env(scratch / "cache", naive=False, compilation_cache=config.compilation_cache)
    report = worker.spawn(job, scratch, env, timeout_s=config.timeout_s)
    seconds = report["wall_s"] - report["import_s"]
    runs = report["results"]
    return {
        "cells": len(cells),
        "runs": len(runs),
        "seconds": seconds,
        "seconds_per_cell": seconds / len(cells),
        "seconds_per_run": seconds / len(runs),
        "compile_s": sum(r["compile_s"] for r in runs),
        "pretrain_s": sum(r["pretrain_s"] for r in runs),
        "statuses": sorted({r["status"] for r in runs}),
        "peak_rss_bytes": report["peak_rss_bytes"],
    }


def run(config: ScalingConfig) -> dict[str, Any]:
    from benchmark.config import load_suite
    from benchmark.grid import build_grid

    grid = build_grid(load_suite(config.suite))
    cells = [spec for spec, _ in grid.cells]
    base = next((s for s in cells if s.source is not None and s.labels_per_class > 0), cells[0])
    out: dict[str, Any] = {"config": dataclasses.asdict(config), "base_cell": base.to_dict()}
    with tempfile.TemporaryDirectory(prefix="tbench-bench-scaling-") as tmp:
        root = Path(tmp)
        out["cells"] = [_point([(s, [0]) for s in cells[:n]], root / f"cells-{n}", config)
                        for n in config.cells if n <= len(cells)]
        out["seeds"] = [{**_point([(base, list(range(k)))], root / f"seeds-{k}", config),
                         "seeds": k} for k in config.seeds]
        out["labels_per_class"] = [
            {**_point([(dataclasses.replace(base, labels_per_class=b), [0])], root / f"labels-{b}",
                      config), "labels_per_class": b}
            for b in config.labels_per_class]
    return out


def plot(scaling: dict[str, Any], path: Path) -> Path:
    """Three panels (per cell vs cells, per run vs seeds, per run vs label budget) as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(12, 3.6))
    panels = [
        ("cells", "cells", "seconds_per_cell", "cells in the grid", "s per cell"),
        ("seeds", "seeds", "seconds_per_run", "seeds of one cell", "s per run"),
        ("labels_per_class", "labels_per_class", "seconds_per_run", "target labels per class (-1 = all)",
         "s per run"),
    ]
    for ax, (key, x, y, xlabel, ylabel) in zip(axes, panels, strict=True):
        rows = scaling.get(key) or []
        xs = [r[x] for r in rows]
        ax.plot(range(len(xs)), [r[y] for r in rows], "o-", label="total")
        ax.plot(range(len(xs)), [r["compile_s"] / r["runs"] if y == "seconds_per_run"
                                 else r["compile_s"] / r["cells"] for r in rows], "s--", label="compiling")
        ax.set_xticks(range(len(xs)), [str(v) for v in xs])
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.set_ylim(bottom=0)
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.suptitle("tbench bench: time per cell as the grid grows (cold caches, one process per point)")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
