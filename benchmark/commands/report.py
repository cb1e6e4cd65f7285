"""``tbench report SUITE_OR_STORE [-o reports/NAME.html] [--json FILE]``: the report, and its verdicts as data.

``--bench results/bench/X.json`` (repeatable) adds a Speed section from ``tbench bench`` results.
``--json FILE`` also writes every verdict with the protocol behind it
(:func:`benchmark.analysis.verdicts.report_data`).

Accepts a suite YAML (its store is ``results/<suite name>.sqlite``, or ``--store PATH``) or a
store file directly. With a suite, only runs of the suite's current cells are pooled: runs of
cells the suite no longer has (stale) or of other suites (foreign) are counted and named, never
pooled; resolving the suite's grid loads the strategy registry. With a bare store file runs are
grouped by cell identity and nothing but the store is read (no JAX: any machine).
"""

from __future__ import annotations

import argparse
import datetime
import json
import sys
from pathlib import Path

from benchmark.errors import UserError

_SUITE_SUFFIXES = (".yaml", ".yml")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("report", help="write the HTML report of a suite's results")
    p.add_argument("target", metavar="SUITE_OR_STORE",
                   help="a suite YAML (its store is results/<suite name>.sqlite) or a store .sqlite file")
    p.add_argument("-o", "--output", default=None,
                   help="HTML file to write (default: reports/<suite name>.html)")
    p.add_argument("--store", default=None, help="store of the suite, if not results/<suite name>.sqlite")
    p.add_argument("--title", default=None, help="report title (default: the suite name)")
    p.add_argument("--json", default=None, metavar="FILE",
                   help="also write every verdict (with the protocol behind it) to this JSON file")
    # Deprecated no-ops: intervals are paired Student t now (no resampling). Kept so existing
    # command lines still run; a note on stderr says they are ignored.
    p.add_argument("--n-bootstrap", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--seed", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--bench", action="append", default=[], metavar="JSON",
                   help="a `tbench bench` result (results/bench/*.json) to show in a Speed section; repeatable")
    p.set_defaults(func=_report)


def resolve_store(target: str, store: str | None = None) -> tuple[Path, str]:
    """(store path, default name) for a suite YAML or a store file; ``UserError`` if neither exists."""
    from benchmark.store import suite_store_path

    path = Path(target)
    if not path.exists():
        raise UserError(f"no such suite or store file '{target}'; pass a suite YAML (suites/NAME.yaml) "
                        "or a results store (results/NAME.sqlite)")
    if path.suffix.lower() in _SUITE_SUFFIXES:
        store_path = suite_store_path(path, store)
        if not store_path.exists():
            raise UserError(f"no results for suite '{target}' yet (looked for {store_path}); run "
                            f"`tbench run {target}` first, or pass --store PATH")
        return store_path, store_path.stem
    return (Path(store) if store else path), path.stem


def suite_cells(suite_file: str | Path) -> tuple[str, set[str]]:
    """(suite name, cell keys of its grid now): what a suite report may pool. ``UserError`` if invalid."""
    from benchmark.analysis.cells import grid_cell_ids
    from benchmark.config import load_suite
    from benchmark.grid import build_grid

    grid = build_grid(load_suite(suite_file))
    return grid.suite.name, grid_cell_ids(grid)


def _report(args: argparse.Namespace) -> int:
    from benchmark.analysis.cells import CURRENT, ignored_summary, suite_membership
    from benchmark.analysis.transfer import transfer_table
    from benchmark.analysis.verdicts import report_data
    from benchmark.outputs import check_output, default_output
    from benchmark.report import build_report, write_report
    from benchmark.report.speed import load_bench
    from benchmark.store import Store

    if args.n_bootstrap is not None or args.seed is not None:
        print("tbench report: --n-bootstrap and --seed are ignored (intervals are paired Student t, "
              "no resampling)", file=sys.stderr)
    store_path, name = resolve_store(args.target, args.store)
    bench = [load_bench(path) for path in args.bench]
    is_suite = Path(args.target).suffix.lower() in _SUITE_SUFFIXES
    suite = suite_cells(args.target) if is_suite else None
    with Store(store_path, create=False) as store:
        runs = store.runs_frame()
        measures = store.measures_frame()
        meta = store.meta()
    if runs.empty:
        raise UserError(f"the store {store_path} has no runs yet; run the suite first (`tbench run SUITE`)")
    ignored: list[dict] = []
    if suite is not None:
        membership = suite_membership(runs, suite[0], suite[1])
        ignored = ignored_summary(membership)
        runs = runs[membership == CURRENT].reset_index(drop=True)
        if runs.empty:
            why = "; ".join(f"{i['runs']} {i['reason']}" for i in ignored)
            raise UserError(f"none of the {len(membership)} runs in {store_path} belongs to a cell of the suite "
                            f"as it is now ({why}); run it (`tbench run {args.target}`), or pass the store "
                            "file itself to see every cell apart", file=args.target)
    suites = sorted({str(s) for s in runs["suite"].dropna()}) if "suite" in runs else []
    title = args.title or (suite[0] if suite else ", ".join(suites) if suites else name)
    # Never onto the store or through a link out of the folder named; the default stays in reports/.
    output = check_output(args.output or default_output("reports", suites[0] if len(suites) == 1 else name, ".html"),
                          stores=[store_path])
    if args.json:
        check_output(args.json, stores=[store_path], flag="--json")
    environment = {"store": str(store_path), "store created": meta.get("created_at", "—"),
                   "store schema": meta.get("schema_version", "—")}
    if suite is not None:
        environment["suite"] = str(args.target)
    table = transfer_table(runs)
    html = build_report(runs, measures, title=title, environment=environment, bench=bench,
                        ignored=ignored, table=table)
    data = None
    if args.json:
        from benchmark.analysis.transfer import check_runs

        data = report_data(table, check_runs(runs), title=title, ignored=ignored, environment=environment,
                           generated_at=datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"))
    write_report(output, html)
    if data is not None:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(data, indent=1, ensure_ascii=False, allow_nan=False) + "\n", encoding="utf-8")
    ignored_text = "".join(f"; ignored {i['runs']} {i['kind']} runs" for i in ignored)
    print(f"wrote {output}{' and ' + args.json if args.json else ''} ({len(runs)} runs, "
          f"{len(table)} verdict rows, {len(measures)} measures{ignored_text})")
    return 0
