"""One identity per cell: runs are grouped by their cell's full resolved configuration.

A cell's identity is the content address of its :class:`~benchmark.cellspec.CellSpec` without
the seed (``benchmark.cellspec.cell_id(spec)``); the store records it with every run (the ``cell_id`` column). Report,
export and reproductions group by it, never by a display label: two cells that differ only in
``train.steps`` share a label (``finetune_full``) but are two experiments.

* :func:`suite_membership` — for a report made for a suite: ``current`` (a cell of the suite's
  grid now), ``stale`` (recorded under this suite's name, but a cell the suite no longer has:
  an earlier version of it) or ``foreign`` (another suite's run in the same store). Only
  ``current`` runs are pooled.
* :func:`variants` — for cells that share a display label, the resolved parameters that tell
  them apart (``train.steps=96``), so a bare store shows them side by side.
* :func:`arm_context` — what a run must share with its comparison arm besides target, budget,
  seed and selection rule (input, backbone, target schedule), as a short hash.
* :func:`selection_rule` — the model-selection rule a run records (``extras["selection_rule"]``).

Pure pandas; no JAX.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

import pandas as pd

CURRENT, STALE, FOREIGN = "current", "stale", "foreign"
IGNORED_REASONS = {
    STALE: "stale: from an earlier version of this suite (its cell is no longer in the suite)",
    FOREIGN: "foreign: recorded by another suite in the same store",
}
NO_SELECTION = "fixed schedule (no selection)"
DISPLAY_KEYS = ["source", "target", "strategy_label", "labels_per_class"]


def grid_cell_ids(grid: Any) -> set[str]:
    """The cell ids of every run of a ``benchmark.grid.Grid`` (what the store's ``cell_id`` holds)."""
    return {getattr(r, "cell_id", None) or r.cell_key for r in grid.runs}


def cell_config(config: Any) -> dict[str, Any]:
    """The resolved cell of a run's stored ``config`` (``{"cell": {...}, "seed": s}``); ``{}`` if absent."""
    if isinstance(config, Mapping):
        cell = config.get("cell", config)
        if isinstance(cell, Mapping):
            return dict(cell)
    return {}


def flatten(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"train": {"steps": 48}}`` → ``{"train.steps": 48}`` (lists and scalars are leaves)."""
    out: dict[str, Any] = {}
    for key, value in d.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(flatten(value, name + "."))
        else:
            out[name] = value
    return out


def selection_rule(extras: Any) -> str:
    """The run's model-selection rule, or :data:`NO_SELECTION` when it records none."""
    rule = extras.get("selection_rule") if isinstance(extras, Mapping) else None
    return str(rule) if rule else NO_SELECTION


PRETRAINED_PARAM = "pretrained"
"""The backbone parameter naming its starting weights (``benchmark/backbones.py``)."""


def arm_context(config: Any) -> str:
    """A short hash of what paired arms must share: input, backbone and the target schedule.

    Target and budget are compared as columns; source, strategy and its parameters, the
    source's pretraining schedule and the backbone's starting weights (its ``pretrained``
    parameter) are what a comparison is *about* and are left out. ``""`` for
    runs without a stored config (constructed frames): they pair on target and budget alone.
    """
    cell = cell_config(config)
    if not cell:
        return ""
    shared = {k: cell.get(k) for k in ("input_spec", "backbone", "backbone_params", "train")}
    # Which weights the backbone starts from (``pretrained: imagenet``) is the source side of the
    # comparison: the scratch arm of an ImageNet cell is the same net with ``pretrained: none``.
    if isinstance(shared["backbone_params"], dict):
        shared["backbone_params"] = {k: v for k, v in shared["backbone_params"].items() if k != PRETRAINED_PARAM}
    return hashlib.sha256(json.dumps(shared, sort_keys=True, default=str).encode()).hexdigest()[:12]


def suite_membership(runs: pd.DataFrame, suite_name: str, cell_keys: Iterable[str]) -> pd.Series:
    """Per run: :data:`CURRENT`, :data:`STALE` or :data:`FOREIGN` against a suite's grid."""
    keys = set(cell_keys)
    current = runs["cell_id"].isin(keys)
    own = runs["suite"].astype(str) == str(suite_name) if "suite" in runs else pd.Series(True, index=runs.index)
    return pd.Series([CURRENT if c else STALE if o else FOREIGN for c, o in zip(current, own, strict=True)],
                     index=runs.index, dtype=object)


def ignored_summary(membership: pd.Series) -> list[dict[str, Any]]:
    """``[{"kind": "stale", "runs": 4, "reason": ...}, ...]`` for the runs a suite report leaves out."""
    counts = membership.value_counts()
    return [{"kind": kind, "runs": int(counts[kind]), "reason": IGNORED_REASONS[kind]}
            for kind in (STALE, FOREIGN) if counts.get(kind, 0)]


def variants(runs: pd.DataFrame) -> dict[str, str]:
    """``{cell_id: "train.steps=96, ..."}``: for cells sharing a display label, what differs.

    Empty string for a cell whose display label is unique. Parameters are read from the runs'
    stored configs; cells without one are told apart by their cell id.
    """
    out: dict[str, str] = {}
    first = runs.drop_duplicates("cell_id")
    for _, group in first.groupby(DISPLAY_KEYS, sort=False, dropna=False):
        if len(group) == 1:
            out[group["cell_id"].iloc[0]] = ""
            continue
        flat = {cid: flatten(cell_config(cfg)) for cid, cfg in zip(group["cell_id"], group["config"], strict=True)}
        names = sorted(set().union(*flat.values()))
        differing = [k for k in names if len({json.dumps(f.get(k), sort_keys=True, default=str)
                                              for f in flat.values()}) > 1]
        for cid, f in flat.items():
            parts = [f"{k}={f.get(k, '—')}" for k in differing]
            out[cid] = ", ".join(parts) if parts else f"cell {cid}"
    return out


def strategy_params(config: Any) -> dict[str, Any]:
    """The run's resolved strategy parameters (``config.cell.strategy_params``)."""
    params = cell_config(config).get("strategy_params")
    return dict(params) if isinstance(params, Mapping) else {}
