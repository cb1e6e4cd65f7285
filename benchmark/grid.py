"""Suite → grid of runs: one :class:`GridRun` per (cell, seed), content-addressed.

Which cells exist (and which are skipped, with the reason shown by ``tbench show``):

* A strategy that uses no source (``scratch``, any strategy with ``uses_source=False``) gets
  one cell per target × budget with ``source=None``; listing sources does not multiply it.
* Every other strategy gets one cell per source × target × budget, except:
  - **same images**: the source and the target are built from the same base dataset
    (``uci_digits@rotate=45`` → ``uci_digits``, ``mnist`` → ``mnist_corrupted/fog``) and the
    budget is not ``all``. Pretraining on
    the target's own train images with their labels would give the model target labels beyond
    the budget, so the cell would not measure transfer. Allowed: budget ``all`` (the source
    then reveals nothing the budget does not; Yosinski et al.'s "selffer" BnB), two class
    subsets of one base with disjoint ``classes`` (different images), and different base
    datasets (``uci_digits_m`` → ``uci_digits``: a distinct blended dataset, as MNIST-M is).
  - **too few labels**: a budget below the strategy's ``min_labels_per_class`` (e.g. budget 0,
    no target labels, for anything but unsupervised adaptation: ``dann``, ``self_training``,
    ``source_only``).
  - **label spaces differ**: a strategy that classifies the target with the source's own head
    (``source_only``) on a pair whose classes differ.

Ids: ``benchmark.cellspec.run_id(spec, seed)`` (the content address of one run, the same in any
suite) and ``benchmark.cellspec.cell_id(spec)`` (the same hash without the seed: the cell).
What a strategy needs comes from its declaration (``benchmark.strategies.declaration``).
A cell without a source model (scratch) builds a backbone with pretrained weights as
``pretrained: none``: a random init (``benchmark.pretrained.sources.cell_backbone_params``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from benchmark.cellspec import ALL_LABELS, CellSpec, cell_id, run_id
from benchmark.config import Suite
from benchmark.pretrained.sources import cell_backbone_params, is_pretrained
from benchmark.strategies.declaration import Declaration


@dataclasses.dataclass(frozen=True)
class GridRun:
    """One run of the grid: a cell and a seed."""

    spec: CellSpec
    seed: int
    run_id: str
    cell_id: str


@dataclasses.dataclass(frozen=True)
class SkippedCell:
    """A (source, target, strategy, budget) combination the grid leaves out, and why."""

    source: str | None
    target: str
    strategy_label: str
    labels_per_class: int
    reason: str


@dataclasses.dataclass(frozen=True)
class Grid:
    suite: Suite
    runs: tuple[GridRun, ...]
    skipped: tuple[SkippedCell, ...]

    @property
    def cells(self) -> list[tuple[CellSpec, list[GridRun]]]:
        """The runs grouped by cell (all seeds of one spec), in grid order."""
        return group_by_cell(self.runs)


def base_dataset(name: str) -> str:
    """The images a dataset is made of: ``font_digits@rotate=30`` → ``font_digits``,
    ``mnist_corrupted/fog`` → ``mnist`` (TFDS corruptions are input ops on the same images)."""
    base = name.split("@", 1)[0].strip()
    family, _, _ = base.partition("/")
    return family.removesuffix("_corrupted") if family.endswith("_corrupted") else base


def group_by_cell(runs: Iterable[GridRun]) -> list[tuple[CellSpec, list[GridRun]]]:
    """Runs sharing a spec, in first-seen order (one ``run_cell`` call each)."""
    groups: dict[str, tuple[CellSpec, list[GridRun]]] = {}
    for run in runs:
        groups.setdefault(run.cell_id, (run.spec, []))[1].append(run)
    return list(groups.values())


def build_grid(suite: Suite) -> Grid:
    """Every run of the suite, ordered so each source is pretrained once and then reused."""
    from benchmark import strategies

    runs: list[GridRun] = []
    skipped: list[SkippedCell] = []
    for source in (None, *suite.sources):
        for entry in suite.strategies:
            strat = strategies.get(entry.name)
            uses_source = strat.needs.source_model
            if uses_source == (source is None):
                continue
            for target in suite.targets:
                for budget in suite.labels_per_class:
                    spec = CellSpec(
                        source=source, target=target, strategy=entry.name, labels_per_class=budget,
                        input_spec=suite.input_spec, strategy_params=dict(entry.params),
                        backbone=suite.backbone,
                        backbone_params=cell_backbone_params(suite.backbone, suite.backbone_params, source),
                        pretrain=dict(suite.pretrain) if uses_source else {},
                        train=dict(suite.train), label=strat.label(entry.params),
                        validation=dataclasses.asdict(suite.validation),
                        selection=dataclasses.asdict(suite.sweep),
                        data_versions=_data_versions(source, target),
                    )
                    reason = _skip_reason(spec, strat)
                    if reason:
                        skipped.append(SkippedCell(source, target, spec.strategy_label, budget, reason))
                        continue
                    key = cell_id(spec)
                    runs.extend(GridRun(spec, seed, run_id(spec, seed), key) for seed in suite.seeds)
    return Grid(suite, tuple(runs), tuple(skipped))


def _data_versions(*names: str | None) -> dict[str, str]:
    """``{name: content version}`` of the user and plugin datasets among ``names`` (built-ins are
    versioned by the code that generates them, so their cells keep their ids)."""
    from benchmark import data

    out = {}
    for name in names:
        if name and not is_pretrained(name):
            found = data.info(name)
            if found.kind in ("user", "plugin") and found.version:
                out[name] = found.version
    return out


def _classes_range(name: str) -> tuple[int, int] | None:
    """``fashion_mnist@classes=5-9`` → ``(5, 9)``; None without a ``classes`` op."""
    ops = name.split("@", 1)[1] if "@" in name else ""
    for op in ops.split(","):
        key, _, value = op.partition("=")
        if key.strip() == "classes":
            lo, _, hi = value.partition("-")
            try:
                return int(lo), int(hi or lo)
            except ValueError:
                return None
    return None


def _same_images(source: str, target: str) -> bool:
    if base_dataset(source) != base_dataset(target):
        return False
    a, b = _classes_range(source), _classes_range(target)
    return not (a and b and (a[1] < b[0] or b[1] < a[0]))


def _skip_reason(spec: CellSpec, strat: Declaration) -> str | None:
    if (spec.source is not None and spec.labels_per_class != ALL_LABELS
            and _same_images(spec.source, spec.target)):
        return (f"source and target are built from the same images ({base_dataset(spec.target)}); "
                "pretraining on them would reveal target labels beyond the budget")
    least = strat.needs.min_labels_per_class
    if spec.labels_per_class != ALL_LABELS and spec.labels_per_class < least:
        return f"{spec.strategy} needs at least {least} target label(s) per class"
    if spec.source is not None and strat.needs.shared_label_space:
        from benchmark import data

        src, tgt = data.info(spec.source), data.info(spec.target)
        if list(src.class_names) != list(tgt.class_names):
            return (f"{spec.strategy} predicts with the source's classes, and {spec.source} "
                    f"({src.num_classes} classes) and {spec.target} ({tgt.num_classes}) differ")
    return None
