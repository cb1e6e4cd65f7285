"""The store is sacred: each bad ``--store`` target of issue 15 through the real CLI is exit 2
with one sentence, and the target (its bytes, type, mtime) and its folder are left as they were.

Also the outputs: ``report`` and ``export`` never write onto the store, and no stored text
steers the default report path out of ``reports/``.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import tiny
import yaml

from benchmark.cli import main
from benchmark.results import RunResult
from benchmark.store import Store

try:
    from benchmark.cellspec import cell_id, run_id
except ImportError:  # the names before the cell-id refactor (to run these tests on older code)
    from benchmark.cellspec import cell_id as run_id
    from benchmark.grid import cell_key as cell_id

SAFETY_SUITE = {
    "name": "safety",
    "input": {"height": tiny.SPEC.height, "width": tiny.SPEC.width, "channels": tiny.SPEC.channels},
    "backbone": {"name": tiny.BACKBONE, "params": dict(tiny.BACKBONE_PARAMS)},
    "sources": [], "targets": [tiny.TARGET], "strategies": ["scratch"],
    "labels_per_class": [tiny.LABELS_PER_CLASS], "seeds": 1, "train": dict(tiny.TRAIN),
}


def suite_file(folder: Path, **overrides) -> Path:
    path = folder / "safety.yaml"
    path.write_text(yaml.safe_dump({**SAFETY_SUITE, **overrides}, sort_keys=False))
    return path


def fake_store(path: Path, *, suite: str = "safety", seeds: int = 3) -> Path:
    """A real store with a few finished runs (no training): scratch and finetune_full."""
    with Store(path) as store:
        for spec in (tiny.cell("scratch"), tiny.cell("finetune_full")):
            for seed in range(seeds):
                res = RunResult(seed=seed, status="ok", accuracy=0.5 + 0.01 * seed,
                                per_class_accuracy=[0.5] * 10,
                                curve=[{"step": 16.0, "loss": 2.0, "accuracy": 0.3}],
                                extras={"n_test": 100, "above_chance_p": 1e-9})
                store.record(run_id=run_id(spec, seed), cell_id=cell_id(spec), suite=suite, spec=spec,
                             result=res, host="h", versions={"jax": "x"}, owner="me")
    return path


def snapshot(path: Path):
    """What must not change: the kind of thing at ``path``, its mode, size, mtime and bytes."""
    try:
        st = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return None
    content = None
    if stat.S_ISREG(st.st_mode) and st.st_size < 10_000_000:
        with contextlib.suppress(OSError):
            content = path.read_bytes()
    elif stat.S_ISLNK(st.st_mode):
        content = os.readlink(path)
    return (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_size, st.st_mtime_ns, content)


def listing(folder: Path) -> list[str]:
    return sorted(os.listdir(folder)) if folder.is_dir() else []


# -- the corpus of bad store targets (each builder makes it in a fresh folder) ---------------------

def _fifo(d: Path) -> Path:
    os.mkfifo(d / "s.sqlite")
    return d / "s.sqlite"


def _directory(d: Path) -> Path:
    (d / "s.sqlite").mkdir()
    (d / "s.sqlite" / "keep.txt").write_text("mine")
    return d / "s.sqlite"


def _empty(d: Path) -> Path:
    (d / "s.sqlite").touch()
    return d / "s.sqlite"


def _device(d: Path) -> Path:
    os.mknod(d / "s.sqlite", stat.S_IFCHR | 0o600, os.makedev(1, 3))  # like /dev/null
    return d / "s.sqlite"


def _socket(d: Path) -> Path:
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(d / "s.sqlite"))
    sock.close()
    return d / "s.sqlite"


def _loop(d: Path) -> Path:
    os.symlink(d / "b.sqlite", d / "s.sqlite")
    os.symlink(d / "s.sqlite", d / "b.sqlite")
    return d / "s.sqlite"


def _dangling(d: Path) -> Path:
    os.symlink(d / "gone" / "x.sqlite", d / "s.sqlite")
    return d / "s.sqlite"


def _text(d: Path) -> Path:
    (d / "s.sqlite").write_text("my thesis notes\n")
    return d / "s.sqlite"


def _under_a_file(d: Path) -> Path:
    (d / "f").write_text("a file, not a folder")
    return d / "f" / "s.sqlite"


def _sqlite(d: Path, sql: str, *, base: bool = True) -> Path:
    path = d / "s.sqlite"
    if base:
        fake_store(path, seeds=1)
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.executescript(sql)
        db.commit()
    return path


def _foreign(d: Path) -> Path:
    return _sqlite(d, "CREATE TABLE t (x);", base=False)


def _missing_table(d: Path) -> Path:
    return _sqlite(d, "DROP TABLE measures;")


def _missing_column(d: Path) -> Path:
    return _sqlite(d, "ALTER TABLE runs DROP COLUMN extras;")


def _version(value: str):
    return lambda d: _sqlite(d, f"UPDATE meta SET value = '{value}' WHERE key = 'schema_version';")


def _no_version(d: Path) -> Path:
    return _sqlite(d, "DELETE FROM meta WHERE key = 'schema_version';")


def _garbage_pages(d: Path) -> Path:
    path = fake_store(d / "s.sqlite", seeds=1)
    data = bytearray(path.read_bytes())
    data[100:4096] = b"\xff" * (4096 - 100)
    path.write_bytes(bytes(data))
    return path


BAD_TARGETS = {
    "fifo": _fifo, "directory": _directory, "empty file": _empty, "device": _device, "socket": _socket,
    "symlink loop": _loop, "dangling symlink": _dangling, "text file": _text, "under a file": _under_a_file,
    "foreign sqlite": _foreign, "missing table": _missing_table, "missing column": _missing_column,
    "schema 0": _version("0"), "schema abc": _version("abc"), "schema 99": _version("99"),
    "no schema": _no_version, "garbage pages": _garbage_pages,
}
# Never /dev/null or another real device here: the code before the fix replaced it with an SQLite
# file when run as root (it did, once, checking that this test fails on that code). Device nodes
# are made in a temporary folder instead (``_device``).
SYSTEM_TARGETS = ["/proc/self/status", "/proc/version", "/proc/1/no-such/x.sqlite", "/sys/x.sqlite",
                  "/sys/kernel"]


def make_target(kind: str, folder: Path) -> Path:
    if kind == "device" and os.geteuid() != 0:
        pytest.skip("making a device node needs root")
    return BAD_TARGETS[kind](folder)


def one_error(err: str) -> bool:
    """stderr holds exactly one ``tbench: error:`` sentence (on its last line) and no traceback."""
    lines = err.rstrip("\n").splitlines()
    return (bool(lines) and lines[-1].startswith("tbench: error: ") and "Traceback" not in err
            and sum(line.startswith("tbench: error:") for line in lines) == 1)


def cli(*argv: str) -> int:
    try:
        return main(list(argv))
    except SystemExit as exit_:  # argparse
        return int(exit_.code or 0)


def command(name: str, suite: Path, store: Path, out: Path) -> list[str]:
    return {
        "run": ["run", str(suite), "--store", str(store), "--quiet", "--no-measures"],
        "status": ["status", str(suite), "--store", str(store)],
        "report": ["report", str(store), "-o", str(out)],
        "export": ["export", str(suite), "--store", str(store), "-o", str(out)],
    }[name]


COMMANDS = ("run", "status", "report", "export")


@pytest.mark.parametrize("kind", sorted(BAD_TARGETS))
def test_each_bad_store_target_is_refused_untouched_by_every_command(kind, tmp_path, capsys):
    suite = suite_file(tmp_path)
    for name in COMMANDS:
        folder = tmp_path / name
        folder.mkdir()
        target = make_target(kind, folder)
        before, files = snapshot(target), listing(folder)
        assert cli(*command(name, suite, target, folder / "out.x")) == 2, (kind, name)
        err = capsys.readouterr().err
        assert one_error(err), (kind, name, err)
        assert snapshot(target) == before, (kind, name)
        assert listing(folder) == files, (kind, name)


@pytest.mark.parametrize("target", SYSTEM_TARGETS)
def test_proc_sys_and_dev_paths_are_refused(target, tmp_path, capsys):
    suite = suite_file(tmp_path)
    before = snapshot(Path(target))
    for name in COMMANDS:
        missing = name == "status" and before is None  # nothing there yet: everything to do
        assert cli(*command(name, suite, Path(target), tmp_path / "out.x")) == (0 if missing else 2), (target, name)
        err = capsys.readouterr().err
        if missing:
            continue
        assert one_error(err), (target, name, err)
    after = snapshot(Path(target))
    assert (after and after[:3]) == (before and before[:3])  # /proc sizes and mtimes are live


def test_run_never_replaces_an_empty_file_a_user_made(tmp_path, capsys):
    target = _empty(tmp_path)
    before = snapshot(target)
    assert cli(*command("run", suite_file(tmp_path), target, tmp_path / "o")) == 2
    assert "empty file" in capsys.readouterr().err
    assert snapshot(target) == before


def test_run_never_replaces_a_device_node(tmp_path, capsys):
    target = make_target("device", tmp_path)
    before = snapshot(target)
    assert cli(*command("run", suite_file(tmp_path), target, tmp_path / "o")) == 2
    assert "character device" in capsys.readouterr().err
    assert snapshot(target) == before and stat.S_ISCHR(os.lstat(target).st_mode)


def test_status_on_a_fifo_answers_at_once(tmp_path):
    # It opened the FIFO to read the header and waited forever for a writer.
    target, suite = _fifo(tmp_path), suite_file(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "benchmark.cli", "status", str(suite), "--store", str(target)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "FIFO" in proc.stderr
    assert stat.S_ISFIFO(os.lstat(target).st_mode)


def test_a_store_of_another_schema_version_is_a_clear_exit_2(tmp_path, capsys):
    suite = suite_file(tmp_path)
    for value in ("0", "abc", "2"):
        folder = tmp_path / value
        folder.mkdir()
        target = _version(value)(folder)
        before = snapshot(target)
        assert cli(*command("status", suite, target, folder / "o")) == 2
        assert f"schema version '{value}'" in capsys.readouterr().err
        assert snapshot(target) == before


def test_a_damaged_store_is_named_not_a_traceback(tmp_path, capsys):
    suite = suite_file(tmp_path)
    for builder, words in ((_missing_table, "lacks the table measures"),
                           (_missing_column, "lacks column(s) extras of table runs")):
        folder = tmp_path / builder.__name__
        folder.mkdir()
        target = builder(folder)
        assert cli(*command("export", suite, target, folder / "o.csv")) == 2
        assert words in capsys.readouterr().err
        assert not (folder / "o.csv").exists()


def test_a_row_of_invalid_json_is_named_with_its_cell_and_skipped(tmp_path, capsys):
    store = fake_store(tmp_path / "s.sqlite", seeds=2)
    bad = run_id(tiny.cell("scratch"), 1)
    with contextlib.closing(sqlite3.connect(store)) as db:
        db.execute("UPDATE runs SET curve = '{not json' WHERE run_id = ?", (bad,))
        db.execute("UPDATE runs SET accuracy = 'high' WHERE run_id = ?", (run_id(tiny.cell("finetune_full"), 0),))
        db.commit()
    out = tmp_path / "runs.csv"
    assert cli("export", str(suite_file(tmp_path)), "--store", str(store), "-o", str(out), "--all") == 0
    err = capsys.readouterr().err
    assert f"run '{bad}' (cell scratch None uci_digits 5, seed 1) is damaged: column curve is not valid JSON; skipped" in err
    assert "column accuracy is 'high', not a number" in err
    assert len(out.read_text().splitlines()) == 1 + 2  # header + the 2 intact runs
    assert cli("report", str(store), "-o", str(tmp_path / "r.html")) == 0
    assert "is damaged" in capsys.readouterr().err


def test_a_symlink_loop_is_exit_2(tmp_path, capsys):
    target = _loop(tmp_path)
    for name in ("run", "status"):
        assert cli(*command(name, suite_file(tmp_path), target, tmp_path / "o")) == 2
        assert "Too many levels of symbolic links" in capsys.readouterr().err
    assert os.path.islink(target)


def test_a_read_only_store_is_refused_before_any_training(tmp_path, capsys):
    store = fake_store(tmp_path / "s.sqlite", seeds=1)
    store.chmod(0o444)
    suite = suite_file(tmp_path)
    before, files = snapshot(store), listing(tmp_path)
    assert cli(*command("run", suite, store, tmp_path / "o")) == 2
    assert "is read-only (mode -r--r--r--); nothing was run" in capsys.readouterr().err
    assert snapshot(store) == before and listing(tmp_path) == files
    assert cli(*command("status", suite, store, tmp_path / "o")) == 0  # reading is fine


def test_a_store_in_a_read_only_folder_is_refused_before_any_training(tmp_path, capsys):
    folder = tmp_path / "ro"
    folder.mkdir()
    store = fake_store(folder / "s.sqlite", seeds=1)
    folder.chmod(0o555)
    try:
        before = snapshot(store)
        assert cli(*command("run", suite_file(tmp_path), store, tmp_path / "o")) == 2
        assert "read-only" in capsys.readouterr().err
        assert snapshot(store) == before
        assert cli(*command("export", suite_file(tmp_path), store, tmp_path / "o.csv")) == 0
    finally:
        folder.chmod(0o755)


def test_an_immutable_store_is_refused_before_any_training(tmp_path, capsys):
    store = fake_store(tmp_path / "s.sqlite", seeds=1)
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(store)]).returncode:
        pytest.skip("chattr +i does not work here (needs root and a filesystem with attributes)")
    try:
        before = snapshot(store)
        assert cli(*command("run", suite_file(tmp_path), store, tmp_path / "o")) == 2
        assert "cannot be written (Operation not permitted" in capsys.readouterr().err
        assert snapshot(store) == before
        assert cli("report", str(store), "-o", str(tmp_path / "r.html")) == 0
    finally:
        subprocess.run(["chattr", "-i", str(store)], check=True)


def test_export_of_a_store_named_csv_does_not_overwrite_it(tmp_path, capsys):
    store = fake_store(tmp_path / "x.csv")
    before = snapshot(store)
    assert cli("export", str(suite_file(tmp_path)), "--store", str(store)) == 2
    assert "is the results store" in capsys.readouterr().err
    assert snapshot(store) == before


def test_report_and_export_refuse_to_write_onto_the_store(tmp_path, capsys):
    store = fake_store(tmp_path / "s.sqlite")
    suite = suite_file(tmp_path)
    other = fake_store(tmp_path / "other.sqlite")
    link = tmp_path / "link.html"
    link.symlink_to(tmp_path.parent / "elsewhere.html")
    for out, words in ((store, "is the results store"), (Path(f"{store}-wal"), "is the results store"),
                       (other, "is an SQLite database"), (link, "is a symbolic link"),
                       (tmp_path, "is a directory")):
        before = snapshot(out)
        assert cli("report", str(store), "-o", str(out)) == 2
        assert words in capsys.readouterr().err
        assert cli("export", str(suite), "--store", str(store), "-o", str(out)) == 2
        assert words in capsys.readouterr().err
        assert snapshot(out) == before
    assert not (tmp_path.parent / "elsewhere.html").exists()


def test_a_tampered_suite_name_cannot_steer_the_default_report_path(tmp_path, monkeypatch, capsys):
    work = tmp_path / "a" / "b"
    work.mkdir(parents=True)
    monkeypatch.chdir(work)
    store = fake_store(work / "s.sqlite", suite="../../escaped")
    assert cli("report", str(store)) == 0
    assert not (tmp_path / "escaped.html").exists()
    assert [p.name for p in (work / "reports").iterdir()] == ["escaped.html"]


def test_a_store_whose_name_has_uri_characters_opens(tmp_path):
    path = tmp_path / "runs?mode=rw#1%.sqlite"
    fake_store(path, seeds=1)
    with Store(path, create=False) as store:
        assert len(store.runs_frame()) == 2
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(("-wal", "-shm"))) == [path.name]


def test_outputs_where_no_file_can_be_made_are_refused_before_the_work(tmp_path, capsys):
    store = fake_store(tmp_path / "s.sqlite")
    suite = suite_file(tmp_path)
    (tmp_path / "f").write_text("a file")
    for out in ("/proc/x.html", "/sys/x.html", str(tmp_path / "f" / "x.html")):
        assert cli("report", str(store), "-o", out) == 2
        assert one_error(capsys.readouterr().err)
        assert cli("export", str(suite), "--store", str(store), "-o", out) == 2
        assert one_error(capsys.readouterr().err)
    assert not [n for n in os.listdir(tmp_path) if n.endswith((".html", ".csv")) or n.startswith(".tbench")]
    assert (tmp_path / "f").read_text() == "a file"
