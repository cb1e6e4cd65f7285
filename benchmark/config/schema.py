"""The suite schema as JSON Schema (``tbench schema``), built from the same typed declarations
the checks in ``benchmark.config.validate`` use, so an editor completes and checks suite files
with exactly the rules ``tbench`` applies (dataset existence and class counts aside: those need
the data and are checked by ``tbench show`` / ``tbench run``).
"""

from __future__ import annotations

from typing import Any

from benchmark import backbones, strategies
from benchmark.config.schedule import PRETRAIN_DEFAULTS, SCHEDULE_PARAMS
from benchmark.config.validate import (
    MAX_NAME,
    MAX_SEEDS,
    REQUIRED_FIELDS,
    SWEEP_PARAMS,
    VALIDATION_PARAMS,
)
from benchmark.strategies.declaration import INT32_MAX, Param

SCHEMA_ID = "https://transferbench.invalid/suite.schema.json"


def _object(params: dict[str, Param], description: str, defaults: dict[str, Any] | None = None) -> dict[str, Any]:
    props = {k: p.json_schema() for k, p in params.items()}
    for key, value in (defaults or {}).items():
        props[key]["default"] = value
    return {"type": "object", "description": description, "properties": props, "additionalProperties": False}


def _strategy_schema(name: str) -> dict[str, Any]:
    decl = strategies.get(name)
    entry = {
        "type": "object", "description": decl.summary,
        "properties": {"name": {"const": name},
                       "params": _object(dict(decl.params), f"parameters of {name}")},
        "required": ["name"], "additionalProperties": False,
    }
    return {"anyOf": [{"const": name, "description": decl.summary}, entry]}


def _backbone_schema(name: str) -> dict[str, Any]:
    b = backbones.get(name)
    return {"type": "object", "properties": {"name": {"const": name},
                                              "params": _object(dict(b.params), f"parameters of {name}")},
            "required": ["name"], "additionalProperties": False}


def suite_schema() -> dict[str, Any]:
    """JSON Schema (draft 2020-12) of a suite file."""
    dataset = {"type": "string", "minLength": 1, "maxLength": MAX_NAME,
               "description": "a dataset name, optionally with ops: uci_digits@rotate=45,invert"}
    dataset_list = {"type": "array", "items": dataset, "uniqueItems": True}
    size = {"type": "integer", "minimum": min(b.min_size for b in backbones.BACKBONES.values()),
            "maximum": max(b.max_size for b in backbones.BACKBONES.values())}
    budget = {"anyOf": [{"type": "integer", "minimum": 0}, {"const": "all"}]}
    seed = {"type": "integer", "minimum": 0, "maximum": INT32_MAX}
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "transferbench suite",
        "type": "object",
        "required": list(REQUIRED_FIELDS),
        "additionalProperties": False,
        "properties": {
            "name": {"type": "string", "pattern": "^[A-Za-z0-9._-]+$", "maxLength": 100},
            "description": {"type": "string"},
            "input": {"type": "object", "additionalProperties": False,
                      "properties": {"height": size, "width": size, "channels": {"enum": [1, 3]}}},
            "backbone": {"anyOf": [{"enum": backbones.names()},
                                   *[_backbone_schema(n) for n in backbones.names()]]},
            "sources": dataset_list,
            "targets": {**dataset_list, "minItems": 1},
            "strategies": {"type": "array", "minItems": 1,
                           "items": {"anyOf": [_strategy_schema(n) for n in strategies.names()]}},
            "labels_per_class": {"type": "array", "minItems": 1, "items": budget, "uniqueItems": True},
            "seeds": {"anyOf": [{"type": "integer", "minimum": 1, "maximum": MAX_SEEDS},
                                {"type": "array", "items": seed, "minItems": 1, "maxItems": MAX_SEEDS,
                                 "uniqueItems": True}]},
            "pretrain": _object(SCHEDULE_PARAMS, "source pretraining schedule", PRETRAIN_DEFAULTS),
            "train": _object(SCHEDULE_PARAMS, "target training schedule"),
            "validation": _object(VALIDATION_PARAMS, "how each labelled budget splits into train and validation"),
            "sweep": _object(SWEEP_PARAMS, "random search over each strategy's search space, and the selection rule"),
        },
    }
