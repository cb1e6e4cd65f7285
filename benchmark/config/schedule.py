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

from benchmark.errors import UserError

TRAIN_DEFAULTS: dict[str, Any] = {
    "steps": 300,
    "batch_size": 64,
    "learning_rate": 0.05,
    "optimizer": "sgd",
    "momentum": 0.9,
    "weight_decay": 0.0005,
    "lr_schedule": "constant",
    "log_every": 50,
}

PRETRAIN_DEFAULTS: dict[str, Any] = {**TRAIN_DEFAULTS, "steps": 1000, "batch_size": 128}

_CHOICES = {"optimizer": ("sgd", "adam"), "lr_schedule": ("constant", "cosine", "dann")}


def _resolve(given: Mapping[str, Any] | None, defaults: dict[str, Any], field: str) -> dict[str, Any]:
    given = dict(given or {})
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise UserError(f"unknown key(s) {unknown}; allowed: {sorted(defaults)}", field=field)
    out = {**defaults, **given}
    for key in ("steps", "batch_size", "log_every"):
        if not isinstance(out[key], int) or isinstance(out[key], bool) or out[key] < 1:
            raise UserError(f"{key} must be a positive integer, got {out[key]!r}", field=f"{field}.{key}")
    for key in ("learning_rate", "momentum", "weight_decay"):
        if not isinstance(out[key], int | float) or isinstance(out[key], bool) or out[key] < 0:
            raise UserError(f"{key} must be a number ≥ 0, got {out[key]!r}", field=f"{field}.{key}")
        out[key] = float(out[key])
    if out["learning_rate"] <= 0:
        raise UserError("learning_rate must be > 0", field=f"{field}.learning_rate")
    if out["momentum"] >= 1:
        raise UserError("momentum must be < 1", field=f"{field}.momentum")
    for key, allowed in _CHOICES.items():
        if out[key] not in allowed:
            raise UserError(f"{key} must be one of {list(allowed)}, got {out[key]!r}", field=f"{field}.{key}")
    return out


def resolve_train(train: Mapping[str, Any] | None) -> dict[str, Any]:
    """The target schedule with every default filled in (raises UserError naming ``train.<key>``)."""
    return _resolve(train, TRAIN_DEFAULTS, "train")


def resolve_pretrain(pretrain: Mapping[str, Any] | None) -> dict[str, Any]:
    """The source pretraining schedule with every default filled in."""
    return _resolve(pretrain, PRETRAIN_DEFAULTS, "pretrain")
