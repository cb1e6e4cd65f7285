"""``tbench``: the command line. Intentionally short; each command lives in benchmark/commands/."""

from __future__ import annotations

import argparse
import importlib
import sys

from benchmark.errors import UserError

# One module per command group; each defines ``register(subparsers)`` and sets ``func``.
COMMAND_MODULES = [
    "benchmark.commands.data",
    "benchmark.commands.demo",
    "benchmark.commands.run",
    "benchmark.commands.schema",
    "benchmark.commands.report",
    "benchmark.commands.gap",
    "benchmark.commands.predict",
    "benchmark.commands.reproduce",
    "benchmark.commands.bench",
]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tbench",
        description="transferbench: measure transfer learning, including negative transfer.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except UserError as err:
        print(f"tbench: error: {err}", file=sys.stderr)
        return err.exit_status
    except KeyboardInterrupt:
        print("tbench: interrupted; finished runs are saved, rerun to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
