"""Reading a suite file: bounded YAML parsing and the line of every field.

``read_suite_file(path) -> (parsed mapping, {field path: line})``. Field paths are written as
errors name them (``targets[1]``, ``train.steps``), so a validation error can say the line.
Limits keep a hostile or broken file from hanging ``tbench show``: the file size, the number
of aliases, the nesting depth and the size of the data with every alias written out
(``MAX_NODES``: ten anchors of ten aliases each are only 100 aliases but 10^10 values) are
bounded, each refusal a ``UserError`` naming the file (and the line where there is one). The
file is read without blocking and at most ``MAX_BYTES`` + 1 of it (a FIFO or ``/proc/kmsg``
named as a suite answers at once).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import yaml

from benchmark.errors import UserError

MAX_BYTES = 1_000_000
MAX_ALIASES = 100
MAX_DEPTH = 50
MAX_NODES = 100_000


def read_suite_file(path: str | Path) -> tuple[Any, dict[str, int]]:
    """Parse a suite file within the limits; returns the data and the field-path → line map."""
    path = Path(path)
    shown = str(path)
    try:
        is_file = path.is_file()
    except OSError:
        is_file = False
    if not is_file and os.path.exists(path):
        raise UserError("not a regular file (a directory, FIFO or device); a suite is a YAML file", file=shown)
    if not is_file:
        raise UserError("no such suite file (expected a YAML file such as suites/quick.yaml)", file=shown)
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise UserError(f"the file is {size:,} bytes; a suite may be at most {MAX_BYTES:,}", file=shown)
        data = _read_bounded(path)
        if len(data) > MAX_BYTES:
            raise UserError(f"the file is over {MAX_BYTES:,} bytes; a suite may be at most {MAX_BYTES:,}",
                            file=shown)
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UserError("not a text file; a suite is a UTF-8 YAML file", file=shown) from None
    except OSError as err:
        raise UserError(f"cannot read the suite file: {err.strerror or err}", file=shown) from None
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
        _check_shape(root, shown)
        raw = yaml.safe_load(text)
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise UserError(f"{where}malformed YAML: {problem}; fix the syntax and rerun", file=shown) from None
    except RecursionError:
        raise UserError(f"the YAML nests deeper than {MAX_DEPTH} levels; a suite is a shallow mapping",
                        file=shown) from None
    return raw, _field_lines(root)


def _read_bounded(path: Path) -> bytes:
    """At most ``MAX_BYTES`` + 1 bytes, opened without blocking."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        chunks, total = [], 0
        while total <= MAX_BYTES:
            chunk = os.read(fd, MAX_BYTES + 1 - total)
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def _expanded_size(root: yaml.Node, file: str) -> None:
    """Refuse a node graph that holds more than ``MAX_NODES`` values once aliases are written out
    (or an alias inside its own anchor, which never ends)."""
    sizes: dict[int, int] = {}
    open_: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:  # post-order, each node once
        node, children_done = stack.pop()
        if id(node) in sizes:
            continue
        if children_done:
            open_.discard(id(node))
            sizes[id(node)] = 1 + sum(sizes[id(c)] for c in _children(node))
            if sizes[id(node)] > MAX_NODES:  # post-order: the innermost node that is too big
                raise UserError(f"line {node.start_mark.line + 1}: the YAML expands to more than {MAX_NODES:,} "
                                "values through its aliases (*name); write the values out", file=file)
            continue
        if id(node) in open_:
            raise UserError(f"line {node.start_mark.line + 1}: a YAML alias (*name) inside its own anchor "
                            "(&name) never ends; write the values out", file=file)
        open_.add(id(node))
        stack.append((node, True))
        stack.extend((c, False) for c in _children(node) if id(c) not in sizes)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [v for pair in node.value for v in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _check_shape(root: yaml.Node | None, file: str) -> None:
    """Refuse alias bombs and deep nesting on the node graph, before building Python objects."""
    aliases = 0
    seen: set[int] = set()
    stack = [(root, 1)] if root is not None else []
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise UserError(f"line {node.start_mark.line + 1}: the YAML nests deeper than {MAX_DEPTH} "
                            "levels; a suite is a shallow mapping", file=file)
        if id(node) in seen:  # a node reached twice is an alias (*name) of an anchor (&name)
            aliases += 1
            if aliases > MAX_ALIASES:
                raise UserError(f"line {node.start_mark.line + 1}: more than {MAX_ALIASES} YAML aliases; "
                                "write the values out", file=file)
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            stack.extend((v, depth + 1) for pair in node.value for v in pair)
        elif isinstance(node, yaml.SequenceNode):
            stack.extend((v, depth + 1) for v in node.value)
    if root is not None:
        _expanded_size(root, file)


def _field_lines(root: yaml.Node | None) -> dict[str, int]:
    """Line number of every field path (``targets[1]``, ``train.steps``) in the composed YAML."""
    lines: dict[str, int] = {}
    stack: list[tuple[yaml.Node, str]] = [(root, "")] if root is not None else []
    seen: set[int] = set()
    while stack:
        node, path = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                sub = f"{path}.{key.value}" if path else str(key.value)
                lines.setdefault(sub, key.start_mark.line + 1)
                stack.append((value, sub))
        elif isinstance(node, yaml.SequenceNode):
            for i, value in enumerate(node.value):
                lines.setdefault(f"{path}[{i}]", value.start_mark.line + 1)
                stack.append((value, f"{path}[{i}]"))
    return lines
