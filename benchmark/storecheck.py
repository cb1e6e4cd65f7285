"""What a path must be before the results store opens it, and what a stored row must hold.

The store is sacred: ``tbench`` opens only a path that does not exist yet (and makes a new
store there without replacing anything) or a regular, non-empty file; every other existing path
(directory, FIFO, device, socket, an empty file a user made, a dangling or looping symbolic link,
an unreadable ``/proc`` file) is refused with a ``UserError`` before a byte is read or written.
A store that will be written is checked for writability by a real write before any training:
root ignores mode bits, so a file or folder without write bits is refused by its mode, and an
immutable file (``chattr +i``) or a read-only filesystem by opening it for writing.

Rows read back are checked against the types the analysis relies on; a damaged row (invalid
JSON, a text accuracy, ...) is named with its cell and skipped, never a traceback.
"""

from __future__ import annotations

import json
import math
import os
import sqlite3
import stat
import sys
import urllib.parse
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from benchmark.errors import UserError
from benchmark.outputs import safe_name

HINT = "pass another --store PATH"
Warn = Callable[[str], None]

_KINDS = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
          (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
          (stat.S_ISSOCK, "a socket"))


def existing_target(path: Path) -> os.stat_result | None:
    """The ``stat`` of an existing regular, non-empty ``path``; ``None`` when nothing is there.

    Raises ``UserError`` (touching nothing) for anything else that exists at ``path``.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if _lexists(path):
            raise UserError(f"{path} is a symbolic link to a missing file ({os.readlink(path)}); "
                            f"remove the link or {HINT}") from None
        return None
    except (OSError, ValueError) as err:  # ELOOP, ENOTDIR, ENAMETOOLONG, EACCES, NUL byte
        reason = getattr(err, "strerror", None) or str(err)
        raise UserError(f"{path} cannot be used as a results store ({reason}); {HINT}") from None
    for test, kind in _KINDS:
        if test(st.st_mode):
            extra = " such as DIR/NAME.sqlite" if kind == "a directory" else ""
            raise UserError(f"{path} is {kind}, not a results store; nothing was written; "
                            f"{HINT}{extra}")
    if not stat.S_ISREG(st.st_mode):
        raise UserError(f"{path} is not a regular file; {HINT}")
    if st.st_size == 0:
        raise UserError(f"{path} is an empty file that transferbench did not make (a new store is "
                        f"never empty); it was left as it is; remove it or {HINT}")
    return st


def _lexists(path: Path) -> bool:
    try:
        os.lstat(path)
    except (OSError, ValueError):
        return False
    return True


def read_header(path: Path, size: int = 16) -> bytes:
    """The first bytes of an existing regular file (non-blocking open; ``UserError`` if unreadable)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as err:
        raise UserError(f"{path} cannot be read ({err.strerror}); {HINT}") from None
    try:
        return os.read(fd, size)
    except OSError as err:
        raise UserError(f"{path} cannot be read ({err.strerror}); {HINT}") from None
    finally:
        os.close(fd)


def check_writable(path: Path) -> None:
    """Refuse a store file that cannot (or must not) be written, before any work.

    Mode bits first (root would write through them; a user who removed every write bit meant
    the file to stay as it is), then a real open for writing (immutable flag, read-only mount).
    The caller then commits a real transaction.
    """
    st = os.stat(path)
    if not st.st_mode & 0o222:
        raise UserError(f"{path} is read-only (mode {stat.filemode(st.st_mode)}); nothing was run; "
                        f"make it writable (chmod u+w) or {HINT}")
    folder = path.resolve().parent
    if not os.stat(folder).st_mode & 0o222:
        raise UserError(f"the folder of {path} is read-only (mode {stat.filemode(os.stat(folder).st_mode)}); "
                        f"the store needs its -wal file beside it; nothing was run; {HINT}")
    try:
        fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
    except OSError as err:
        raise UserError(f"{path} cannot be written ({err.strerror}; an immutable file or a read-only "
                        f"filesystem?); nothing was run; {HINT}") from None
    os.close(fd)


def ro_uri(path: Path, *, immutable: bool) -> str:
    """SQLite URI that opens ``path`` read-only (quoted: a ``?`` or ``#`` in a name is a name)."""
    return f"file:{urllib.parse.quote(str(path.resolve()))}?mode=ro" + ("&immutable=1" if immutable else "")


def check_schema(path: Path, version: Any, reads: int, columns: dict[str, list[str]],
                 tables: dict[str, tuple[str, ...]]) -> None:
    """Refuse a transferbench store of another schema version or missing a table or column."""
    version = str(version or "")
    if not version.isdigit() or int(version) != reads:
        newer = version.isdigit() and int(version) > reads
        raise UserError(f"{path} is a transferbench store of schema version {version or 'none'!r}, this "
                        f"transferbench reads version {reads}"
                        + ("; upgrade transferbench (a newer transferbench wrote it)" if newer
                           else "; no migration exists for it: run the suite into a new --store PATH"))
    for table, wanted in tables.items():
        missing = [c for c in wanted if c not in columns.get(table, [])]
        if missing:
            what = (f"lacks the table {table}" if not columns.get(table)
                    else f"lacks column(s) {', '.join(missing)} of table {table}")
            raise UserError(f"{path} is a damaged transferbench store: it {what}; nothing was changed; "
                            "run the suite into a new --store PATH")


# What each column of a stored run must decode to (None allowed unless listed in REQUIRED).
_JSON_TYPES = {"per_class_accuracy": list, "curve": list, "versions": dict, "config": dict,
               "plan": dict, "extras": dict}
_TEXT = ("run_id", "cell_id", "suite", "target", "strategy", "strategy_label", "status")
_INTS = ("labels_per_class", "seed")
_REALS = ("accuracy", "wall_s", "compile_s", "pretrain_s")


def decode_run(row: dict[str, Any]) -> str | None:
    """Decode a run row's JSON columns in place; the problem (a phrase) if the row is damaged."""
    for col in _TEXT:
        if not isinstance(row.get(col), str):
            return f"column {col} is {row.get(col)!r}, not text"
    for col in _INTS:
        if not isinstance(row.get(col), int):
            return f"column {col} is {row.get(col)!r}, not an integer"
    for col in _REALS:
        value = row.get(col)
        if value is not None and (not isinstance(value, int | float) or isinstance(value, bool)):
            return f"column {col} is {value!r}, not a number"
    if isinstance(row.get("accuracy"), float) and not (math.isnan(row["accuracy"]) or 0 <= row["accuracy"] <= 1):
        return f"column accuracy is {row['accuracy']!r}, not in [0, 1]"
    for col, kind in _JSON_TYPES.items():
        text = row.get(col)
        if text is None:
            continue
        try:
            value = json.loads(text)
        except (TypeError, ValueError, RecursionError):
            return f"column {col} is not valid JSON"
        if value is not None and not isinstance(value, kind):
            return f"column {col} holds {type(value).__name__}, not {kind.__name__}"
        row[col] = value
    return None


def decode_runs(path: Path, columns: Sequence[str], raw: list[tuple], warn: Warn) -> list[dict[str, Any]]:
    """The intact rows of ``raw`` as dicts with decoded JSON; each damaged one told to ``warn``."""
    rows = []
    for values in raw:
        row = dict(zip(columns, values, strict=True))
        problem = decode_run(row)
        if problem:
            warn(skipped_row_message(path, row, problem))
            continue
        rows.append(row)
    return rows


def decode_measures(path: Path, raw: list[tuple], warn: Warn) -> list[tuple]:
    """Measure rows ``(source, target, measure, value, space, seed, config dict)``, intact ones only."""
    rows = []
    for source, target, measure, value, space, seed, config in raw:
        try:
            config = json.loads(config) if config else None
            ok = (isinstance(value, int | float | None) and isinstance(seed, int)
                  and all(isinstance(v, str) for v in (target, measure, space)))
        except (TypeError, ValueError, RecursionError):
            ok = False
        if not ok:
            warn(f"{path}: measure {measure!r} of {source} -> {target} (seed {seed!r}) is damaged; skipped")
            continue
        rows.append((source, target, measure, value, space, seed, config))
    return rows


def connect_readonly(path: Path) -> sqlite3.Connection:
    """A reading connection; immutable where SQLite cannot share the WAL (read-only folder)."""
    try:
        db = sqlite3.connect(ro_uri(path, immutable=False), uri=True, timeout=60,
                             isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA busy_timeout=60000")
        db.execute("SELECT count(*) FROM meta").fetchone()
        return db
    except sqlite3.OperationalError:
        db = sqlite3.connect(ro_uri(path, immutable=True), uri=True, timeout=60,
                             isolation_level=None, check_same_thread=False)
        db.execute("SELECT count(*) FROM meta").fetchone()
        return db


def warn(line: str) -> None:
    print(f"tbench: warning: {line}", file=sys.stderr)


def skipped_row_message(path: Path, row: dict[str, Any], problem: str) -> str:
    cell = " ".join(str(row.get(k)) for k in ("strategy_label", "source", "target", "labels_per_class"))
    return (f"{path}: run {row.get('run_id')!r} (cell {cell}, seed {row.get('seed')!r}) is damaged: "
            f"{problem}; skipped")


def default_path(suite_name: str) -> Path:
    """``results/<suite>.sqlite`` (relative to the working directory); the name is made a safe
    file name, so no suite name can point the store outside ``results/``."""
    return Path("results") / f"{safe_name(suite_name)}.sqlite"


def suite_store_path(suite_file: str | os.PathLike, override: str | os.PathLike | None = None) -> Path:
    """The store of a suite file: ``override``, else ``results/<name>.sqlite`` with the suite's
    ``name`` field (the file's stem when it has none). Reads only that field (no validation, no
    JAX), so ``tbench report`` can find the store on any machine."""
    if override:
        return Path(override)
    import yaml

    try:
        path = Path(suite_file)
        # Only a regular file of a suite's size is read (a FIFO named x.yaml would block).
        if not path.is_file() or path.stat().st_size > 1_000_000:
            raise OSError("not a suite file")
        raw = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError, UnicodeDecodeError, RecursionError, ValueError):
        raw = None
    name = raw.get("name") if isinstance(raw, dict) else None
    return default_path(name if isinstance(name, str) and name.strip() else Path(suite_file).stem)
