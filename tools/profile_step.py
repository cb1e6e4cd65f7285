"""Where a training step's time goes: run one contender for a while under ``perf``.

    .venv/bin/python tools/profile_step.py engine --seconds 60 &   # prints "ready"
    perf record -F 400 -p <its pid> -o /tmp/engine.perf -- sleep 20          # after "ready"
    perf report -i /tmp/engine.perf --sort dso,symbol --no-children --stdio > /tmp/engine.txt
    .venv/bin/python tools/profile_step.py summarize /tmp/engine.txt

A developer's script, not part of the installed package. ``engine`` / ``flax_tutorial`` /
``torch_eager`` run that contender of ``benchmark.bench.step`` (``tbench bench``'s step
configuration) in a loop after one warm-up trial (compiles excluded from the profile);
``summarize`` folds ``perf report`` lines into the share of samples per (library, function),
with C++ template arguments elided: XLA's Eigen convolution/contraction kernels, the kernel's
page clearing, the Python interpreter. (py-spy ``--native`` falls behind on XLA's thread pool.)
"""

from __future__ import annotations

import argparse
import re
import time
from collections import Counter
from pathlib import Path


def _short(symbol: str) -> str:
    while True:  # elide nested template arguments, innermost first
        shorter = re.sub(r"<[^<>]*>", "", symbol)
        if shorter == symbol:
            break
        symbol = shorter
    return re.sub(r"\(.*\)", "()", symbol).strip()[:100]


def summarize(path: str | Path, top: int = 25) -> list[tuple[str, float]]:
    """``[("dso: function", share of samples)]``, largest first, from ``perf report --stdio``."""
    shares: Counter[str] = Counter()
    for line in Path(path).read_text(errors="replace").splitlines():
        match = re.match(r"\s*([0-9.]+)%\s+(\S+)\s+\[[.k]\]\s+(.*)", line)
        if match:
            shares[f"{match[2]}: {_short(match[3])}"] += float(match[1]) / 100
    return shares.most_common(top)


def loop(contender: str, seconds: float) -> int:
    """Run ``contender``'s trial until ``seconds`` have passed; returns the number of trials."""
    from benchmark.bench import step
    from benchmark.engine.malloc import keep_freed_buffers

    keep_freed_buffers()  # profile the process as tbench runs it (benchmark/engine/malloc.py)
    trial = step.build(step.StepConfig(seeds=1))["trials"][contender]
    trial()
    print("ready", flush=True)
    n, end = 0, time.perf_counter() + seconds
    while time.perf_counter() < end:
        trial()
        n += 1
    return n


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python tools/profile_step.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=["engine", "flax_tutorial", "torch_eager", "summarize"])
    parser.add_argument("path", nargs="?", help="py-spy raw output (summarize)")
    parser.add_argument("--seconds", type=float, default=20.0)
    args = parser.parse_args(argv)
    if args.what == "summarize":
        rows = summarize(args.path, top=10**6)
        by_library: Counter[str] = Counter()
        for name, share in rows:
            by_library[name.split(": ")[0]] += share
        print("by library: " + ", ".join(f"{k} {100 * v:.1f}%" for k, v in by_library.most_common(6)))
        for name, share in rows[:25]:
            print(f"{100 * share:5.1f}%  {name}")
    else:
        print(f"{args.what}: {loop(args.what, args.seconds)} trials")


if __name__ == "__main__":
    main()
