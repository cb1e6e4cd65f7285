"""``tbench demo``: the README's main job, end to end on a fresh machine.

It chains the public commands, so it shows exactly what a user would type:
``tbench samples`` (every built-in domain) → ``tbench run suites/quick.yaml`` →
``tbench report suites/quick.yaml``, with a Speed section when ``results/bench`` holds a complete
``tbench bench`` result of this machine (the newest per bench section).
"""

from __future__ import annotations

import argparse
from pathlib import Path

BUILTIN_DOMAINS = ["uci_digits", "uci_digits_m", "font_digits", "font_digits_m"]


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the main job: samples, the quick suite, its HTML report")
    p.add_argument("--suite", default="suites/quick.yaml", help="suite to run (default: %(default)s)")
    p.add_argument("--reports", default="reports", help="where to write the sheet and report")
    p.add_argument("--quiet", action="store_true", help="plain log lines instead of a live display")
    p.add_argument("--executor", choices=["auto", "local", "processes"], default="auto",
                   help="where the suite's cells run (tbench run --executor; default: %(default)s)")
    p.set_defaults(func=_demo)


def _demo(args: argparse.Namespace) -> int:
    import jax

    from benchmark.bench.machine import machine_slug
    from benchmark.cli import main
    from benchmark.report.speed import latest_benches

    bench = latest_benches(Path("results/bench"), machine_slug(jax.default_backend()))
    reports = Path(args.reports)
    reports.mkdir(parents=True, exist_ok=True)
    steps = [
        ["samples", *BUILTIN_DOMAINS, "-o", str(reports / "samples.png")],
        ["run", args.suite, "--executor", args.executor, *(["--quiet"] if args.quiet else [])],
        ["report", args.suite, "-o", str(reports / f"{Path(args.suite).stem}.html"),
         *(arg for path in bench for arg in ("--bench", str(path)))],
    ]
    for argv in steps:
        print("$ tbench " + " ".join(argv), flush=True)
        status = main(argv)
        if status:
            return status
    return 0
