"""Suite checks: a parsed suite mapping → a validated, fully resolved :class:`Suite`.

The one place a suite is validated. Types and bounds come from typed declarations
(``benchmark.config.schedule.SCHEDULE_PARAMS``, the strategies' ``DECLARATION.params``,
``benchmark.backbones``), the same tables ``tbench schema`` turns into a JSON Schema; the checks
that need the world (a dataset exists, a budget fits its smallest class, a pair leaks no test
image) run here too, before anything is prepared or written. Every failure raises
:class:`~benchmark.errors.UserError` naming the file, the field and its line
(``suites/x.yaml: targets[1] (line 9): unknown dataset 'mnsit' (did you mean 'mnist'?)``).
"""

from __future__ import annotations

from typing import Any

from benchmark import backbones
from benchmark.cellspec import ALL_LABELS, InputSpec
from benchmark.config.suite import SELECTION_RULES, StrategyEntry, Suite, Sweep, Validation
from benchmark.errors import UserError, did_you_mean
from benchmark.pretrained import sources as pretrained_sources
from benchmark.strategies.declaration import INT32_MAX, Param

TOP_LEVEL_FIELDS = (
    "name", "description", "input", "backbone", "sources", "targets", "strategies",
    "labels_per_class", "seeds", "pretrain", "train", "validation", "sweep",
)
REQUIRED_FIELDS = ("name", "targets", "strategies", "labels_per_class", "seeds")
MAX_SEEDS = 1000
MAX_NAME = 500

VALIDATION_PARAMS = {
    "fraction": Param(float, 0.2, "share of each class's labelled budget held out for validation",
                      minimum=0.0, maximum=0.5),
    "min_per_class": Param(int, 1, "validation images per class at least", minimum=1, maximum=1000),
}
SWEEP_PARAMS = {
    "trials": Param(int, 1, "random-search draws per strategy (1: the declared defaults only)",
                    minimum=1, maximum=100),
    "seed": Param(int, 0, "seed of the random search", minimum=0, maximum=INT32_MAX),
    "rule": Param(str, "target_val", "model-selection rule", choices=SELECTION_RULES),
}


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
    if len(name) > 100:
        v.fail("name", f"the name is {len(name)} characters; use at most 100 (it names the store file)")
    if not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        v.fail("name", f"{name!r} may only use letters, digits, '-', '_' and '.' (it names the store file)")
    description = v.string("description", raw.get("description", "")) if raw.get("description") is not None else ""
    backbone, backbone_params = v.backbone(raw.get("backbone", "lenet"))
    input_spec = v.input_spec(raw.get("input", {}), backbones.get(backbone))
    targets = v.datasets("targets", raw["targets"], allow_empty=False, at_least_classes=2)
    strategies = v.strategies(raw["strategies"], backbones.get(backbone).num_blocks)
    needs_source = any(_strategy(s.name).uses_source for s in strategies)
    sources = v.datasets("sources", raw.get("sources") or [], allow_empty=not needs_source)
    v.pretrained_sources(sources, backbone, backbone_params, input_spec, strategies)
    validation = Validation(**v.mapping("validation", raw.get("validation"), VALIDATION_PARAMS))
    sweep = Sweep(**v.mapping("sweep", raw.get("sweep"), SWEEP_PARAMS))
    budgets = v.budgets(raw["labels_per_class"], targets, input_spec, validation)
    if sweep.trials > 1 and sweep.rule == "target_val" and validation.fraction == 0:
        v.fail("sweep.rule", "target_val selects on the budget's validation split, but validation.fraction is 0; "
               "hold some labels out (e.g. validation: {fraction: 0.2}) or choose source_val / oracle")
    seeds = v.seeds(raw["seeds"])
    pretrain = v.schedule("pretrain", raw.get("pretrain") or {})
    train = v.schedule("train", raw.get("train") or {})
    return Suite(
        name=name, description=description, path=file, input_spec=input_spec,
        backbone=backbone, backbone_params=backbone_params, sources=sources, targets=targets,
        strategies=strategies, labels_per_class=budgets, seeds=seeds, pretrain=pretrain, train=train,
        validation=validation, sweep=sweep,
    )


def _kind(value: Any) -> str:
    if value is None:
        return "nothing"
    return {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean", int: "an integer",
            float: "a number"}.get(type(value), type(value).__name__)


def _strategy(name: str) -> Any:
    from benchmark import strategies

    return strategies.get(name)


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
        """A UserError from a declaration's check: the same message, with file and line."""
        self.fail(err.field or field, err.message)

    def mapping(self, field: str, value: Any, params: dict[str, Param]) -> dict[str, Any]:
        """A small mapping of typed fields (``validation``, ``sweep``), defaults filled in."""
        if value is None:
            value = {}
        if not isinstance(value, dict):
            self.fail(field, f"expected a mapping of {', '.join(params)}, got {_kind(value)}")
        out = {k: p.default for k, p in params.items()}
        for key, item in value.items():
            if key not in params:
                self.fail(f"{field}.{key}", "unknown field" + did_you_mean(str(key), list(params)))
            try:
                out[key] = params[key].check(key, item, field=f"{field}.{key}")
            except UserError as err:
                self.reraise(err, f"{field}.{key}")
        return out

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

    def input_spec(self, value: Any, backbone: backbones.Backbone) -> InputSpec:
        if not isinstance(value, dict):
            self.fail("input", f"expected a mapping {{height, width, channels}}, got {_kind(value)}")
        fields = ("height", "width", "channels")
        for key in value:
            if key not in fields:
                self.fail(f"input.{key}", "unknown field" + did_you_mean(str(key), fields))
        spec = InputSpec(**{k: self.integer(f"input.{k}", value[k], minimum=1) for k in value})
        if spec.channels not in (1, 3):
            self.fail("input.channels", f"must be 1 (grey) or 3 (RGB), got {spec.channels}")
        low, high = backbone.min_size, backbone.max_size
        if min(spec.height, spec.width) < low:
            self.fail("input", f"images of {spec.height}x{spec.width} are too small for {backbone.name}; "
                      f"use at least {low}x{low}")
        if max(spec.height, spec.width) > high:
            self.fail("input", f"images of {spec.height}x{spec.width} are too large for {backbone.name}; "
                      f"use at most {high}x{high}")
        return spec

    def backbone(self, value: Any) -> tuple[str, dict[str, Any]]:
        params: Any = {}
        if isinstance(value, dict):
            for key in value:
                if key not in ("name", "params"):
                    self.fail(f"backbone.{key}", "unknown field" + did_you_mean(str(key), ("name", "params")))
            params = value.get("params") or {}
            if not isinstance(params, dict):
                self.fail("backbone.params", f"expected a mapping, got {_kind(params)}")
            value = value.get("name")
        name = self.string("backbone", value)
        try:
            return name, backbones.get(name).resolve(params)
        except UserError as err:
            self.reraise(err, "backbone")

    def datasets(self, field: str, value: Any, *, allow_empty: bool, at_least_classes: int = 1) -> tuple[str, ...]:
        from benchmark import data
        from benchmark.data.spec import parse_name

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
            if len(name) > MAX_NAME:
                self.fail(where, f"a dataset name of {len(name):,} characters; names are at most {MAX_NAME}")
            if name in seen:
                self.fail(where, f"{name!r} is listed twice; remove the duplicate")
            seen.add(name)
            if pretrained_sources.is_pretrained(name):  # a model, not a dataset: checked by pretrained_sources
                if field != "sources":
                    self.fail(where, f"{name!r} is a pretrained model with no images; it can only be listed under sources")
                out.append(name)
                continue
            try:
                found = data.info(name)
            except UserError as err:
                self.fail(where, str(err))
            if not getattr(found, "available", True):
                reason = getattr(found, "unavailable_reason", None) or "it is not prepared here"
                self.fail(where, f"dataset {name!r} is not available: {reason}")
            classes = found.num_classes
            subset = parse_name(name).class_range
            if subset is not None:
                lo, hi = subset
                if hi >= found.num_classes:
                    self.fail(where, f"{name!r} asks for classes {lo}-{hi}, but {found.name!r} has "
                              f"{found.num_classes} (0-{found.num_classes - 1})")
                classes = hi - lo + 1
            if classes < at_least_classes:
                self.fail(where, f"{name!r} has {classes} class(es); a target needs at least "
                          f"{at_least_classes} to measure accuracy")
            out.append(name)
        return tuple(out)

    def pretrained_sources(self, sources: tuple[str, ...], backbone: str, params: dict[str, Any],
                           spec: InputSpec, strategies: tuple[StrategyEntry, ...]) -> None:
        """A pretrained source (``imagenet``) needs its backbone and weights and its input channels,
        and no strategy that reads source images."""
        for i, name in enumerate(sources):
            if not pretrained_sources.is_pretrained(name):
                continue
            entry = pretrained_sources.get(name)
            if backbone != entry.backbone or params.get(entry.param) != entry.value:
                self.fail(f"sources[{i}]", f"the source {name!r} is {entry.backbone} with {entry.param}: "
                          f"{entry.value}; set backbone: {{name: {entry.backbone}, params: {{{entry.param}: {entry.value}}}}}")
            if spec.channels != entry.channels:
                self.fail("input.channels", f"the source {name!r} needs {entry.channels} input channels "
                          f"(grey images are repeated to RGB), got {spec.channels}")
            for j, strategy in enumerate(strategies):
                if _strategy(strategy.name).needs.source_data:
                    self.fail(f"strategies[{j}]", f"{strategy.name} trains on source images and the source "
                              f"{name!r} has none offline (it is a pretrained model); remove {strategy.name} or {name!r}")

    def strategies(self, value: Any, num_blocks: int) -> tuple[StrategyEntry, ...]:
        from benchmark import strategies

        if not isinstance(value, list) or not value:
            self.fail("strategies", f"expected a non-empty list of strategy names or {{name, params}}, got {_kind(value)}")
        known = strategies.names()
        out: list[StrategyEntry] = []
        for i, item in enumerate(value):
            where = f"strategies[{i}]"
            given: Any = {}
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
            try:
                resolved = strategies.get(name).resolve(given, field=f"{where}.params", num_blocks=num_blocks)
            except UserError as err:
                self.reraise(err, f"{where}.params")
            entry = StrategyEntry(name, resolved)
            if entry in out:
                self.fail(where, f"{name} with these parameters is listed twice; remove the duplicate")
            out.append(entry)
        return tuple(out)

    def budgets(self, value: Any, targets: tuple[str, ...], spec: InputSpec,
                validation: Validation) -> tuple[int, ...]:
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
            least = validation.min_per_class + 1
            if validation.fraction > 0 and 0 < budget < least:
                self.fail(where, f"{budget} label(s) per class cannot be split into train and validation "
                          f"(validation keeps at least {validation.min_per_class} per class and training needs "
                          f"1); use at least {least}, or set validation: {{fraction: 0}}")
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
            if count > MAX_SEEDS:
                self.fail("seeds", f"{count:,} seeds; a suite may have at most {MAX_SEEDS}")
            return tuple(range(count))
        if not isinstance(value, list) or not value:
            self.fail("seeds", f"expected a count (e.g. 5) or a non-empty list of integers, got {_kind(value)}")
        if len(value) > MAX_SEEDS:
            self.fail("seeds", f"{len(value):,} seeds; a suite may have at most {MAX_SEEDS}")
        out: list[int] = []
        for i, item in enumerate(value):
            seed = self.integer(f"seeds[{i}]", item, minimum=0)
            if seed > INT32_MAX:
                self.fail(f"seeds[{i}]", f"seed {seed} does not fit in 32 bits; use 0..{INT32_MAX}")
            if seed in out:
                self.fail(f"seeds[{i}]", f"seed {seed} is listed twice; remove the duplicate")
            out.append(seed)
        return tuple(out)

    def schedule(self, field: str, value: Any) -> dict[str, Any]:
        from benchmark.config import schedule

        if not isinstance(value, dict):
            self.fail(field, f"expected a mapping such as {{steps: 500, batch_size: 64}}, got {_kind(value)}")
        try:
            return schedule.resolve_pretrain(value) if field == "pretrain" else schedule.resolve_train(value)
        except UserError as err:
            self.reraise(err, field)
