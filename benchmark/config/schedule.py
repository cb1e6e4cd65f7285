"""The training schedules a suite sets: ``pretrain`` (source) and ``train`` (target) dicts.

Keys (all optional; defaults below, and ``resolve_train``/``resolve_pretrain`` return the
fully resolved dict that ``tbench show`` prints):

* ``steps``: optimiser steps (int ≥ 1).
* ``batch_size``: examples per step (capped at the number of labelled examples).
* ``learning_rate``: base learning rate (float > 0).
* ``optimizer``: ``"sgd"`` (with ``momentum``) or ``"adam"``.
* ``momentum``: SGD momentum in [0, 1).
* ``weight_decay``: decoupled L2 decay added to the update (0 disables).
* ``lr_schedule``: ``"constant"``, ``"cosine"`` (to 0 over ``steps``) or ``"dann"``
  (μ_p = μ0 / (1 + 10 p)^0.75, Ganin et al. JMLR 2016 § 5.2.2).
* ``log_every``: steps per point of the training curve.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from benchmark.errors import UserError, did_you_mean
from benchmark.strategies.declaration import Param

MAX_STEPS = 1_000_000
MAX_BATCH = 65_536

SCHEDULE_PARAMS: dict[str, Param] = {
    "steps": Param(int, 300, "optimiser steps", minimum=1, maximum=MAX_STEPS),
    "batch_size": Param(int, 64, "examples per step (capped at the labelled examples)", minimum=1, maximum=MAX_BATCH),
    "learning_rate": Param(float, 0.05, "base learning rate", minimum=0.0, exclusive_minimum=True),
    "optimizer": Param(str, "sgd", "sgd (with momentum) or adam", choices=("sgd", "adam")),
    "momentum": Param(float, 0.9, "SGD momentum", minimum=0.0, maximum=0.999),
    "weight_decay": Param(float, 0.0005, "decoupled L2 decay added to the update", minimum=0.0, maximum=1.0),
    "lr_schedule": Param(str, "constant", "learning-rate schedule", choices=("constant", "cosine", "dann")),
    "log_every": Param(int, 50, "steps per point of the training curve", minimum=1, maximum=MAX_STEPS),
}
"""The schedule's typed fields: what ``tbench schema`` shows and what every suite is checked against."""

TRAIN_DEFAULTS: dict[str, Any] = {k: p.default for k, p in SCHEDULE_PARAMS.items()}

PRETRAIN_DEFAULTS: dict[str, Any] = {**TRAIN_DEFAULTS, "steps": 1000, "batch_size": 128}


def _resolve(given: Mapping[str, Any] | None, defaults: dict[str, Any], field: str) -> dict[str, Any]:
    given = dict(given or {})
    for key in given:
        if key not in SCHEDULE_PARAMS:
            raise UserError("unknown schedule field" + did_you_mean(str(key), sorted(defaults)), field=f"{field}.{key}")
    out = dict(defaults)
    for key, value in given.items():
        out[key] = SCHEDULE_PARAMS[key].check(key, value, field=f"{field}.{key}")
    return out


def resolve_train(train: Mapping[str, Any] | None) -> dict[str, Any]:
    """The target schedule with every default filled in (raises UserError naming ``train.<key>``)."""
    return _resolve(train, TRAIN_DEFAULTS, "train")


def resolve_pretrain(pretrain: Mapping[str, Any] | None) -> dict[str, Any]:
    """The source pretraining schedule with every default filled in."""
    return _resolve(pretrain, PRETRAIN_DEFAULTS, "pretrain")
