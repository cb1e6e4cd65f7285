"""A fresh process that runs a list of cells with ``run_cell`` and reports what it took.

``python -m benchmark.bench.worker JOB.json OUT.json``: JOB is ``{"cells": [{"spec": CellSpec
dict, "seeds": [int, ...]}, ...], "data_dir": str | null, "checkpoint_dir": str | null}``; OUT
gets ``{"import_s", "wall_s" (whole process after start-up), "results": [RunResult dict, ...],
"peak_rss_bytes"}``. The caller decides what is cold through the environment it starts the
process with (``TBENCH_CACHE_DIR``, ``JAX_ENABLE_COMPILATION_CACHE``, ``TBENCH_PLAN``).

The naive grid (one process per run) and the scaling points are built from this.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

_STARTED = time.perf_counter()


def spawn(job: dict[str, Any], workdir: Path, env: dict[str, str], *, timeout_s: float) -> dict[str, Any]:
    """Run ``job`` in a new Python process; return its report plus ``process_wall_s`` (spawn to exit)."""
    workdir.mkdir(parents=True, exist_ok=True)
    job_path, out_path = workdir / "job.json", workdir / "out.json"
    job_path.write_text(json.dumps(job))
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "benchmark.bench.worker", str(job_path), str(out_path)],
                          env=env, capture_output=True, text=True, timeout=timeout_s)
    wall = time.perf_counter() - start
    if proc.returncode != 0 or not out_path.exists():
        raise RuntimeError(f"bench worker failed (exit {proc.returncode}): {proc.stderr[-2000:]}")
    report = json.loads(out_path.read_text())
    report["process_wall_s"] = wall
    return report


def main(argv: list[str]) -> int:
    job_path, out_path = argv
    import resource

    from benchmark.cellspec import CellSpec
    from benchmark.engine import run_cell
    from benchmark.engine.malloc import keep_freed_buffers

    keep_freed_buffers()  # as every process that trains does (benchmark/engine/malloc.py)
    imported = time.perf_counter()
    job = json.loads(Path(job_path).read_text())
    results = []
    for cell in job["cells"]:
        spec = CellSpec.from_dict(cell["spec"])
        results += [r.to_dict() for r in run_cell(spec, cell["seeds"], data_dir=job.get("data_dir"),
                                                  checkpoint_dir=job.get("checkpoint_dir"))]
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    report = {
        "import_s": imported - _STARTED,
        "wall_s": time.perf_counter() - _STARTED,
        "results": results,
        "peak_rss_bytes": int(rss if sys.platform == "darwin" else rss * 1024),
        "plan_env": os.environ.get("TBENCH_PLAN"),
    }
    Path(out_path).write_text(json.dumps(report))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
