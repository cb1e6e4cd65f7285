"""Validation split of a label budget, sweep candidates, and model-selection scores.

The protocol (DomainBed's, on VTAB-1k's split): each target's labelled budget splits per class
into train and validation (``validation.fraction``, at least ``min_per_class`` held out while
one training image remains); a sweep draws ``trials`` configurations from the strategy's
declared search space (trial 0 = the suite's own values), trains each, and keeps the one the
rule scores best:

* ``target_val``: accuracy on the budget's validation part (the default when labels > 0);
* ``source_val``: accuracy on the source's held-out (test) split, for a model that predicts the
  source's classes: training-domain validation, the rule used automatically at 0 labels;
* ``oracle``: accuracy on target train labels *outside* the budget (an upper bound; never the
  headline).

The target test split is never read here: ``run_seed`` evaluates it once, for the choice.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from benchmark.strategies.declaration import Declaration

_VAL_STREAM = 0x7A11D
_SWEEP_STREAM = 0x5EE9
SCORE_EXAMPLES = 2000
"""Examples scored per candidate (source test split or the oracle's pool)."""


def split_validation(labels: np.ndarray, labeled: np.ndarray, validation: Mapping[str, Any],
                     seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(train_idx, val_idx)``: the budget ``labeled`` (indices into ``labels``) split per class.

    A class keeps ``max(min_per_class, round(fraction × n_c))`` for validation only when at
    least one training example remains; with ``fraction`` 0 (or no ``validation``) nothing is
    held out. Both results are sorted and disjoint, and their union is ``labeled``.
    """
    fraction = float(validation.get("fraction", 0.0) or 0.0)
    if fraction <= 0 or labeled.size == 0:
        return np.sort(labeled), np.arange(0)
    least = int(validation.get("min_per_class", 1))
    rng = np.random.default_rng([int(seed), _VAL_STREAM])
    order = labeled[rng.permutation(labeled.size)]
    held = []
    for c in np.unique(labels[labeled]):
        members = order[labels[order] == c]
        n_val = max(least, int(round(fraction * members.size)))
        if members.size - n_val >= 1:
            held.append(members[:n_val])
    val = np.sort(np.concatenate(held)) if held else np.arange(0)
    return np.setdiff1d(labeled, val), val


def candidates(decl: Declaration, strategy_params: Mapping[str, Any], train: Mapping[str, Any],
               selection: Mapping[str, Any]) -> list[tuple[dict[str, Any], dict[str, Any]]]:
    """``[(strategy_params, train)]`` per trial: trial 0 as the suite says, then random draws
    from ``decl.search_space`` (seeded by ``selection.seed``; the same for every run seed)."""
    trials = int(selection.get("trials", 1) or 1)
    out = [(dict(strategy_params), dict(train))]
    rng = np.random.default_rng([int(selection.get("seed", 0)), _SWEEP_STREAM])
    for _ in range(1, trials):
        params, schedule = dict(strategy_params), dict(train)
        for dim in decl.search_space:
            if dim.choices is not None:
                value: Any = dim.choices[int(rng.integers(len(dim.choices)))]
            elif dim.log:
                value = float(math.exp(rng.uniform(math.log(dim.low), math.log(dim.high))))
            else:
                value = float(rng.uniform(dim.low, dim.high))
            if dim.param.startswith("train."):
                schedule[dim.param.split(".", 1)[1]] = value
            else:
                params[dim.param] = value
        out.append((params, schedule))
    return out


def rule_for(selection: Mapping[str, Any], num_labeled: int) -> str:
    """The rule a run applies: the suite's, except ``source_val`` when there are no target labels
    (no target validation data exists then)."""
    rule = str(selection.get("rule", "target_val") or "target_val")
    return "source_val" if num_labeled == 0 and rule == "target_val" else rule


def subsample(n: int, seed: int, cap: int = SCORE_EXAMPLES) -> np.ndarray:
    """At most ``cap`` sorted indices of ``range(n)``, drawn from the seed."""
    if n <= cap:
        return np.arange(n)
    return np.sort(np.random.default_rng([int(seed), _VAL_STREAM, 1]).permutation(n)[:cap])
