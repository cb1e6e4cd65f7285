"""Dataset names with a transform spec: ``BASE[@OP[=VALUE][,OP[=VALUE]]...]``.

``uci_digits@rotate=45,gaussian_noise=0.2`` is the base dataset ``uci_digits`` with two input
ops applied in order. The base may be the user's own data, ``folder:PATH`` or ``npz:PATH``: its
path ends at the first ``@`` (a path with ``@`` in it is refused; ``,`` is fine). Input ops change images on every split; label ops perturb the labels of
the train split only (they make a *source* worse on purpose, for negative-transfer studies).
This module only parses and validates; ``benchmark.data.transforms`` applies.
"""

from __future__ import annotations

import dataclasses
import difflib

from benchmark.errors import UserError


@dataclasses.dataclass(frozen=True)
class OpSpec:
    """One op of a transform spec: how it parses and what it means."""

    kind: str  # "input" or "label"
    value: str  # "none" (flag), "float", "int"
    low: float | None = None
    high: float | None = None
    default: float | None = None  # value used when given without ``=VALUE``
    help: str = ""


OPS: dict[str, OpSpec] = {
    "rotate": OpSpec("input", "float", -360, 360, None, "rotate by DEG degrees (bilinear, zero fill)"),
    "invert": OpSpec("input", "none", help="255 - pixel"),
    "gaussian_noise": OpSpec("input", "float", 0, 1, 0.1, "add N(0, SIGMA²) on the [0, 1] pixel scale"),
    "shot_noise": OpSpec("input", "float", 1, 1000, 60, "Poisson noise, Poisson(x·C)/C (MNIST-C severity C)"),
    "blur": OpSpec("input", "float", 0, 10, 1.0, "Gaussian blur with SIGMA pixels (native resolution)"),
    "contrast": OpSpec("input", "float", 0, 5, 0.4, "(x - mean)·C + mean per image (CIFAR-10-C contrast)"),
    "classes": OpSpec("subset", "range", 0, 999, None, "keep classes LO..HI on every split, relabelled 0..HI-LO (e.g. classes=0-4)"),
    "label_noise": OpSpec("label", "float", 0, 1, None, "flip exactly round(RATE·N) train labels to another class"),
    "label_permutation": OpSpec("label", "int", 0, 2**31 - 1, 0, "relabel classes by a derangement drawn from SEED"),
    "label_shuffle": OpSpec("label", "int", 0, 2**31 - 1, 0, "shuffle train labels across images (random labels)"),
}


@dataclasses.dataclass(frozen=True)
class ParsedName:
    """A dataset name split into its base and its ops, ``ops`` in the order given."""

    name: str
    base: str
    ops: tuple[tuple[str, float | None], ...] = ()

    @property
    def input_ops(self) -> tuple[tuple[str, float | None], ...]:
        return tuple(op for op in self.ops if OPS[op[0]].kind == "input")

    @property
    def class_range(self) -> tuple[int, int] | None:
        """``(lo, hi)`` of a ``classes=LO-HI`` op (applied first, on every split), else None."""
        for op, value in self.ops:
            if OPS[op].kind == "subset":
                return value  # type: ignore[return-value]
        return None

    @property
    def label_ops(self) -> tuple[tuple[str, float | None], ...]:
        return tuple(op for op in self.ops if OPS[op[0]].kind == "label")


def close_matches(word: str, choices: list[str] | tuple[str, ...]) -> str:
    """`` (did you mean 'a' or 'b'?)`` or an empty string."""
    matches = difflib.get_close_matches(word, list(choices), n=3, cutoff=0.6)
    if not matches:
        return ""
    return " (did you mean " + " or ".join(repr(m) for m in matches) + "?)"


def parse_name(name: str) -> ParsedName:
    """Parse ``BASE[@OP[=VALUE],...]``; raise ``UserError`` naming the bad part.

    The base is not checked here (the registry knows the names); ops and values are.
    """
    if not isinstance(name, str) or not name.strip():
        raise UserError(f"dataset name {name!r} is empty; write e.g. 'uci_digits' or 'font_digits@rotate=30'")
    base, _, rest = name.strip().partition("@")
    if not base:
        raise UserError(f"dataset name {name!r} has no base before '@'; write e.g. 'uci_digits@invert'")
    if base.partition(":")[0] in ("folder", "npz") and ("/" in rest or "\\" in rest):
        raise UserError(
            f"dataset name {name!r}: a '{base.partition(':')[0]}:' path may not contain '@', which starts the "
            "transform ops; rename the folder or link to it from a path without '@'"
        )
    ops: list[tuple[str, float | None]] = []
    if _ or rest:
        if not rest:
            raise UserError(f"dataset name {name!r} ends with '@'; add an op (one of {', '.join(OPS)}) or drop the '@'")
        for part in rest.split(","):
            try:
                ops.append(_parse_op(name, part.strip()))
            except UserError as err:
                if base.partition(":")[0] not in ("folder", "npz"):
                    raise
                raise UserError(f"{err} (a path with '@' in it cannot be named: '@' starts the ops)") from None
    if sum(OPS[op].kind == "subset" for op, _v in ops) > 1:
        raise UserError(f"dataset name {name!r} has more than one 'classes' op; give one range, e.g. '@classes=0-4'")
    label_kinds = [op for op, _v in ops if OPS[op].kind == "label"]
    if len(label_kinds) != len(set(label_kinds)):
        raise UserError(f"dataset name {name!r} repeats a label op; give each of {', '.join(label_kinds)} once")
    return ParsedName(name=name.strip(), base=base, ops=tuple(ops))


def _parse_op(name: str, part: str) -> tuple[str, float | None]:
    op, eq, raw = part.partition("=")
    op = op.strip()
    if op not in OPS:
        raise UserError(
            f"dataset name {name!r}: unknown op {op!r}{close_matches(op, list(OPS))}; "
            f"known ops: {', '.join(OPS)}"
        )
    spec = OPS[op]
    if spec.value == "none":
        if eq:
            raise UserError(f"dataset name {name!r}: op {op!r} takes no value; write '@{op}'")
        return op, None
    if not eq:
        if spec.default is None:
            raise UserError(f"dataset name {name!r}: op {op!r} needs a value, e.g. '@{op}=0.2' ({spec.help})")
        return op, float(spec.default) if spec.value == "float" else int(spec.default)
    if spec.value == "range":
        return op, _parse_range(name, op, raw, spec)
    try:
        value: float = int(raw) if spec.value == "int" else float(raw)
    except ValueError:
        kind = "an integer" if spec.value == "int" else "a number"
        raise UserError(f"dataset name {name!r}: op {op!r} needs {kind}, got {raw!r} ({spec.help})") from None
    if not (spec.low <= value <= spec.high) or value != value:
        raise UserError(
            f"dataset name {name!r}: {op}={raw} is out of range; use a value in [{spec.low:g}, {spec.high:g}] ({spec.help})"
        )
    return op, value


def _parse_range(name: str, op: str, raw: str, spec: OpSpec) -> tuple[int, int]:
    lo_text, dash, hi_text = raw.strip().partition("-")
    try:
        lo, hi = int(lo_text), int(hi_text if dash else lo_text)
    except ValueError:
        raise UserError(f"dataset name {name!r}: op {op!r} needs LO-HI class indices, got {raw!r} ({spec.help})") from None
    if not (spec.low <= lo <= hi <= spec.high):
        raise UserError(f"dataset name {name!r}: {op}={raw} needs 0 <= LO <= HI ({spec.help})")
    return lo, hi
