"""Interleaved timing: A B C A B C ..., so slow drift on a shared machine hits every contender.

Other people's jobs come and go on the machines this runs on; timing A for a minute and then
B for a minute measures the load, not A vs B. Interleaving trials and comparing medians (with
the spread shown) is the cheapest defence. Ratios are taken between medians.
"""

from __future__ import annotations

import gc
import statistics
import time
from collections.abc import Callable, Mapping
from typing import Any


def interleave(
    trials: Mapping[str, Callable[[], Any]],
    *,
    repeats: int,
    warmup: int = 1,
) -> dict[str, list[float]]:
    """Run every trial ``warmup`` times, then ``repeats`` rounds of each in turn.

    trials: name -> a zero-argument callable that does one unit of work and *waits for it*
        (``block_until_ready`` / ``.item()``); its return value is ignored.
    Returns name -> the ``repeats`` wall times in seconds, in the order they ran.
    """
    if repeats < 1:
        raise ValueError(f"repeats must be at least 1, got {repeats}")
    for fn in trials.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in trials}
    for _ in range(repeats):
        for name, fn in trials.items():
            gc.collect()
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return times


def summarize(seconds: list[float], work: float, unit: str) -> dict[str, Any]:
    """Median rate and its spread for one contender.

    seconds: wall times of equal trials; work: units of work per trial (images, FLOPs, cells).
    Returns ``{"unit", "work_per_trial", "seconds": [...], "median_s", "rate" (work / median_s),
    "rate_min", "rate_max"}`` (rate_min from the slowest trial, rate_max from the fastest).
    """
    median = statistics.median(seconds)
    return {
        "unit": unit,
        "work_per_trial": work,
        "seconds": [round(s, 6) for s in seconds],
        "median_s": median,
        "rate": work / median,
        "rate_min": work / max(seconds),
        "rate_max": work / min(seconds),
    }


def ratio(numerator: dict[str, Any], denominator: dict[str, Any]) -> float:
    """Speed-up of one summarized contender over another: ratio of their median rates."""
    return numerator["rate"] / denominator["rate"]
