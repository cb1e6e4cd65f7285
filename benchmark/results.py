"""What one training run produces. Plain data (no JAX): the store, executors and reports share it."""

from __future__ import annotations

import dataclasses
from typing import Any

STATUS_OK = "ok"
STATUS_DIVERGED = "diverged"
STATUS_FAILED = "failed"


@dataclasses.dataclass
class RunResult:
    """The outcome of one (cell, seed).

    accuracy: top-1 accuracy on the target's test split, or ``None`` when diverged/failed.
    per_class_accuracy: accuracy per target class, index = label.
    curve: training curve, one dict per logged step: ``{"step", "loss", "accuracy"}`` (accuracy
        on the labelled training batch; test data is never looked at during training).
    diverged_step: first step whose loss was NaN/inf (status ``diverged``), else ``None``.
    wall_s / compile_s / pretrain_s: wall time of the run, the part spent compiling, and the
        source pretraining time charged to it (0 when the source came from the cache).
    plan: the engine's execution plan (backend, steps per compiled chunk, unroll, seeds batched).
    extras: strategy-specific numbers (e.g. pseudo-label counts, final DANN lambda).
    """

    seed: int
    status: str
    accuracy: float | None
    per_class_accuracy: list[float] = dataclasses.field(default_factory=list)
    curve: list[dict[str, float]] = dataclasses.field(default_factory=list)
    diverged_step: int | None = None
    wall_s: float = 0.0
    compile_s: float = 0.0
    pretrain_s: float = 0.0
    backend: str = ""
    device: str = ""
    plan: dict[str, Any] = dataclasses.field(default_factory=dict)
    extras: dict[str, Any] = dataclasses.field(default_factory=dict)
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> RunResult:
        return cls(**d)
