"""The validated, fully resolved suite: plain data that grid, commands and reports read.

``benchmark.config.load_suite`` builds it; ``Suite.to_yaml_dict()`` is what ``tbench show``
prints, in the suite schema (``tbench schema``), so nothing that changes a number is hidden.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from benchmark.cellspec import ALL_LABELS, InputSpec

SELECTION_RULES = ("target_val", "source_val", "oracle")
"""Model-selection rules (DomainBed's names): validation data of the target budget, of the
source (training-domain validation; the honest rule without target labels), or target labels
outside the budget (``oracle``: an upper bound, never the headline)."""


@dataclasses.dataclass(frozen=True)
class StrategyEntry:
    """One strategy of a suite with its fully resolved parameters (defaults filled in)."""

    name: str
    params: dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Validation:
    """How each target's labelled budget splits into train and validation (VTAB-1k style).

    fraction: share of each class's budget held out for validation (0 disables the split).
    min_per_class: validation images per class at least (a budget that cannot leave one
        training image per class after it is refused).
    """

    fraction: float = 0.2
    min_per_class: int = 1


@dataclasses.dataclass(frozen=True)
class Sweep:
    """Random search over each strategy's declared search space: ``trials`` draws (1 = the
    declared defaults only), seeded by ``seed``; ``rule`` selects among them."""

    trials: int = 1
    seed: int = 0
    rule: str = "target_val"


@dataclasses.dataclass(frozen=True)
class Suite:
    """A validated suite. ``labels_per_class`` uses ``ALL_LABELS`` (-1) for ``all``."""

    name: str
    description: str
    path: str
    input_spec: InputSpec
    backbone: str
    backbone_params: dict[str, Any]
    sources: tuple[str, ...]
    targets: tuple[str, ...]
    strategies: tuple[StrategyEntry, ...]
    labels_per_class: tuple[int, ...]
    seeds: tuple[int, ...]
    pretrain: dict[str, Any]
    train: dict[str, Any]
    validation: Validation = Validation()
    sweep: Sweep = Sweep()

    def to_yaml_dict(self) -> dict[str, Any]:
        """The resolved suite in the suite schema (what ``tbench show`` prints)."""
        return {
            "name": self.name,
            "description": self.description,
            "input": dataclasses.asdict(self.input_spec),
            "backbone": {"name": self.backbone, "params": dict(self.backbone_params)},
            "sources": list(self.sources),
            "targets": list(self.targets),
            "strategies": [{"name": s.name, "params": dict(s.params)} for s in self.strategies],
            "labels_per_class": ["all" if b == ALL_LABELS else b for b in self.labels_per_class],
            "seeds": list(self.seeds),
            "pretrain": dict(self.pretrain),
            "train": dict(self.train),
            "validation": dataclasses.asdict(self.validation),
            "sweep": dataclasses.asdict(self.sweep),
        }
