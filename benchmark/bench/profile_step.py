"""Where a training step's time goes: run one contender for a while under a sampling profiler.

    py-spy record --native --format raw --rate 200 -o /tmp/engine.txt -- \\
        .venv/bin/python -m benchmark.bench.profile_step engine --seconds 20
    .venv/bin/python -m benchmark.bench.profile_step summarize /tmp/engine.txt

``engine`` / ``flax_tutorial`` / ``torch_eager`` run that contender of :mod:`.step` (DESIGN.md
configuration) in a loop; ``summarize`` folds py-spy's collapsed stacks into the share of
samples per leaf function (native frames included: XLA's Eigen/oneDNN kernels, PyTorch's
oneDNN convolutions, the Python interpreter), the profile behind any target the JSON says is
not met.
"""

from __future__ import annotations

import argparse
import re
import time
from collections import Counter
from pathlib import Path


def _leaf(frame: str) -> str:
    name = frame.split(" (")[0].strip()
    # Templated C++ names are long; keep the readable head.
    name = re.sub(r"<.*>", "<…>", name)
    return name[:120]


def summarize(path: str | Path, top: int = 25) -> list[tuple[str, float]]:
    """``[(leaf function, share of samples)]``, largest first, from py-spy ``--format raw``."""
    leaves: Counter[str] = Counter()
    total = 0
    for line in Path(path).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        leaves[_leaf(stack.split(";")[-1])] += int(count)
        total += int(count)
    return [(name, n / total) for name, n in leaves.most_common(top)] if total else []


def loop(contender: str, seconds: float) -> int:
    """Run ``contender``'s trial until ``seconds`` have passed; returns the number of trials."""
    from benchmark.bench import step

    trial = step.build(step.StepConfig(seeds=1))["trials"][contender]
    trial()
    n, end = 0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        trial()
        n += 1
    return n


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmark.bench.profile_step", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["engine", "flax_tutorial", "torch_eager", "summarize"])
    parser.add_argument("path", nargs="?", help="py-spy raw output (summarize)")
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args(argv)
    if args.what == "summarize":
        for name, share in summarize(args.path):
            print(f"{100 * share:5.1f}%  {name}")
    else:
        print(f"{args.what}: {loop(args.what, args.seconds)} trials")


if __name__ == "__main__":
    main()
