"""``tbench run | status | show | export``: run a suite's grid into its store and look at it.

Every command validates the whole suite first; nothing is written to a store until the suite,
its datasets, strategies and budgets are all known to be valid (a ``UserError``: exit 2).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import yaml

from benchmark.cellspec import ALL_LABELS, CellSpec
from benchmark.errors import UserError
from benchmark.results import RunResult


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="train every unfinished run of a suite (resumable)")
    p.add_argument("suite", help="suite YAML file, e.g. suites/quick.yaml")
    p.add_argument("--store", help="results file (default: results/<suite name>.sqlite)")
    p.add_argument("--executor", choices=["auto", "local", "processes", "ray"], default="auto",
                   help="where cells run: this process, one single-threaded process per core, or Ray; "
                        "auto: processes for small backbones on a multi-core CPU, else local "
                        "(default: %(default)s)")
    p.add_argument("--workers", type=int,
                   help="worker processes for --executor processes (default: one per usable core)")
    p.add_argument("--address", help="Ray cluster address for --executor ray (default: start one)")
    p.add_argument("--data-dir", help="prepared datasets directory (default: $TBENCH_DATA_DIR)")
    p.add_argument("--max-cells", type=int, help="stop after starting this many cells")
    p.add_argument("--quiet", action="store_true", help="one log line per cell instead of a live display")
    p.add_argument("--no-measures", action="store_true",
                   help="skip the domain-gap / transferability measures of the suite's pairs after the runs")
    p.set_defaults(func=_run)

    p = sub.add_parser("status", help="done / running / failed / diverged / to do for a suite")
    p.add_argument("suite")
    p.add_argument("--store", help="results file (default: results/<suite name>.sqlite)")
    p.set_defaults(func=_status)

    p = sub.add_parser("show", help="print the fully resolved suite as YAML, with its grid")
    p.add_argument("suite")
    p.set_defaults(func=_show)

    p = sub.add_parser("export", help="write a suite's runs as a tidy table (one row per run)")
    p.add_argument("suite")
    p.add_argument("--store", help="results file (default: results/<suite name>.sqlite)")
    p.add_argument("--format", choices=["csv", "parquet"], default="csv")
    p.add_argument("-o", "--output", help="output file (default: results/<suite name>.<format>)")
    p.add_argument("--all", action="store_true",
                   help="also runs of cells the suite no longer has (stale) or of other suites (foreign)")
    p.set_defaults(func=_export)


def _grid(args: argparse.Namespace):
    from benchmark.config import load_suite
    from benchmark.grid import build_grid

    if getattr(args, "data_dir", None):
        os.environ["TBENCH_DATA_DIR"] = str(Path(args.data_dir).expanduser())
    return build_grid(load_suite(args.suite))


def _store_path(args: argparse.Namespace, suite_name: str) -> Path:
    from benchmark.store import default_path

    return Path(args.store) if args.store else default_path(suite_name)


def _run(args: argparse.Namespace) -> int:
    from benchmark.executors import make_executor, run_grid
    from benchmark.store import Store
    from benchmark.storecheck import check_writable, existing_target

    if args.max_cells is not None and args.max_cells < 1:
        raise UserError(f"must be at least 1, got {args.max_cells}", field="--max-cells")
    if args.address and args.executor != "ray":
        raise UserError("only means something with --executor ray", field="--address")
    if args.workers is not None and args.executor != "processes":
        raise UserError("only means something with --executor processes", field="--workers")
    if args.workers is not None and args.workers < 1:
        raise UserError(f"must be at least 1, got {args.workers}", field="--workers")
    if args.store and existing_target(Path(args.store)) is not None:
        check_writable(Path(args.store))  # before the suite's datasets are even looked at
    grid = _grid(args)
    path = _store_path(args, grid.suite.name)
    if existing_target(path) is not None:  # a directory, FIFO, device, empty file...: refused,
        check_writable(path)  # and a read-only or immutable store, before any data is read
    from benchmark.leakage import check_pairs

    check_pairs({(r.spec.source, r.spec.target) for r in grid.runs if r.spec.source},
                file=grid.suite.path, data_dir=args.data_dir)
    name = args.executor
    if name == "auto":
        name, why = _auto_executor(grid)
        print(f"executor: {name} ({why}; --executor local|processes|ray to choose)", flush=True)
    executor = make_executor(name, address=args.address, data_dir=args.data_dir, workers=args.workers)
    try:
        store = Store(path)  # a new store, or an existing one write-tested, before any training
    except UserError:
        executor.shutdown()
        raise
    listener = QuietListener() if args.quiet or not sys.stderr.isatty() else RichListener()
    try:
        try:
            summary = run_grid(grid, store, executor, listener=listener, max_cells=args.max_cells)
        finally:
            listener.close()
        measured, measures_line = (True, None) if args.no_measures else _measures(grid, store, args)
    finally:
        store.close()
    print(f"{grid.suite.name}: ran {summary.ran} runs in {summary.wall_s:.0f}s "
          f"(ok {summary.ok}, diverged {summary.diverged}, failed {summary.failed}); "
          f"already finished {summary.skipped_finished}; held by other runners {summary.elsewhere}; "
          f"computed twice and discarded {summary.duplicates}; "
          f"of {summary.total} runs ({len(grid.skipped)} cells skipped, see `tbench show`) -> {path}")
    if summary.ran:
        print(f"time: {summary.wall_s:.1f}s wall = data loading {summary.data_s:.1f}s + runs "
              f"{summary.runs_wall_s:.1f}s (of which compiling {summary.compile_s:.1f}s, source "
              f"pretraining {summary.pretrain_s:.1f}s incl. its compiles) + store/other "
              f"{max(0.0, summary.wall_s - summary.data_s - summary.runs_wall_s):.1f}s")
    for line in summary.errors:
        print(f"  failed: {line}", file=sys.stderr)
    if measures_line:
        print(measures_line, file=sys.stdout if measured else sys.stderr)
    return 1 if summary.failed or not measured else 0


def _auto_executor(grid) -> tuple[str, str]:
    from benchmark.engine.malloc import keep_freed_buffers

    keep_freed_buffers()  # before JAX's threads allocate: a local run trains in this process (malloc.py)
    from benchmark.executors import choose_for_grid

    return choose_for_grid(grid)


def _measures(grid, store, args: argparse.Namespace) -> tuple[bool, str | None]:
    """Measures of the pairs whose runs are done and whose measures the store lacks (one set per
    seed run: each seed has its own pretrained source model). Computed in this process: with
    ``--executor ray`` the source models are pretrained here again unless the checkpoint
    directory is shared. ``(False, message)`` when they failed (the runs are recorded regardless)."""
    from benchmark.measures import record_suite_measures

    try:
        m = record_suite_measures(grid, store, data_dir=args.data_dir, log=lambda line: print(line, flush=True))
    except Exception as err:  # the runs are already saved; say how to skip rather than lose the summary
        return False, (f"tbench: domain-gap measures failed ({type(err).__name__}: {err}); the runs are "
                       "saved; rerun `tbench run` to retry, or pass --no-measures")
    lines = [f"measures: {m.pairs} (source, target, seed) pairs in {m.wall_s:.1f}s "
             f"({m.wall_s / m.pairs:.1f}s per pair, {m.rows} rows); {m.already} already in the store"] if m.pairs else []
    lines += [f"  measures failed: {e}; rerun `tbench run` to retry, or pass --no-measures" for e in m.errors]
    return not m.errors, "\n".join(lines) or None


def _status(args: argparse.Namespace) -> int:
    from benchmark.store import Store
    from benchmark.storecheck import existing_target

    grid = _grid(args)
    path = _store_path(args, grid.suite.name)
    if existing_target(path) is None:
        counts = {"ok": 0, "diverged": 0, "failed": 0, "running": 0, "todo": len(grid.runs),
                  "total": len(grid.runs), "other": 0}
    else:
        with Store(path, create=False) as store:
            counts = store.status_counts(r.run_id for r in grid.runs)
    print(f"{grid.suite.name} ({path}): {counts['total']} runs in {len(grid.cells)} cells")
    for key, label in (("ok", "done"), ("running", "running"), ("failed", "failed"),
                       ("diverged", "diverged"), ("todo", "to do")):
        print(f"  {label:<9}{counts[key]:>6}")
    if counts["other"]:
        print(f"  ({counts['other']} runs in the store belong to no cell of this suite as it is now)")
    return 0


def _show(args: argparse.Namespace) -> int:
    grid = _grid(args)
    suite = grid.suite
    print(yaml.safe_dump(suite.to_yaml_dict(), sort_keys=False, default_flow_style=None).rstrip())
    print(f"# grid: {len(grid.cells)} cells x {len(suite.seeds)} seeds = {len(grid.runs)} runs")
    for s in grid.skipped:
        budget = "all" if s.labels_per_class == ALL_LABELS else s.labels_per_class
        print(f"# skipped: {s.strategy_label} {s.source} -> {s.target} budget {budget}: {s.reason}")
    return 0


def _export(args: argparse.Namespace) -> int:
    from benchmark.outputs import check_output, replace_atomically
    from benchmark.store import Store

    grid = _grid(args)
    path = _store_path(args, grid.suite.name)
    out = Path(args.output) if args.output else path.with_suffix(f".{args.format}")
    check_output(out, stores=[path], flag="--output" if args.output else "--output (default: beside the store)")
    with Store(path, create=False) as store:
        runs = store.runs_frame()
    # One identity per cell: the suite's current cells only, unless --all (then marked per run).
    from benchmark.analysis.cells import CURRENT, grid_cell_ids, ignored_summary, suite_membership

    membership = suite_membership(runs, grid.suite.name, grid_cell_ids(grid))
    runs = runs.assign(cell_status=membership)
    ignored = ignored_summary(membership)
    if not args.all:
        runs = runs[membership == CURRENT].reset_index(drop=True)
    frame = tidy_runs(runs)
    if args.format == "csv":
        replace_atomically(out, lambda tmp: frame.to_csv(tmp, index=False))
    else:
        try:
            replace_atomically(out, lambda tmp: frame.to_parquet(tmp, index=False))
        except ImportError:
            raise UserError("Parquet needs pyarrow; install it with `pip install 'transferbench[parquet]'` "
                            "or use --format csv", field="--format") from None
    left = "; ".join(f"{i['runs']} {i['reason']}" for i in ignored)
    if ignored and not args.all:
        left = f" (left out: {left}; --all includes them, marked in column cell_status)"
    elif ignored:
        left = f" (including {left}; see column cell_status)"
    print(f"wrote {len(frame)} runs to {out}{left}")
    return 0


def tidy_runs(frame):
    """Runs as a flat table: nested columns (curve, versions, config, ...) as JSON text.

    Appended from each run's ``extras`` (empty where absent): forgetting, source_acc_before/after,
    forgetting_probe, source_accuracy, val_accuracy, selection_rule (``analysis.forgetting.EXPORT_COLUMNS``).
    """
    from benchmark.analysis.forgetting import run_columns
    from benchmark.store import JSON_COLUMNS

    frame = frame.copy()
    extra = run_columns(frame)
    frame = frame.join(extra[[c for c in extra.columns if c not in frame.columns]])
    for col in JSON_COLUMNS:
        frame[col] = [json.dumps(v, sort_keys=True) for v in frame[col]]
    return frame


def _cell_text(spec: CellSpec) -> str:
    budget = "all" if spec.labels_per_class == ALL_LABELS else spec.labels_per_class
    return f"{spec.strategy_label} {spec.source or '∅'}→{spec.target} @{budget}"


class QuietListener:
    """One plain log line per finished cell (for logs and CI)."""

    def start(self, total: int, finished_before: int) -> None:
        self.total, self.done, self.t0 = total, finished_before, time.monotonic()
        print(f"{total} runs, {finished_before} already finished", flush=True)

    def begin(self, spec: CellSpec, seeds: list[int]) -> None:
        pass

    def finish(self, spec: CellSpec, results: list[RunResult]) -> None:
        self.done += len(results)
        accs = [r.accuracy for r in results if r.accuracy is not None]
        acc = f"acc {sum(accs) / len(accs):.3f} over {len(accs)} seeds" if accs else "no accuracy"
        bad = [r.status for r in results if r.status != "ok"]
        print(f"[{self.done}/{self.total}] {_cell_text(spec)}: {acc}"
              f"{' (' + ', '.join(bad) + ')' if bad else ''} "
              f"{sum(r.wall_s for r in results):.1f}s", flush=True)

    def close(self) -> None:
        pass


class RichListener:
    """A live display: runs done/total, throughput and ETA, and the current cell below them."""

    def __init__(self) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )
        from rich.text import Text

        class _Progress(Progress):
            current = ""

            def get_renderables(self):
                yield self.make_tasks_table(self.tasks)
                if self.current:
                    yield Text(f"  running {self.current}", no_wrap=True, overflow="ellipsis")

        self.progress = _Progress(
            TextColumn("[bold]runs"), BarColumn(bar_width=24), MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"), TimeElapsedColumn(), TextColumn("ETA"),
            TimeRemainingColumn())
        self.task = None

    def start(self, total: int, finished_before: int) -> None:
        self.progress.start()
        self.started_with, self.t0 = finished_before, time.monotonic()
        self.task = self.progress.add_task("runs", total=total, completed=finished_before, rate="")

    def begin(self, spec: CellSpec, seeds: list[int]) -> None:
        self.progress.current = f"{_cell_text(spec)} ({len(seeds)} seed{'s' * (len(seeds) > 1)})"
        self.progress.refresh()

    def finish(self, spec: CellSpec, results: list[RunResult]) -> None:
        self.progress.advance(self.task, len(results))
        done = self.progress.tasks[0].completed - self.started_with
        per_min = 60 * done / max(1e-9, time.monotonic() - self.t0)
        self.progress.update(self.task, rate=f"{per_min:.1f} runs/min")

    def close(self) -> None:
        self.progress.current = ""
        self.progress.stop()
