"""Suite YAML → a validated, fully resolved :class:`Suite`.

A suite names everything that changes a result (big_vision's "an experiment is a file you can
read top to bottom"): the input format, the backbone, sources, targets, strategies with their
parameters, target label budgets, seeds and the pretraining / training schedules. Defaults come
from the strategies' own ``defaults`` and the engine's schedules, and ``tbench show SUITE``
prints the resolved suite, so nothing that changes a number is hidden.

Every error a user can make raises :class:`~benchmark.errors.UserError` naming the file and the
field (``suites/x.yaml: targets[1]: unknown dataset 'mnsit' (did you mean 'mnist'?)``), before
anything is written anywhere.

Schema (``tbench show`` prints the same keys)::

    name: quick                       # store file is results/<name>.sqlite
    description: free text
    input: {height: 28, width: 28, channels: 1}
    backbone: lenet                   # or {name: lenet, params: {...}}
    sources: [font_digits, fashion_mnist@label_permutation=1]
    targets: [uci_digits]
    strategies: [scratch, {name: finetune_partial, params: {k: 1}}]
    labels_per_class: [1, 10, all]    # 0 = no target labels (unsupervised adaptation)
    seeds: 3                          # or an explicit list [0, 1, 2]
    pretrain: {steps: 500, ...}       # source pretraining schedule (engine defaults filled in)
    train: {steps: 300, ...}          # target training schedule (strategies may override)
"""

from __future__ import annotations

import dataclasses
import difflib
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from benchmark.cellspec import ALL_LABELS, InputSpec
from benchmark.errors import UserError

TOP_LEVEL_FIELDS = (
    "name", "description", "input", "backbone", "sources", "targets", "strategies",
    "labels_per_class", "seeds", "pretrain", "train",
)
REQUIRED_FIELDS = ("name", "targets", "strategies", "labels_per_class", "seeds")


@dataclasses.dataclass(frozen=True)
class StrategyEntry:
    """One strategy of a suite with its fully resolved parameters (defaults filled in)."""

    name: str
    params: dict[str, Any]


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
        }


def did_you_mean(word: str, choices: Sequence[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest choices, or a list of the valid ones."""
    close = difflib.get_close_matches(word, list(choices), n=3, cutoff=0.6)
    if close:
        return " (did you mean " + " or ".join(repr(c) for c in close) + "?)"
    shown = ", ".join(sorted(choices)[:12])
    return f" (known: {shown}{', ...' if len(choices) > 12 else ''})"


def load_suite(path: str | Path) -> Suite:
    """Read, validate and resolve a suite file. Raises ``UserError`` naming file and field."""
    path = Path(path)
    shown = str(path)
    if not path.is_file():
        raise UserError("no such suite file (expected a YAML file such as suites/quick.yaml)", file=shown)
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise UserError(f"{where}malformed YAML: {problem}; fix the syntax and rerun", file=shown) from None
    except UnicodeDecodeError:
        raise UserError("not a text file; a suite is a UTF-8 YAML file", file=shown) from None
    return resolve_suite(raw, file=shown, lines=_field_lines(path.read_text()))


def _field_lines(text: str) -> dict[str, int]:
    """Line number of every field path (``targets[1]``, ``train.steps``) in a YAML text."""
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return {}
    lines: dict[str, int] = {}

    def walk(node: yaml.Node, path: str) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                sub = f"{path}.{key.value}" if path else str(key.value)
                lines[sub] = key.start_mark.line + 1
                walk(value, sub)
        elif isinstance(node, yaml.SequenceNode):
            for i, value in enumerate(node.value):
                lines[f"{path}[{i}]"] = value.start_mark.line + 1
                walk(value, f"{path}[{i}]")

    if root is not None:
        walk(root, "")
    return lines


def resolve_suite(raw: Any, *, file: str = "<suite>", lines: dict[str, int] | None = None) -> Suite:
    """Validate a parsed suite mapping and fill in every default.

    lines: field path → line in the file, to point errors at a line (``load_suite`` fills it).
    """
    v = _Validator(file, lines or {})
    if not isinstance(raw, dict):
        v.fail(None, f"a suite is a mapping with the fields {', '.join(REQUIRED_FIELDS)}; got {_kind(raw)}")
    for key in raw:
        if key not in TOP_LEVEL_FIELDS:
            v.fail(str(key), "unknown field" + did_you_mean(str(key), TOP_LEVEL_FIELDS))
    for key in REQUIRED_FIELDS:
        if key not in raw or raw[key] is None:
            v.fail(key, "missing; every suite needs " + ", ".join(REQUIRED_FIELDS))

    name = v.string("name", raw["name"])
    if not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        v.fail("name", f"{name!r} may only use letters, digits, '-', '_' and '.' (it names the store file)")
    description = v.string("description", raw.get("description", "")) if raw.get("description") is not None else ""
    input_spec = v.input_spec(raw.get("input", {}))
    backbone, backbone_params = v.backbone(raw.get("backbone", "lenet"))
    targets = v.datasets("targets", raw["targets"], allow_empty=False)
    strategies = v.strategies(raw["strategies"])
    needs_source = any(_strategy(s.name).uses_source for s in strategies)
    sources = v.datasets("sources", raw.get("sources") or [], allow_empty=not needs_source)
    budgets = v.budgets(raw["labels_per_class"], targets, input_spec)
    seeds = v.seeds(raw["seeds"])
    pretrain = v.schedule("pretrain", raw.get("pretrain") or {})
    train = v.schedule("train", raw.get("train") or {})
    return Suite(
        name=name, description=description, path=file, input_spec=input_spec,
        backbone=backbone, backbone_params=backbone_params, sources=sources, targets=targets,
        strategies=strategies, labels_per_class=budgets, seeds=seeds, pretrain=pretrain, train=train,
    )


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", int: "an integer",
            float: "a number"}.get(type(value), type(value).__name__)


def _strategy(name: str) -> Any:
    from benchmark import strategies

    return strategies.get(name)


def _engine_schedule(which: str) -> tuple[dict[str, Any], Any]:
    """The engine's default schedule and its resolver (``pretrain`` or ``train``)."""
    from benchmark.engine import schedule

    if which == "pretrain":
        return dict(schedule.PRETRAIN_DEFAULTS), schedule.resolve_pretrain
    return dict(schedule.TRAIN_DEFAULTS), schedule.resolve_train


class _Validator:
    """Field-by-field checks; each failure is one UserError naming file and field."""

    def __init__(self, file: str, lines: dict[str, int]):
        self.file = file
        self.lines = lines

    def fail(self, field: str | None, message: str) -> None:
        line = self.lines.get(field or "")
        if line is None and field:  # a missing field: point at its parent
            line = self.lines.get(field.rsplit(".", 1)[0]) if "." in field else None
        shown = f"{field} (line {line})" if field and line else field
        raise UserError(message, file=self.file, field=shown)

    def reraise(self, err: UserError, field: str) -> None:
        """A UserError from a registry (its message names the field): add file and line."""
        line = self.lines.get(field)
        raise UserError(str(err) + (f" (line {line})" if line else ""), file=self.file) from None

    def string(self, field: str, value: Any) -> str:
        if not isinstance(value, str) or not value.strip():
            self.fail(field, f"expected a non-empty string, got {_kind(value)}")
        return value.strip()

    def integer(self, field: str, value: Any, *, minimum: int | None = None) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(field, f"expected an integer, got {_kind(value)} {value!r}")
        if minimum is not None and value < minimum:
            self.fail(field, f"must be at least {minimum}, got {value}")
        return value

    def input_spec(self, value: Any) -> InputSpec:
        if not isinstance(value, dict):
            self.fail("input", f"expected a mapping {{height, width, channels}}, got {_kind(value)}")
        fields = ("height", "width", "channels")
        for key in value:
            if key not in fields:
                self.fail(f"input.{key}", "unknown field" + did_you_mean(str(key), fields))
        spec = InputSpec(**{k: self.integer(f"input.{k}", value[k], minimum=1) for k in value})
        if spec.channels not in (1, 3):
            self.fail("input.channels", f"must be 1 (grey) or 3 (RGB), got {spec.channels}")
        if min(spec.height, spec.width) < 8:
            self.fail("input", f"images of {spec.height}x{spec.width} are too small; use at least 8x8")
        return spec

    def backbone(self, value: Any) -> tuple[str, dict[str, Any]]:
        from benchmark import models

        params: dict[str, Any] = {}
        if isinstance(value, dict):
            for key in value:
                if key not in ("name", "params"):
                    self.fail(f"backbone.{key}", "unknown field" + did_you_mean(str(key), ("name", "params")))
            params = value.get("params") or {}
            if not isinstance(params, dict):
                self.fail("backbone.params", f"expected a mapping, got {_kind(params)}")
            value = value.get("name")
        name = self.string("backbone", value)
        known = list(models.names())
        if name not in known:
            self.fail("backbone", f"unknown backbone {name!r}" + did_you_mean(name, known))
        allowed = tuple(getattr(models, "PARAMS", {}).get(name, params))
        for key in params:
            if key not in allowed:
                self.fail(f"backbone.params.{key}", f"{name} has no parameter {key!r}"
                          + did_you_mean(str(key), allowed))
            if isinstance(params[key], bool) or not isinstance(params[key], (int, float, str)):
                self.fail(f"backbone.params.{key}", f"expected a number or string, got {_kind(params[key])}")
        return name, dict(params)

    def datasets(self, field: str, value: Any, *, allow_empty: bool) -> tuple[str, ...]:
        from benchmark import data

        if not isinstance(value, list):
            self.fail(field, f"expected a list of dataset names, got {_kind(value)}")
        if not value and not allow_empty:
            why = "a strategy in this suite uses a source" if field == "sources" else "there is nothing to train on"
            self.fail(field, f"the list is empty but {why}; name at least one dataset")
        seen: set[str] = set()
        out = []
        for i, item in enumerate(value):
            where = f"{field}[{i}]"
            name = self.string(where, item)
            if name in seen:
                self.fail(where, f"{name!r} is listed twice; remove the duplicate")
            seen.add(name)
            try:
                found = data.info(name)
            except UserError as err:
                self.fail(where, str(err))
            if not getattr(found, "available", True):
                reason = getattr(found, "unavailable_reason", None) or "it is not prepared here"
                self.fail(where, f"dataset {name!r} is not available: {reason}")
            out.append(name)
        return tuple(out)

    def strategies(self, value: Any) -> tuple[StrategyEntry, ...]:
        from benchmark import strategies

        if not isinstance(value, list) or not value:
            self.fail("strategies", f"expected a non-empty list of strategy names or {{name, params}}, got {_kind(value)}")
        known = list(strategies.names())
        out: list[StrategyEntry] = []
        for i, item in enumerate(value):
            where = f"strategies[{i}]"
            given: dict[str, Any] = {}
            if isinstance(item, dict):
                for key in item:
                    if key not in ("name", "params"):
                        self.fail(f"{where}.{key}", "unknown field" + did_you_mean(str(key), ("name", "params")))
                given = item.get("params") or {}
                if not isinstance(given, dict):
                    self.fail(f"{where}.params", f"expected a mapping of parameters, got {_kind(given)}")
                item = item.get("name")
            name = self.string(f"{where}.name" if given else where, item)
            if name not in known:
                self.fail(where, f"unknown strategy {name!r}" + did_you_mean(name, known))
            strat = strategies.get(name)
            defaults = dict(getattr(strat, "defaults", {}) or {})
            required = tuple(getattr(strat, "required", ()) or ())
            allowed = set(defaults) | set(required)
            for key in given:
                if key not in allowed:
                    self.fail(f"{where}.params.{key}", f"{name} has no parameter {key!r}"
                              + did_you_mean(str(key), sorted(allowed)))
                if key in defaults and defaults[key] is not None:
                    given[key] = self.like(f"{where}.params.{key}", given[key], defaults[key])
            for key in required:
                if key not in given:
                    self.fail(f"{where}.params", f"{name} needs the parameter {key!r}; add "
                              f"{{name: {name}, params: {{{key}: ...}}}}")
            try:
                resolved = strat.resolve(given, field=f"{where}.params")
            except UserError as err:
                self.reraise(err, f"{where}.params")
            entry = StrategyEntry(name, resolved)
            if entry in out:
                self.fail(where, f"{name} with these parameters is listed twice; remove the duplicate")
            out.append(entry)
        return tuple(out)

    def like(self, field: str, value: Any, default: Any) -> Any:
        """Check ``value`` has the type of its default (an int is accepted for a float)."""
        if isinstance(default, bool):
            ok = isinstance(value, bool)
        elif isinstance(default, int):
            ok = isinstance(value, int) and not isinstance(value, bool)
        elif isinstance(default, float):
            ok = isinstance(value, (int, float)) and not isinstance(value, bool)
            value = float(value) if ok else value
        elif isinstance(default, str):
            ok = isinstance(value, str)
        elif isinstance(default, (list, tuple)):
            ok = isinstance(value, list)
        elif isinstance(default, dict):
            ok = isinstance(value, dict)
        else:
            ok = True
        if not ok:
            self.fail(field, f"expected {_kind(default)} like the default {default!r}, got {_kind(value)} {value!r}")
        return value

    def budgets(self, value: Any, targets: tuple[str, ...], spec: InputSpec) -> tuple[int, ...]:
        if not isinstance(value, list) or not value:
            self.fail("labels_per_class", f"expected a non-empty list such as [1, 10, 100, all], got {_kind(value)}")
        out: list[int] = []
        for i, item in enumerate(value):
            where = f"labels_per_class[{i}]"
            if item == "all":
                budget = ALL_LABELS
            elif isinstance(item, str):
                self.fail(where, f"expected an integer or 'all', got {item!r}")
            else:
                budget = self.integer(where, item, minimum=0)
            if budget in out:
                self.fail(where, f"budget {item!r} is listed twice; remove the duplicate")
            out.append(budget)
        largest = max(out)
        if largest > 0:
            for t, target in enumerate(targets):
                self.check_budget(f"labels_per_class[{out.index(largest)}]", largest, target, t, spec)
        return tuple(out)

    def check_budget(self, field: str, budget: int, target: str, index: int, spec: InputSpec) -> None:
        """Refuse a budget larger than the target's smallest train class.

        Exact class counts need the labels; they are read only when the budget comes within
        half of the mean class size (``info`` split sizes), where an imbalanced class could
        fall short, so ordinary suites validate without preparing any data.
        """
        from benchmark import data

        found = data.info(target)
        split = dict(getattr(found, "splits", {}) or {}).get("train")
        if split and budget <= split / max(1, found.num_classes) / 2:
            return
        import numpy as np

        labels = np.asarray(data.load(target, split="train", spec=spec).labels)
        counts = np.bincount(labels, minlength=found.num_classes)
        smallest = int(counts.min())
        if budget > smallest:
            cls = int(counts.argmin())
            self.fail(field, f"{budget} labels per class is impossible for targets[{index}] {target!r}: "
                      f"its train split has only {smallest} images of class {cls} "
                      f"({found.class_names[cls]!r}); use at most {smallest} or 'all'")

    def seeds(self, value: Any) -> tuple[int, ...]:
        if isinstance(value, int) and not isinstance(value, bool):
            count = self.integer("seeds", value, minimum=1)
            return tuple(range(count))
        if not isinstance(value, list) or not value:
            self.fail("seeds", f"expected a count (e.g. 5) or a non-empty list of integers, got {_kind(value)}")
        out: list[int] = []
        for i, item in enumerate(value):
            seed = self.integer(f"seeds[{i}]", item, minimum=0)
            if seed in out:
                self.fail(f"seeds[{i}]", f"seed {seed} is listed twice; remove the duplicate")
            out.append(seed)
        return tuple(out)

    def schedule(self, field: str, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict):
            self.fail(field, f"expected a mapping such as {{steps: 500, batch_size: 64}}, got {_kind(value)}")
        defaults, resolve = _engine_schedule(field)
        for key, item in value.items():
            if key not in defaults:
                self.fail(f"{field}.{key}", "unknown schedule field" + did_you_mean(str(key), sorted(defaults)))
            self.like(f"{field}.{key}", item, defaults[key])
        try:
            return resolve(value)
        except UserError as err:
            self.reraise(err, field)
