"""The one tiny configuration every integration test shares, so compiled kernels are shared.

16×16×1 inputs, a width-4 LeNet (4,794 parameters), 512 pretraining steps and 48 target steps
(multiples of the CPU plan's chunk). Import these instead of inventing new shapes: each
new shape or schedule is another XLA compile (seconds on CPU).
"""

from __future__ import annotations

from typing import Any

from benchmark.cellspec import CellSpec, InputSpec

SPEC = InputSpec(16, 16, 1)
BACKBONE = "lenet"
BACKBONE_PARAMS: dict[str, Any] = {"width": 4}
PRETRAIN: dict[str, Any] = {"steps": 512, "batch_size": 32, "learning_rate": 0.05, "log_every": 16}
TRAIN: dict[str, Any] = {"steps": 48, "batch_size": 32, "learning_rate": 0.05, "log_every": 16}
SOURCE = "font_digits"
TARGET = "uci_digits"
LABELS_PER_CLASS = 5
SEED = 0


def cell(strategy: str, *, source: str | None = SOURCE, target: str = TARGET,
         labels_per_class: int = LABELS_PER_CLASS, train: dict[str, Any] | None = None,
         **strategy_params: Any) -> CellSpec:
    """A tiny cell of ``strategy`` on the shared built-in pair (source ``None`` for scratch)."""
    return CellSpec(
        source=None if strategy == "scratch" and source == SOURCE else source,
        target=target,
        strategy=strategy,
        labels_per_class=labels_per_class,
        input_spec=SPEC,
        strategy_params=strategy_params,
        backbone=BACKBONE,
        backbone_params=dict(BACKBONE_PARAMS),
        pretrain=dict(PRETRAIN),
        train={**TRAIN, **(train or {})},
    )
