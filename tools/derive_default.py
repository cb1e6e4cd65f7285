"""Derive a strategy default from a finished suite by a validation rule (never test accuracy).

``python tools/derive_default.py suites/defaults/dann_backbone_lr.yaml --param backbone_lr_scale``
groups the suite's finished runs by the parameter's value and picks the value with the highest
mean of ``--score`` (default ``source_val_accuracy``: the source's held-out split, the honest
rule without target labels), printing every value's mean, n and Student-t 95% interval.
"""

from __future__ import annotations

import argparse
import json
import sys

import numpy as np
from scipy import stats

from benchmark.config import load_suite
from benchmark.grid import build_grid
from benchmark.store import Store, suite_store_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("suite")
    parser.add_argument("--param", required=True)
    parser.add_argument("--score", default="source_val_accuracy")
    args = parser.parse_args(argv)
    suite = load_suite(args.suite)
    wanted = {r.run_id: r.spec for r in build_grid(suite).runs}
    with Store(suite_store_path(args.suite), create=False) as store:
        runs = store.runs_frame()
    by_value: dict[float, list[float]] = {}
    for row in runs.itertuples():
        if row.run_id not in wanted or row.status != "ok":
            continue
        extras = row.extras if isinstance(row.extras, dict) else json.loads(row.extras or "{}")
        if args.score in extras:
            value = wanted[row.run_id].strategy_params[args.param]
            by_value.setdefault(value, []).append(float(extras[args.score]))
    if not by_value:
        print(f"no finished runs with {args.score}; run `tbench run {args.suite}` first", file=sys.stderr)
        return 2
    for value, scores in sorted(by_value.items()):
        a = np.asarray(scores)
        half = stats.t.ppf(0.975, a.size - 1) * a.std(ddof=1) / np.sqrt(a.size) if a.size > 1 else float("nan")
        print(f"{args.param}={value}: mean {args.score} {a.mean():.4f} "
              f"[{a.mean() - half:.4f}, {a.mean() + half:.4f}] n={a.size}")
    best = max(by_value, key=lambda v: np.mean(by_value[v]))
    print(f"chosen by mean {args.score}: {args.param}={best}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
