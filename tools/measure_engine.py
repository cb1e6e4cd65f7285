"""Measurements behind the engine's choices, reproducible with one command each.

A developer's script, not part of the installed package: run it from a checkout with the
project's environment (``.venv/bin/python tools/measure_engine.py ...``).

``python tools/measure_engine.py plans [--steps 64 --repeats 3 --width 16 --batch 128]``
    images/s of the execution plans (simple loop vs unrolled chunks of 2, 4, 8 steps vs rolled
    chunks of 8, 16, 32) on the configuration of ``tbench bench``'s step section: LeNet width 16,
    28×28×1, batch 128, SGD momentum. Trials are interleaved (A B C A B C ...) so load from other jobs hits every plan alike; the median and
    the range are printed, with each plan's compile seconds (its first call; run with an empty
    ``TBENCH_JAX_CACHE_DIR`` to see real compiles) and minor page faults per step.
    ``TBENCH_MALLOC=default`` runs it with glibc's malloc defaults (``benchmark/engine/malloc.py``).

``python tools/measure_engine.py strategies [--source font_digits --target font_digits_m
--seeds 0 1 2 --labels-per-class 10]``
    accuracy (mean and 95% t-interval over seeds) of scratch / source_only / finetune_full /
    linear_probe / self_training / dann on one pair, through ``run_cell``.
"""

from __future__ import annotations

import argparse
import resource
import statistics
import time
from typing import Any

import jax
import numpy as np

from benchmark.cellspec import CellSpec, InputSpec
from benchmark.config.schedule import resolve_train
from benchmark.engine.malloc import keep_freed_buffers
from benchmark.engine.plan import SIMPLE, Plan
from benchmark.engine.train import Trainer, compile_seconds
from benchmark.strategies.base import all_train, supervised_loss

PLANS = {
    "simple (jitted step, Python loop)": SIMPLE,
    "chunk 2, unroll 2": Plan("fast", 2, 2),
    "chunk 4, unroll 4": Plan("fast", 4, 4),
    "chunk 8, unroll 8": Plan("fast", 8, 8),
    "chunk 8, rolled": Plan("fast", 8, 1),
    "chunk 16, rolled": Plan("fast", 16, 1),
    "chunk 32, rolled": Plan("fast", 32, 1),
}


def measure_plans(steps: int = 64, repeats: int = 3, batch: int = 128, width: int = 16) -> dict[str, Any]:
    """``{plan: {"images_per_s": median, "min", "max", "first_call_s", "compile_s",
    "faults_per_step"}}``."""
    rng = np.random.default_rng(0)
    data = {"images": jax.device_put(rng.integers(0, 256, (4096, 28, 28, 1), np.uint8)),
            "labels": jax.device_put(rng.integers(0, 10, 4096).astype(np.int32))}
    hp = {**resolve_train({"batch_size": batch}), "total_steps": 10**6}
    model_key = ("lenet", (("width", width),), 10)
    trainers = {name: Trainer(model_key, plan) for name, plan in PLANS.items()}
    params = {"model": trainers[next(iter(PLANS))].model.init(
        jax.random.key(0), np.zeros((1, 28, 28, 1), np.uint8))["params"]}

    faults: dict[str, list[int]] = {name: [] for name in PLANS}

    def trial(name: str) -> float:
        f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        t0 = time.perf_counter()
        out = trainers[name].train(params, data, jax.random.key(1), loss=supervised_loss,
                                   labels=all_train, hp=hp, steps=steps)
        jax.block_until_ready(out.params)
        elapsed = time.perf_counter() - t0
        faults[name].append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0)
        return elapsed

    first, compile_s = {}, {}
    for name in PLANS:
        c0 = compile_seconds()
        first[name] = trial(name)
        compile_s[name] = compile_seconds() - c0
    times: dict[str, list[float]] = {name: [] for name in PLANS}
    for _ in range(repeats):
        for name in PLANS:
            times[name].append(trial(name))
    images = steps * batch
    return {name: {"images_per_s": images / statistics.median(t), "min": images / max(t),
                   "max": images / min(t), "first_call_s": first[name], "compile_s": compile_s[name],
                   "faults_per_step": statistics.median(faults[name][1:]) / steps}
            for name, t in times.items()}


STRATEGIES = [("scratch", {}), ("source_only", {}), ("finetune_full", {}), ("linear_probe", {}),
              ("self_training", {}), ("dann", {})]


def measure_strategies(source: str, target: str, seeds: list[int], labels_per_class: int,
                       width: int, train: dict[str, Any], pretrain: dict[str, Any],
                       only: list[str] | None = None) -> list[dict[str, Any]]:
    """One row per strategy: mean accuracy, 95% t-interval half-width, per-seed accuracies."""
    from scipy import stats

    from benchmark.engine import run_cell

    rows = []
    for name, params in STRATEGIES:
        if only and name not in only:
            continue
        spec = CellSpec(source=None if name == "scratch" else source, target=target, strategy=name,
                        labels_per_class=labels_per_class, input_spec=InputSpec(28, 28, 1),
                        strategy_params=params, backbone="lenet", backbone_params={"width": width},
                        pretrain=pretrain if name != "scratch" else {}, train=train)
        t0 = time.perf_counter()
        results = run_cell(spec, seeds)
        accs = [r.accuracy for r in results if r.accuracy is not None]
        n = len(accs)
        mean = float(np.mean(accs)) if accs else float("nan")
        half = float(stats.t.ppf(0.975, n - 1) * np.std(accs, ddof=1) / np.sqrt(n)) if n > 1 else float("nan")
        rows.append({"strategy": name, "mean": mean, "ci95": half, "accuracies": accs,
                     "statuses": [r.status for r in results], "wall_s": time.perf_counter() - t0,
                     "extras": [r.extras for r in results]})
        print(f"{name:15s} {mean:.3f} ± {half:.3f}  (n={n}, {rows[-1]['wall_s']:.0f}s) "
              f"{[round(a, 3) for a in accs]}", flush=True)
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python tools/measure_engine.py", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    p = sub.add_parser("plans")
    p.add_argument("--steps", type=int, default=64)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--width", type=int, default=16)
    s = sub.add_parser("strategies")
    s.add_argument("--source", default="font_digits")
    s.add_argument("--target", default="font_digits_m")
    s.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    s.add_argument("--labels-per-class", type=int, default=10)
    s.add_argument("--width", type=int, default=16)
    s.add_argument("--steps", type=int, default=400)
    s.add_argument("--pretrain-steps", type=int, default=1500)
    s.add_argument("--only", nargs="*")
    args = parser.parse_args(argv)
    tuned = keep_freed_buffers()  # before the backend starts its threads (engine/malloc.py)
    print(f"backend {jax.default_backend()}, devices {jax.devices()}, malloc tuned: {tuned}")
    if args.what == "plans":
        for name, row in measure_plans(args.steps, args.repeats, args.batch, args.width).items():
            print(f"{name:36s} {row['images_per_s']:8.0f} images/s  (range {row['min']:.0f}–{row['max']:.0f}; "
                  f"compile {row['compile_s']:.1f}s; {row['faults_per_step']:.0f} page faults/step)")
        print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    else:
        measure_strategies(args.source, args.target, args.seeds, args.labels_per_class, args.width,
                           {"steps": args.steps}, {"steps": args.pretrain_steps}, args.only)


if __name__ == "__main__":
    main()
