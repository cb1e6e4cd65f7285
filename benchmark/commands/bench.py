"""``tbench bench``: the engine's speed against references, measured in one interleaved run.

``tbench bench [--quick] [-o results/bench/<machine>-<date>.json]
[--only step|grid|scaling|strategies|efficientnet|executors]``
writes one JSON (machine, versions, every trial's seconds, medians, ratios, MFU, peak memory,
targets met / not met) and, with the scaling section, a PNG beside it. See ``benchmark/bench``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("bench", help="speed: engine vs a Flax-tutorial loop vs PyTorch eager; grid vs naive; "
                                     "strategies vs finetune_full; EfficientNet-Lite0 vs PyTorch")
    p.add_argument("--quick", action="store_true",
                   help="shorter trials and the small bench_quick suite (minutes, not an hour)")
    p.add_argument("-o", "--output", help="JSON to write (default: results/bench/<machine>-<date>.json)")
    p.add_argument("--only", action="append", metavar="NAME",
                   help="run only this section: step, grid, scaling, strategies (each fine-tuning "
                        "strategy's step time vs finetune_full), efficientnet (EfficientNet-Lite0 "
                        "forward and training throughput vs PyTorch eager) or executors (the suite with "
                        "one process vs one single-threaded process per core) (repeatable)")
    p.add_argument("--suite", help="suite YAML for the grid, scaling and executors sections "
                                   "(default: suites/quick.yaml, or bench_quick with --quick)")
    p.add_argument("--naive-per-stratum", type=int, metavar="N",
                   help="naive grid: time N runs per (strategy, budget) and extrapolate "
                        "(default 1; 0 = run every run)")
    p.set_defaults(func=_bench)


def _bench(args: argparse.Namespace) -> int:
    from benchmark.bench.runner import SECTIONS, full_config, quick_config, run_bench
    from benchmark.errors import UserError

    config = quick_config() if args.quick else full_config()
    if args.only:
        unknown = sorted(set(args.only) - set(SECTIONS))
        if unknown:
            raise UserError(f"unknown section(s) {unknown}; choose from {', '.join(SECTIONS)}",
                            field="--only")
        config = dataclasses.replace(config, only=tuple(s for s in SECTIONS if s in args.only))
    if args.suite:
        if not Path(args.suite).is_file():
            raise UserError(f"suite file {args.suite!r} does not exist", field="--suite")
        config = dataclasses.replace(config, grid=dataclasses.replace(config.grid, suite=args.suite),
                                     scaling=dataclasses.replace(config.scaling, suite=args.suite),
                                     executors=dataclasses.replace(config.executors, suite=args.suite))
    if args.naive_per_stratum is not None:
        if args.naive_per_stratum < 0:
            raise UserError(f"must be 0 (every run) or more, got {args.naive_per_stratum}",
                            field="--naive-per-stratum")
        config = dataclasses.replace(config, grid=dataclasses.replace(
            config.grid, per_stratum=args.naive_per_stratum or None))
    result = run_bench(config, Path(args.output) if args.output else None,
                       log=lambda m: print(m, flush=True))
    print(json.dumps({"written": result["output"], "targets": result["targets"]}, indent=1))
    return 0
