"""Suites: the YAML schema, its checks, and the resolved :class:`Suite` (plain data, no JAX).

``load_suite(path)`` reads a suite file within safe limits (``yamlfile``), checks every field
against the typed declarations (``validate``: schedules in ``schedule``, strategies' own
``DECLARATION.params``, ``benchmark.backbones``) and returns a fully resolved ``Suite``
(``suite``). ``tbench schema`` prints the same schema as JSON Schema (``schema``).

A suite (``tbench show SUITE`` prints it resolved)::

    name: quick                       # store file is results/<name>.sqlite
    description: free text
    input: {height: 28, width: 28, channels: 1}
    backbone: lenet                   # or {name: lenet, params: {width: 8}}
    sources: [font_digits, fashion_mnist@label_permutation=1]
    targets: [uci_digits]
    strategies: [scratch, {name: finetune_partial, params: {k: 1}}]
    labels_per_class: [1, 10, all]    # 0 = no target labels (unsupervised adaptation)
    seeds: 5                          # or an explicit list [0, 1, 2, 3, 4]
    pretrain: {steps: 500, ...}       # source pretraining schedule
    train: {steps: 300, ...}          # target training schedule
    validation: {fraction: 0.2, min_per_class: 1}   # budget → train + validation per class
    sweep: {trials: 1, seed: 0, rule: target_val}   # random search + model-selection rule
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmark.config.suite import SELECTION_RULES, StrategyEntry, Suite, Sweep, Validation
from benchmark.config.validate import REQUIRED_FIELDS, TOP_LEVEL_FIELDS, resolve_suite
from benchmark.config.yamlfile import read_suite_file
from benchmark.errors import did_you_mean


def load_suite(path: str | Path) -> Suite:
    """Read, validate and resolve a suite file. Raises ``UserError`` naming file, line and field."""
    raw, lines = read_suite_file(path)
    return resolve_suite(raw, file=str(path), lines=lines)


def parse_suite(raw: Any, *, file: str = "<suite>") -> Suite:
    """Validate an already parsed suite mapping (reproductions build theirs in code)."""
    return resolve_suite(raw, file=file)


__all__ = [
    "REQUIRED_FIELDS", "SELECTION_RULES", "TOP_LEVEL_FIELDS", "StrategyEntry", "Suite", "Sweep",
    "Validation", "did_you_mean", "load_suite", "parse_suite", "resolve_suite",
]
