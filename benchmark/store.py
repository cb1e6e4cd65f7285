"""The results store: one SQLite file per suite (WAL), resumable and shared by many runners.

* Each finished run is committed in one transaction with its full config, metrics, curve,
  timings, package versions, backend/device and host. Finished runs (``ok``, ``diverged``) are
  never overwritten; ``failed`` runs (an exception) are retried by the next ``tbench run``.
* Leases: a runner claims runs with an expiring lease and renews it (``heartbeat``) while it
  works, so two ``tbench run`` processes on one store never run the same run. A killed runner's
  leases expire (immediately when it was a process on this host that no longer exists, else
  after the lease time) and its runs are claimed again.
* A ``meta`` table marks the file as a transferbench store with a schema version; any other
  file is refused with a ``UserError`` and left untouched. Only a new path or a valid store of
  this schema is opened (``benchmark.storecheck``: no directory, FIFO, device, empty file,
  dangling link is ever replaced); a store to be written is write-tested before any work, and
  a damaged row is named and skipped when read.

Ids: ``run_id`` is ``benchmark.cellspec.run_id(spec, seed)``; ``cell_id`` is
``benchmark.cellspec.cell_id(spec)`` (the same without the seed; the seeds of a cell share it).
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import socket
import sqlite3
import tempfile
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from benchmark import storecheck
from benchmark.cellspec import CellSpec
from benchmark.errors import UserError
from benchmark.results import STATUS_DIVERGED, STATUS_FAILED, STATUS_OK, RunResult

SCHEMA_VERSION = 1
APPLICATION = "transferbench"
FINISHED = (STATUS_OK, STATUS_DIVERGED)

RUN_COLUMNS = (
    "run_id", "cell_id", "suite", "source", "target", "strategy", "strategy_label",
    "labels_per_class", "seed", "status", "accuracy", "per_class_accuracy", "curve",
    "diverged_step", "wall_s", "compile_s", "pretrain_s", "backend", "device", "host",
    "versions", "config", "finished_at",
)
EXTRA_RUN_COLUMNS = ("error", "plan", "extras", "attempts", "runner")
JSON_COLUMNS = ("per_class_accuracy", "curve", "versions", "config", "plan", "extras")
MEASURE_COLUMNS = ("source", "target", "measure", "value", "space", "seed")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, cell_id TEXT NOT NULL, suite TEXT NOT NULL, source TEXT,
    target TEXT NOT NULL, strategy TEXT NOT NULL, strategy_label TEXT NOT NULL,
    labels_per_class INTEGER NOT NULL, seed INTEGER NOT NULL, status TEXT NOT NULL,
    accuracy REAL, per_class_accuracy TEXT, curve TEXT, diverged_step INTEGER, wall_s REAL,
    compile_s REAL, pretrain_s REAL, backend TEXT, device TEXT, host TEXT, versions TEXT,
    config TEXT NOT NULL, finished_at TEXT NOT NULL, error TEXT, plan TEXT, extras TEXT,
    attempts INTEGER NOT NULL DEFAULT 1, runner TEXT
);
CREATE INDEX IF NOT EXISTS runs_cell ON runs (cell_id);
CREATE TABLE IF NOT EXISTS leases (
    run_id TEXT PRIMARY KEY, owner TEXT NOT NULL, host TEXT NOT NULL, pid INTEGER NOT NULL,
    expires_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS measures (
    source TEXT NOT NULL, target TEXT NOT NULL, measure TEXT NOT NULL, value REAL,
    space TEXT NOT NULL, seed INTEGER NOT NULL, config TEXT, recorded_at TEXT NOT NULL,
    PRIMARY KEY (source, target, measure, space, seed)
);
"""


# Tables and the columns each must have (a store missing one is refused, never a traceback).
_TABLES = {
    "meta": ("key", "value"),
    "runs": RUN_COLUMNS + EXTRA_RUN_COLUMNS,
    "leases": ("run_id", "owner", "host", "pid", "expires_at"),
    "measures": (*MEASURE_COLUMNS, "config", "recorded_at"),
}


# Where a suite's store is: re-exported (``benchmark.store.default_path`` / ``suite_store_path``).
default_path = storecheck.default_path
suite_store_path = storecheck.suite_store_path
_ro_uri = storecheck.ro_uri


def _now_iso() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class Store:
    """A transferbench results file. ``create=False`` refuses to make a new one.

    readonly (default: ``not create``): open for reading only (``status``, ``report``,
    ``export``); a writable store is write-tested on opening (``UserError`` if it cannot be
    written: read-only mode, immutable, read-only filesystem) so no training starts on it.
    warn: where damaged rows are reported when read (default: a line on stderr).
    """

    def __init__(self, path: str | os.PathLike, *, create: bool = True, readonly: bool | None = None,
                 warn: storecheck.Warn = storecheck.warn):
        self.path = Path(path)
        self.host = socket.gethostname()
        self.readonly = (not create) if readonly is None else readonly
        self.warn = warn
        if storecheck.existing_target(self.path) is None:
            if not create:
                raise UserError(f"no results yet at {self.path}; run `tbench run SUITE` first "
                                "(or pass --store PATH)")
            self._create()
        self._check_foreign()
        if not self.readonly:
            storecheck.check_writable(self.path)
        try:
            self._db = self._connect()
            if not self.readonly:
                self._write_test()
        except sqlite3.Error as err:
            with contextlib.suppress(AttributeError, sqlite3.Error):
                self._db.close()
            raise UserError(f"{self.path} cannot be {'read' if self.readonly else 'written'} ({err}); "
                            f"nothing was run; {storecheck.HINT}") from None

    def _write_test(self) -> None:
        """A real write in a transaction, rolled back (the file is not changed): SQLite opens an
        unwritable file read-only without a word, and the first write would fail after training."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES ('write_test', ?)", (_now_iso(),))
        finally:
            self._db.execute("ROLLBACK")

    def _create(self) -> None:
        """Write a whole empty store beside ``path``, then link it into place.

        Runners started together on a new store (``tbench run`` twice, Ray workers) must see
        either no file or a complete store: one that saw the other's half-made file (header
        written, ``meta`` not yet committed) refused it as foreign and exited with status 2.
        ``os.link`` fails if another runner's store got there first, and that one is used.
        """
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{self.path.name[:64]}-", suffix=".new", dir=self.path.parent)
        except OSError as err:
            raise UserError(f"cannot make a results store at {self.path} ({err.strerror or err}); "
                            f"{storecheck.HINT}") from None
        os.close(fd)
        try:
            with contextlib.closing(sqlite3.connect(tmp, isolation_level=None)) as new:
                # WAL is persistent in the file: switching it here, alone, spares the runners
                # that open the new store a mode change under each other's locks.
                new.execute("PRAGMA journal_mode=WAL")
                with self._transaction(new) as db:
                    for statement in _SCHEMA.strip().split(";"):
                        if statement.strip():
                            db.execute(statement)
                    db.execute("INSERT INTO meta VALUES ('application', ?)", (APPLICATION,))
                    db.execute("INSERT INTO meta VALUES ('schema_version', ?)", (str(SCHEMA_VERSION),))
                    db.execute("INSERT INTO meta VALUES ('created_at', ?)", (_now_iso(),))
            try:
                os.link(tmp, self.path)  # never replaces: whatever got there first stays
            except FileExistsError:
                pass
        except (OSError, sqlite3.Error) as err:
            raise UserError(f"cannot make a results store at {self.path} ({err}); "
                            f"{storecheck.HINT}") from None
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)

    # -- opening -----------------------------------------------------------------------------

    def _check_foreign(self) -> None:
        """Refuse, without writing a byte, anything that is not one of our stores."""
        storecheck.existing_target(self.path)  # a path swapped since: refuse it too
        header = storecheck.read_header(self.path)
        hint = "pass another --store PATH, or move the file away"
        if header != b"SQLite format 3\x00":
            raise UserError(f"{self.path} is not a transferbench results store (not an SQLite file); {hint}")
        # Without a live WAL beside it, read immutably: not even -shm/-wal files get created.
        live = self.path.with_name(self.path.name + "-wal").exists()
        columns: dict[str, list[str]] = {}
        try:
            with contextlib.closing(sqlite3.connect(_ro_uri(self.path, immutable=not live), uri=True,
                                                    timeout=30)) as db:
                rows = dict(db.execute("SELECT key, value FROM meta").fetchall())
                for table in _TABLES:
                    columns[table] = [r[1] for r in db.execute(f"PRAGMA table_info({table})")]
        except (sqlite3.DatabaseError, ValueError, TypeError):
            rows = {}
        if rows.get("application") != APPLICATION:
            raise UserError(f"{self.path} is an SQLite file but not a transferbench results store; {hint}")
        storecheck.check_schema(self.path, rows.get("schema_version"), SCHEMA_VERSION, columns, _TABLES)

    def _connect(self) -> sqlite3.Connection:
        if self.readonly:
            return storecheck.connect_readonly(self.path)
        db = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA journal_mode=WAL")
        db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA busy_timeout=60000")
        return db

    @contextlib.contextmanager
    def _transaction(self, db: sqlite3.Connection | None = None) -> Iterator[sqlite3.Connection]:
        db = db or self._db
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- leases ------------------------------------------------------------------------------

    def claim(self, run_ids: Sequence[str], owner: str, *, lease_s: float) -> list[str]:
        """Atomically lease the runs that are neither finished nor leased by a live runner."""
        now = time.time()
        claimed = []
        with self._transaction() as db:
            for run_id in run_ids:
                row = db.execute("SELECT status FROM runs WHERE run_id = ?", (run_id,)).fetchone()
                if row and row[0] in FINISHED:
                    continue
                lease = db.execute("SELECT owner, host, pid, expires_at FROM leases WHERE run_id = ?",
                                   (run_id,)).fetchone()
                if lease and lease[0] != owner and not self._lease_dead(lease, now):
                    continue
                db.execute("INSERT OR REPLACE INTO leases VALUES (?, ?, ?, ?, ?)",
                           (run_id, owner, self.host, os.getpid(), now + lease_s))
                claimed.append(run_id)
        return claimed

    def _lease_dead(self, lease: tuple, now: float) -> bool:
        _, host, pid, expires_at = lease
        if expires_at < now:
            return True
        return host == self.host and not _pid_alive(int(pid))

    def heartbeat(self, owner: str, *, lease_s: float) -> None:
        """Extend every lease ``owner`` holds. Safe to call from another thread."""
        db = self._connect()
        try:
            db.execute("UPDATE leases SET expires_at = ? WHERE owner = ?", (time.time() + lease_s, owner))
        finally:
            db.close()

    def release(self, owner: str, run_ids: Iterable[str] | None = None) -> None:
        """Drop leases (all of ``owner``'s when ``run_ids`` is None)."""
        with self._transaction() as db:
            if run_ids is None:
                db.execute("DELETE FROM leases WHERE owner = ?", (owner,))
            else:
                db.executemany("DELETE FROM leases WHERE owner = ? AND run_id = ?",
                               [(owner, r) for r in run_ids])

    # -- writing -----------------------------------------------------------------------------

    def record(self, *, run_id: str, cell_id: str, suite: str, spec: CellSpec, result: RunResult,
               host: str, versions: dict[str, str], owner: str | None = None) -> bool:
        """Commit one finished run (and drop its lease) in one transaction.

        Returns False, writing nothing, when the run is already recorded as finished.
        """
        r = result
        config = {"cell": spec.to_dict(), "seed": int(r.seed)}
        with self._transaction() as db:
            row = db.execute("SELECT status, attempts FROM runs WHERE run_id = ?", (run_id,)).fetchone()
            if row and row[0] in FINISHED:
                db.execute("DELETE FROM leases WHERE run_id = ? AND owner = ?", (run_id, owner))
                return False
            attempts = (row[1] + 1) if row else 1
            values = {
                "run_id": run_id, "cell_id": cell_id, "suite": suite, "source": spec.source,
                "target": spec.target, "strategy": spec.strategy, "strategy_label": spec.strategy_label,
                "labels_per_class": spec.labels_per_class, "seed": int(r.seed), "status": r.status,
                "accuracy": None if r.accuracy is None else float(r.accuracy),
                "per_class_accuracy": json.dumps([float(a) for a in r.per_class_accuracy]),
                "curve": json.dumps(r.curve), "diverged_step": r.diverged_step,
                "wall_s": float(r.wall_s), "compile_s": float(r.compile_s), "pretrain_s": float(r.pretrain_s),
                "backend": r.backend, "device": r.device, "host": host,
                "versions": json.dumps(versions, sort_keys=True), "config": json.dumps(config, sort_keys=True),
                "finished_at": _now_iso(), "error": r.error, "plan": json.dumps(r.plan, default=str),
                "extras": json.dumps(r.extras, default=str), "attempts": attempts, "runner": owner,
            }
            names = ", ".join(values)
            marks = ", ".join("?" for _ in values)
            db.execute(f"INSERT OR REPLACE INTO runs ({names}) VALUES ({marks})", tuple(values.values()))
            db.execute("DELETE FROM leases WHERE run_id = ?", (run_id,))
        return True

    def record_measures(self, rows: Iterable[dict[str, Any]]) -> int:
        """Insert/replace domain-gap and transferability measures (``MEASURE_COLUMNS`` + ``config``)."""
        rows = list(rows)
        with self._transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO measures VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [(r["source"], r["target"], r["measure"], None if r["value"] is None else float(r["value"]),
                  r["space"], int(r["seed"]), json.dumps(r.get("config") or {}, sort_keys=True), _now_iso())
                 for r in rows])
        return len(rows)

    # -- reading -----------------------------------------------------------------------------

    def finished_ids(self) -> set[str]:
        rows = self._db.execute("SELECT run_id FROM runs WHERE status IN (?, ?)", FINISHED).fetchall()
        return {r[0] for r in rows}

    def status_counts(self, run_ids: Iterable[str]) -> dict[str, int]:
        """For the grid's runs: ``ok, diverged, failed, running, todo, total`` (and ``other``:
        runs in the store that are not in this grid, e.g. from an earlier version of the suite)."""
        wanted = set(run_ids)
        now = time.time()
        status = dict(self._db.execute("SELECT run_id, status FROM runs").fetchall())
        leases = self._db.execute("SELECT run_id, owner, host, pid, expires_at FROM leases").fetchall()
        running = {r[0] for r in leases if not self._lease_dead(r[1:], now)}
        counts = {"ok": 0, "diverged": 0, "failed": 0, "running": 0, "todo": 0}
        for run_id in wanted:
            s = status.get(run_id)
            if s in FINISHED:
                counts[s] += 1
            elif run_id in running:
                counts["running"] += 1
            elif s == STATUS_FAILED:
                counts["failed"] += 1
            else:
                counts["todo"] += 1
        counts["total"] = len(wanted)
        counts["other"] = len(set(status) - wanted)
        return counts

    def runs_frame(self) -> pd.DataFrame:
        """One row per run: ``RUN_COLUMNS`` then ``EXTRA_RUN_COLUMNS``; JSON columns decoded.

        A damaged row (invalid JSON, a value of the wrong type) is reported through ``warn``,
        naming its run and cell, and left out.
        """
        columns = RUN_COLUMNS + EXTRA_RUN_COLUMNS
        raw = self._read(f"SELECT {', '.join(columns)} FROM runs ORDER BY rowid")
        rows = storecheck.decode_runs(self.path, columns, raw, self.warn)
        frame = pd.DataFrame([[row[c] for c in columns] for row in rows], columns=list(columns))
        for col in JSON_COLUMNS:
            frame[col] = pd.Series([row[col] for row in rows], dtype=object)
        # pandas 3 infers a string dtype with NaN for None; keep None (scratch has no source).
        for col in ("source", "error"):
            frame[col] = pd.Series([row[col] for row in rows], dtype=object)
        return frame

    def _read(self, sql: str) -> list[tuple]:
        try:
            return self._db.execute(sql).fetchall()
        except sqlite3.DatabaseError as err:
            raise UserError(f"{self.path} cannot be read ({err}); the store is damaged; "
                            f"{storecheck.HINT}") from None

    def measures_frame(self, *, with_config: bool = False) -> pd.DataFrame:
        """One row per stored measure (``MEASURE_COLUMNS``; plus the decoded ``config`` dict)."""
        columns = [*MEASURE_COLUMNS, "config"]
        raw = self._read(f"SELECT {', '.join(columns)} FROM measures ORDER BY rowid")
        rows = storecheck.decode_measures(self.path, raw, self.warn)
        frame = pd.DataFrame(rows, columns=columns)
        if with_config:
            frame["config"] = pd.Series([r[-1] for r in rows], dtype=object)
            return frame
        return frame.drop(columns="config")

    def meta(self) -> dict[str, str]:
        return dict(self._read("SELECT key, value FROM meta"))
