"""``tbench reproduce NAME [--quick]``: rerun a paper's experiment, judge its claims, report.

The logic lives in :mod:`benchmark.reproduce`; this module only parses flags.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    from benchmark.reproduce import names
    from benchmark.reproduce.runner import REPORTS_DIR, RESULTS_DIR, SUITES_DIR

    p = sub.add_parser("reproduce", help="reproduce a paper's claims: " + ", ".join(names()),
                       description="Run suites/papers/NAME.yaml through the normal store (resumable), "
                                   "then write reports/papers/NAME.html and results/papers/NAME.csv: "
                                   "paper says / we measured / verdict, with 95%% CIs over seeds.")
    p.add_argument("name", metavar="NAME", help="one of: " + ", ".join(names()))
    p.add_argument("--quick", action="store_true", help="scaled-down version (fewer seeds and steps)")
    p.add_argument("--report-only", action="store_true", help="judge what the store holds; train nothing")
    p.add_argument("--store", type=Path, help="results store (default results/papers/<suite name>.sqlite)")
    p.add_argument("--suites-dir", type=Path, default=SUITES_DIR, help="default: %(default)s")
    p.add_argument("--reports-dir", type=Path, default=REPORTS_DIR, help="default: %(default)s")
    p.add_argument("--results-dir", type=Path, default=RESULTS_DIR, help="default: %(default)s")
    p.add_argument("--data-dir", help="prepared datasets (default $TBENCH_DATA_DIR or the cache)")
    p.add_argument("--executor", default="local", choices=["local", "ray"])
    p.add_argument("--address", help="Ray cluster address (with --executor ray)")
    p.add_argument("--quiet", action="store_true", help="no per-cell progress lines")
    p.set_defaults(func=_reproduce)


def _reproduce(args: argparse.Namespace) -> int:
    from benchmark.reproduce.runner import PrintListener, reproduce

    outcome = reproduce(
        args.name, quick=args.quick, run=not args.report_only, store_path=args.store,
        suites_dir=args.suites_dir, reports_dir=args.reports_dir, results_dir=args.results_dir,
        data_dir=args.data_dir, executor=args.executor, address=args.address,
        listener=None if args.quiet else PrintListener(),
    )
    width = max((len(c.claim_id) for c in outcome.claims), default=0)
    for c in outcome.claims:
        print(f"{c.claim_id:<{width}}  {c.verdict:<15} {c.measured}")
    print(f"wrote {outcome.html} and {outcome.csv} (store {outcome.store})")
    return 0
