"""``tbench report SUITE_OR_STORE [-o reports/NAME.html]``: the self-contained HTML report.

``--bench results/bench/X.json`` (repeatable) adds a Speed section from ``tbench bench`` results.
Accepts a suite YAML (its store is ``results/<suite name>.sqlite``, or ``--store PATH``) or a
store file directly. Reads the store only: no JAX, so it runs on any machine.
"""

from __future__ import annotations

import argparse
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
    p.add_argument("--n-bootstrap", type=int, default=10_000, help="bootstrap resamples for paired CIs")
    p.add_argument("--seed", type=int, default=0, help="bootstrap seed (reports are deterministic)")
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


def _report(args: argparse.Namespace) -> int:
    from benchmark.report import build_report, write_report
    from benchmark.report.speed import load_bench
    from benchmark.store import Store

    if args.n_bootstrap < 100:
        raise UserError(f"--n-bootstrap {args.n_bootstrap} is too few for a 95% interval; use at least 100")
    store_path, name = resolve_store(args.target, args.store)
    bench = [load_bench(path) for path in args.bench]
    with Store(store_path, create=False) as store:
        runs = store.runs_frame()
        measures = store.measures_frame()
        meta = store.meta()
    if runs.empty:
        raise UserError(f"the store {store_path} has no runs yet; run the suite first (`tbench run SUITE`)")
    suites = sorted({str(s) for s in runs["suite"].dropna()}) if "suite" in runs else []
    title = args.title or (", ".join(suites) if suites else name)
    output = Path(args.output) if args.output else Path("reports") / f"{suites[0] if len(suites) == 1 else name}.html"
    environment = {"store": str(store_path), "store created": meta.get("created_at", "—"),
                   "store schema": meta.get("schema_version", "—")}
    html = build_report(runs, measures, title=title, environment=environment,
                        n_bootstrap=args.n_bootstrap, seed=args.seed, bench=bench)
    write_report(output, html)
    print(f"wrote {output} ({len(runs)} runs, {len(measures)} measures)")
    return 0
