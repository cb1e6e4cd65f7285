"""The unit of work: one cell of a suite's grid, independent of where or how it runs.

A :class:`CellSpec` holds everything that changes a run's result except the seed. The grid
(``benchmark.grid``) builds them from a suite; the engine (``benchmark.engine.run_cell``)
trains them. Two content addresses, one name each: ``cell_id(spec)`` (the cell: its full
resolved configuration, every seed alike; what verdicts group by) and ``run_id(spec, seed)``
(one run of it; the store's primary key). This module is plain data (no JAX), so orchestration,
store and reports can import it anywhere.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from typing import Any

ALL_LABELS = -1
"""``labels_per_class`` value meaning: every label of the target's train split ("all" in YAML).

``labels_per_class == 0`` means no target labels at all (unsupervised domain adaptation:
``source_only``, ``dann``, ``self_training`` with only the unlabeled pool)."""


def _freeze(d: dict[str, Any] | None) -> dict[str, Any]:
    return json.loads(json.dumps(d or {}, sort_keys=True))


@dataclasses.dataclass(frozen=True)
class InputSpec:
    """The one input format a suite trains on: every dataset is resized / channel-mapped to it."""

    height: int = 28
    width: int = 28
    channels: int = 1

    @property
    def shape(self) -> tuple[int, int, int]:
        return (self.height, self.width, self.channels)


@dataclasses.dataclass(frozen=True)
class CellSpec:
    """One (source, target, strategy, budget) cell, all seeds alike.

    source: dataset name with optional transform spec (``font_digits@label_noise=0.4``), or
        ``None`` for strategies that use no source (``scratch``).
    target: dataset name with optional transform spec.
    strategy: registered strategy name; ``strategy_params`` its parameters (fully resolved).
    labels_per_class: target label budget per class; ``ALL_LABELS`` (-1) means the whole train
        split, 0 means no target labels (unsupervised adaptation).
    backbone / backbone_params: registered model name and its constructor arguments.
    pretrain: source pretraining schedule (steps, batch_size, learning_rate, ...).
    train: target training schedule (steps, batch_size, learning_rate, eval_every, ...).
    validation: how the budget splits into train and validation (``fraction``,
        ``min_per_class``); empty: no validation split (the budget all trains).
    selection: the sweep and its rule (``trials``, ``seed``, ``rule``); empty: one trial.
    data_versions: content version of each user or plugin dataset the cell reads (a user
        folder's fingerprint): an edited folder is a new cell, never a finished one.
    Empty ``validation`` / ``selection`` / ``data_versions`` are left out of the identity, so
    cells written before they existed keep their ids.
    """

    source: str | None
    target: str
    strategy: str
    labels_per_class: int
    input_spec: InputSpec = InputSpec()
    strategy_params: dict[str, Any] = dataclasses.field(default_factory=dict)
    backbone: str = "lenet"
    backbone_params: dict[str, Any] = dataclasses.field(default_factory=dict)
    pretrain: dict[str, Any] = dataclasses.field(default_factory=dict)
    train: dict[str, Any] = dataclasses.field(default_factory=dict)
    validation: dict[str, Any] = dataclasses.field(default_factory=dict)
    selection: dict[str, Any] = dataclasses.field(default_factory=dict)
    data_versions: dict[str, Any] = dataclasses.field(default_factory=dict)
    label: str = dataclasses.field(default="", compare=False)
    """Display name (``finetune_partial(k=2)``), set by the grid from the strategy's declaration;
    not part of the identity (two specs differing only here are the same cell)."""

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("label")
        for key in ("strategy_params", "backbone_params", "pretrain", "train", "validation", "selection",
                    "data_versions"):
            d[key] = _freeze(d[key])
        for key in ("validation", "selection", "data_versions"):
            if not d[key]:
                del d[key]
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any], *, label: str = "") -> CellSpec:
        d = dict(d)
        d["input_spec"] = InputSpec(**d.get("input_spec", {}))
        return cls(**d, label=label)

    @property
    def strategy_label(self) -> str:
        """Display name: the strategy with its method-defining parameters, e.g. ``finetune_partial(k=2)``."""
        return self.label or self.strategy


def cell_id(spec: CellSpec) -> str:
    """Content address of a cell: its full resolved configuration, without the seed."""
    payload = json.dumps({"cell": spec.to_dict()}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:20]


def run_id(spec: CellSpec, seed: int) -> str:
    """Content address of one run: the same cell and seed in any suite is the same run."""
    payload = json.dumps({"cell": spec.to_dict(), "seed": int(seed)}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()[:20]
