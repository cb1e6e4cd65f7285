"""``tbench schema`` (the suite JSON Schema) and ``tbench strategies`` (every declaration).

Both read plain-data declarations only: no JAX is loaded.
"""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("schema", help="print the suite file's JSON Schema (for editors that check YAML)")
    p.set_defaults(func=_schema)
    p = sub.add_parser("strategies", help="list every strategy (built-in and plugin) with its declaration")
    p.add_argument("--json", action="store_true", help="the full declarations as JSON")
    p.set_defaults(func=_strategies)


def _schema(args: argparse.Namespace) -> int:
    from benchmark.config.schema import suite_schema

    print(json.dumps(suite_schema(), indent=2, sort_keys=False))
    return 0


def _strategies(args: argparse.Namespace) -> int:
    from benchmark import strategies

    decls = [strategies.get(n) for n in strategies.names()]
    if args.json:
        print(json.dumps([d.to_dict() for d in decls], indent=2))
        return 0
    for d in decls:
        params = ", ".join(f"{k}={p.default!r}" for k, p in d.params.items()) or "no parameters"
        print(f"{d.name:18s} {d.summary}\n{'':18s} {params}; arm: {d.comparison_arm or '(reference only)'}")
    return 0
