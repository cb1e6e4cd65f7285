"""What a strategy declares about itself, as plain data (no JAX): the one place its metadata lives.

Every strategy module (built-in under ``benchmark/strategies/`` or a plugin registered under the
entry-point group ``transferbench.strategies``) defines ``DECLARATION = Declaration(...)``:

* ``params``: every parameter with its type, bounds, default and role. ``role="method"``
  parameters make two cells different *methods* in a report (``finetune_partial(k=2)`` vs
  ``(k=1)``); ``role="tuning"`` parameters are hyperparameters of one method.
* ``search_space``: the hyperparameters a sweep may draw (``sweep: {trials: N}`` in a suite),
  each a :class:`SearchDim` over the declared parameters or the train schedule.
* ``needs``: what it reads (source model, labelled source data, the unlabeled target pool, a
  shared label space, a minimum number of target labels per class).
* ``hooks``: ``"module:function"`` of its ``fit(ctx) -> FitResult`` (the engine imports it only
  when it trains, so config, grid, report and CLI never load JAX to read a declaration).
* ``comparison_arm``: the arm whose paired difference isolates the strategy's mechanism
  (``scratch``, the same target and budget without the source, for every built-in).
* ``keeps_source_head``: when source and target share their classes, the trained model keeps
  the source's head, so forgetting is measured through it (otherwise through a linear probe).

Config, grid, report and CLI read only declarations; the engine calls the hooks.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from benchmark.errors import UserError

INT32_MAX = 2**31 - 1


@dataclasses.dataclass(frozen=True)
class Param:
    """One strategy parameter: its type (``int``, ``float``, ``bool``, ``str``), default and bounds.

    minimum / maximum: inclusive bounds (``exclusive_minimum`` makes the lower one strict).
    max_blocks_offset: when not None, the value must be at most the backbone's number of blocks
        plus this offset (``finetune_partial``'s ``k``); checked where the backbone is known.
    role: ``"method"`` (distinguishes methods in a report) or ``"tuning"``.
    omit_in_label: values of a method parameter that the display label leaves out (a sentinel
        such as ``copy_blocks: -1``, "copy every block").
    """

    kind: type
    default: Any
    doc: str
    minimum: float | None = None
    maximum: float | None = None
    exclusive_minimum: bool = False
    choices: tuple[Any, ...] | None = None
    role: str = "tuning"
    max_blocks_offset: int | None = None
    omit_in_label: tuple[Any, ...] = ()

    def check(self, name: str, value: Any, *, field: str) -> Any:
        """``value`` converted to ``kind`` (an int is accepted for a float); raises UserError."""
        kind_name = {int: "an integer", float: "a number", bool: "true or false", str: "a string"}[self.kind]
        ok = isinstance(value, self.kind) and not (self.kind is int and isinstance(value, bool))
        if self.kind is float and isinstance(value, int) and not isinstance(value, bool):
            value, ok = float(value), True
        if not ok:
            raise UserError(f"expected {kind_name} like the default {self.default!r}, got {value!r}", field=field)
        if self.kind is float and not math.isfinite(value):
            raise UserError(f"{name} must be a finite number, got {value!r}", field=field)
        if self.kind is int and not -INT32_MAX <= value <= INT32_MAX:
            raise UserError(f"{name} must fit in 32 bits, got {value!r}", field=field)
        if self.choices is not None and value not in self.choices:
            raise UserError(f"{name} must be one of {list(self.choices)}, got {value!r}", field=field)
        low, high = self.minimum, self.maximum
        if low is not None and (value <= low if self.exclusive_minimum else value < low):
            raise UserError(f"{name} must be {'>' if self.exclusive_minimum else '≥'} {low:g}, got {value!r}",
                            field=field)
        if high is not None and value > high:
            raise UserError(f"{name} must be ≤ {high:g}, got {value!r}", field=field)
        return value

    def json_schema(self) -> dict[str, Any]:
        """This parameter as a JSON Schema fragment (``tbench schema``)."""
        kind = {int: "integer", float: "number", bool: "boolean", str: "string"}[self.kind]
        out: dict[str, Any] = {"type": kind, "default": self.default, "description": self.doc}
        if self.minimum is not None:
            out["exclusiveMinimum" if self.exclusive_minimum else "minimum"] = self.minimum
        if self.maximum is not None:
            out["maximum"] = self.maximum
        if self.choices is not None:
            out["enum"] = list(self.choices)
        return out


@dataclasses.dataclass(frozen=True)
class SearchDim:
    """One hyperparameter of a sweep: ``param`` (a strategy parameter, or ``train.<key>``) drawn
    log-uniformly (``log=True``) or uniformly in [low, high], or from ``choices``."""

    param: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    choices: tuple[Any, ...] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None and v is not False}


@dataclasses.dataclass(frozen=True)
class Needs:
    """What a strategy reads.

    source_model: starts from the pretrained source model.
    source_data: reads labelled source images while training on the target (DANN).
    unlabeled_target: reads the target's unlabeled pool (images only, never labels).
    shared_label_space: predicts with the source's classes, so source and target must share them.
    min_labels_per_class: 0 when it works with no target labels (unsupervised adaptation).
    """

    source_model: bool = False
    source_data: bool = False
    unlabeled_target: bool = False
    shared_label_space: bool = False
    min_labels_per_class: int = 1


@dataclasses.dataclass(frozen=True)
class Declaration:
    """A transfer strategy, declared. See the module docstring for the fields."""

    name: str
    summary: str
    hooks: str
    params: Mapping[str, Param] = dataclasses.field(default_factory=dict)
    needs: Needs = Needs()
    search_space: tuple[SearchDim, ...] = ()
    comparison_arm: str = "scratch"
    batch_norm: str = "n/a"
    records_domain_gap: bool = False
    keeps_source_head: bool = False
    reference_reason: str = ""
    """Why a strategy without a comparison arm is a reference row rather than a verdict."""

    @property
    def defaults(self) -> dict[str, Any]:
        return {k: p.default for k, p in self.params.items()}

    @property
    def method_params(self) -> tuple[str, ...]:
        return tuple(k for k, p in self.params.items() if p.role == "method")

    @property
    def uses_source(self) -> bool:
        return self.needs.source_model

    @property
    def uses_source_data(self) -> bool:
        return self.needs.source_data

    @property
    def uses_unlabeled_target(self) -> bool:
        return self.needs.unlabeled_target

    @property
    def min_labels_per_class(self) -> int:
        return self.needs.min_labels_per_class

    def resolve(self, params: Mapping[str, Any] | None, *, field: str = "strategy_params",
                num_blocks: int | None = None) -> dict[str, Any]:
        """``params`` checked against the declaration, defaults filled in; raises UserError.

        num_blocks: the backbone's block count, to bound ``max_blocks_offset`` parameters.
        """
        from benchmark.errors import did_you_mean

        params = dict(params or {})
        for key in params:
            if key not in self.params:
                raise UserError(f"{self.name} has no parameter {key!r}" + did_you_mean(str(key), list(self.params)),
                                field=f"{field}.{key}")
        out = {}
        for key, spec in self.params.items():
            value = spec.check(key, params[key], field=f"{field}.{key}") if key in params else spec.default
            if spec.max_blocks_offset is not None and num_blocks is not None:
                most = num_blocks + spec.max_blocks_offset
                if value > most:
                    raise UserError(f"{key}={value} but the backbone has only {num_blocks} blocks; "
                                    f"use at most {most}", field=f"{field}.{key}")
            out[key] = value
        return out

    def label(self, params: Mapping[str, Any]) -> str:
        """Display name with the method-defining parameters, e.g. ``finetune_partial(k=2)``."""
        shown = {k: params[k] for k in sorted(self.method_params)
                 if k in params and params[k] not in self.params[k].omit_in_label}
        if not shown:
            return self.name
        return f"{self.name}(" + ",".join(f"{k}={v}" for k, v in shown.items()) + ")"

    def to_dict(self) -> dict[str, Any]:
        """Plain-data view for ``tbench strategies`` / the JSON Schema / the report."""
        return {
            "name": self.name, "summary": self.summary, "needs": dataclasses.asdict(self.needs),
            "params": {k: {**p.json_schema(), "role": p.role} for k, p in self.params.items()},
            "search_space": [d.to_dict() for d in self.search_space],
            "comparison_arm": self.comparison_arm, "batch_norm": self.batch_norm,
        }
