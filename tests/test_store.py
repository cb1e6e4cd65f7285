"""The SQLite results store: atomic records, leases, foreign files, frames (no JAX needed)."""

from __future__ import annotations

import contextlib
import json
import sqlite3
import subprocess
import sys
import time

import pytest

from benchmark.cellspec import CellSpec, InputSpec, cell_id, run_id
from benchmark.errors import UserError
from benchmark.results import RunResult
from benchmark.store import RUN_COLUMNS, SCHEMA_VERSION, Store, suite_store_path

SPEC = CellSpec(source=None, target="uci_digits", strategy="scratch", labels_per_class=5,
                input_spec=InputSpec(16, 16, 1), train={"steps": 48})
SOURCED = CellSpec(source="font_digits", target="uci_digits", strategy="finetune_full",
                   labels_per_class=-1, input_spec=InputSpec(16, 16, 1))


def result(seed: int, status: str = "ok", accuracy: float | None = 0.5, **kw) -> RunResult:
    return RunResult(seed=seed, status=status, accuracy=accuracy, per_class_accuracy=[0.25, 0.75],
                     curve=[{"step": 0, "loss": 2.3, "accuracy": 0.1}], wall_s=1.5, compile_s=0.5,
                     backend="cpu", device="TFRT_CPU_0", plan={"chunk": 8}, extras={"k": 1}, **kw)


def record(store: Store, spec: CellSpec, res: RunResult, owner: str = "me") -> bool:
    return store.record(run_id=run_id(spec, res.seed), cell_id=cell_id(spec), suite="s", spec=spec,
                        result=res, host="hostA", versions={"jax": "0.10.2"}, owner=owner)


def test_runs_frame_has_the_contract_columns_decoded(tmp_path):
    store = Store(tmp_path / "r.sqlite")
    assert record(store, SPEC, result(0))
    assert record(store, SOURCED, result(1, "diverged", None, diverged_step=17))
    frame = store.runs_frame()
    assert list(frame.columns[: len(RUN_COLUMNS)]) == list(RUN_COLUMNS)
    first, second = frame.iloc[0], frame.iloc[1]
    assert first["source"] is None and second["source"] == "font_digits"
    assert first["run_id"] == run_id(SPEC, 0) and first["cell_id"] == cell_id(SPEC)
    assert first["per_class_accuracy"] == [0.25, 0.75]
    assert first["curve"] == [{"step": 0, "loss": 2.3, "accuracy": 0.1}]
    assert first["config"] == {"cell": SPEC.to_dict(), "seed": 0}
    assert CellSpec.from_dict(first["config"]["cell"]) == SPEC
    assert first["versions"] == {"jax": "0.10.2"} and first["host"] == "hostA"
    assert first["accuracy"] == 0.5 and first["labels_per_class"] == 5
    assert second["status"] == "diverged" and second["diverged_step"] == 17
    assert second["labels_per_class"] == -1 and second["strategy_label"] == "finetune_full"


def test_finished_runs_are_never_overwritten_but_failed_ones_are_retried(tmp_path):
    store = Store(tmp_path / "r.sqlite")
    assert record(store, SPEC, result(0, "failed", None, error="ValueError: boom"))
    assert store.claim([run_id(SPEC, 0)], "other", lease_s=60) == [run_id(SPEC, 0)]
    assert record(store, SPEC, result(0, accuracy=0.9), owner="other")
    assert not record(store, SPEC, result(0, accuracy=0.1))
    row = store.runs_frame().iloc[0]
    assert (row["status"], row["accuracy"], row["attempts"], row["runner"]) == ("ok", 0.9, 2, "other")
    assert len(store.runs_frame()) == 1
    assert store.claim([run_id(SPEC, 0)], "third", lease_s=60) == []


def test_leases_exclude_other_runners_until_they_expire(tmp_path):
    store = Store(tmp_path / "r.sqlite")
    ids = [run_id(SPEC, s) for s in range(3)]
    assert store.claim(ids[:2], "a", lease_s=0.5) == ids[:2]
    assert store.claim(ids, "b", lease_s=60) == ids[2:]
    assert store.status_counts(ids)["running"] == 3
    store.heartbeat("a", lease_s=0.5)
    time.sleep(0.6)
    assert store.claim(ids, "b", lease_s=60) == ids
    store.release("b")
    assert store.status_counts(ids) == {"ok": 0, "diverged": 0, "failed": 0, "running": 0,
                                        "todo": 3, "total": 3, "other": 0}


def test_a_dead_local_runner_loses_its_lease_at_once(tmp_path):
    path = tmp_path / "r.sqlite"
    Store(path).close()
    code = (f"from benchmark.store import Store; s = Store({str(path)!r}); "
            f"print(s.claim(['x'], 'dead-runner', lease_s=3600))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "['x']"
    store = Store(path)
    assert store.claim(["x"], "me", lease_s=60) == ["x"]


def test_status_counts_and_runs_outside_the_grid(tmp_path):
    store = Store(tmp_path / "r.sqlite")
    record(store, SPEC, result(0))
    record(store, SPEC, result(1, "diverged", None))
    record(store, SPEC, result(2, "failed", None, error="x"))
    record(store, SOURCED, result(0))
    grid_ids = [run_id(SPEC, s) for s in range(4)]
    store.claim(grid_ids[3:], "elsewhere", lease_s=60)
    assert store.status_counts(grid_ids) == {"ok": 1, "diverged": 1, "failed": 1, "running": 1,
                                             "todo": 0, "total": 4, "other": 1}


def test_foreign_files_are_refused_untouched(tmp_path):
    text = tmp_path / "notes.sqlite"
    text.write_text("my thesis notes\n")
    other = tmp_path / "other.sqlite"
    with contextlib.closing(sqlite3.connect(other)) as db:
        db.execute("CREATE TABLE t (x)")
        db.commit()
    newer = tmp_path / "newer.sqlite"
    Store(newer).close()
    with contextlib.closing(sqlite3.connect(newer)) as db:
        db.execute("UPDATE meta SET value = ? WHERE key = 'schema_version'", (str(SCHEMA_VERSION + 1),))
        db.commit()
    for path, words in ((text, "not an SQLite file"), (other, "not a transferbench results store"),
                        (newer, "newer transferbench")):
        before, files = path.read_bytes(), sorted(tmp_path.iterdir())
        with pytest.raises(UserError, match=words):
            Store(path)
        assert path.read_bytes() == before
        assert sorted(tmp_path.iterdir()) == files
    with pytest.raises(UserError, match="tbench run"):
        Store(tmp_path / "missing.sqlite", create=False)
    assert not (tmp_path / "missing.sqlite").exists()


def test_meta_marks_the_file_and_wal_is_on(tmp_path):
    store = Store(tmp_path / "r.sqlite")
    assert store.meta()["application"] == "transferbench"
    assert store.meta()["schema_version"] == str(SCHEMA_VERSION)
    assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_measures_round_trip(tmp_path):
    store = Store(tmp_path / "r.sqlite")
    rows = [{"source": "font_digits", "target": "uci_digits", "measure": "mmd2_rbf", "value": 0.25,
             "space": "features", "seed": 0, "config": {"n": 500}},
            {"source": "font_digits", "target": "uci_digits", "measure": "leep", "value": -1.5,
             "space": "features", "seed": 0}]
    assert store.record_measures(rows) == 2
    store.record_measures([{**rows[0], "value": 0.5}])
    frame = store.measures_frame()
    assert frame.to_dict("records") == [
        {k: v for k, v in rows[1].items() if k != "config"},
        {k: (0.5 if k == "value" else v) for k, v in rows[0].items() if k != "config"},
    ]
    assert json.loads(store._db.execute("SELECT config FROM measures WHERE measure='leep'").fetchone()[0]) == {}


def test_suite_store_path_reads_only_the_name(tmp_path):
    suite = tmp_path / "x.yaml"
    suite.write_text("name: my-suite\ntargets: [nonsense]\n")
    assert str(suite_store_path(suite)) == "results/my-suite.sqlite"
    suite.write_text("targets: [a]\n")
    assert str(suite_store_path(suite)) == "results/x.sqlite"
    assert str(suite_store_path(suite, tmp_path / "o.sqlite")) == str(tmp_path / "o.sqlite")


_OPEN_TOGETHER = """
import sys, time
from benchmark.store import Store
start, paths = float(sys.argv[1]), sys.argv[2:]
for i, path in enumerate(paths):
    while time.time() < start + 0.15 * i:
        pass
    Store(path).close()
"""


def test_runners_creating_one_new_store_together_all_open_it(tmp_path):
    # Runners started at once on a new store each saw the other's half-made file (SQLite header
    # written, meta not yet committed) and refused it as foreign: exit status 2 in `tbench run`.
    paths = [str(tmp_path / f"s{i}.sqlite") for i in range(24)]
    start = time.time() + 3.0  # after every interpreter has imported the store module
    procs = [subprocess.Popen([sys.executable, "-c", _OPEN_TOGETHER, str(start), *paths],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) for _ in range(4)]
    outs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, outs
    for path in paths:
        with Store(path, create=False) as store:
            assert store.meta()["application"] and store.runs_frame().empty
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(("-wal", "-shm"))) == \
        sorted(f"s{i}.sqlite" for i in range(24))  # no temporary file left behind
