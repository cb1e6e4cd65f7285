"""Guards for the files ``tbench`` writes (reports, exports): never onto a store, never onto a
special file, never through a symbolic link out of the folder the user named, and a default
path no stored text can steer (``safe_name``).
"""

from __future__ import annotations

import os
import re
import stat
from collections.abc import Iterable
from pathlib import Path

from benchmark.errors import UserError

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
MAX_NAME = 100


def safe_name(name: object, fallback: str = "suite") -> str:
    """``name`` as one plain file name: letters, digits, ``. _ -`` only, no leading dot, at most
    ``MAX_NAME`` characters (``'../../etc/x'`` → ``'etc_x'``); ``fallback`` if nothing is left."""
    text = _UNSAFE.sub("_", str(name)).strip("._-")[:MAX_NAME].rstrip("._-")
    return text or fallback


def default_output(folder: str | os.PathLike, name: object, suffix: str) -> Path:
    """``folder/<safe name><suffix>``: always directly inside ``folder``."""
    return Path(folder) / f"{safe_name(name)}{suffix}"


def _sidecars(store: Path) -> list[Path]:
    return [store, *(store.with_name(store.name + s) for s in ("-wal", "-shm", "-journal"))]


def check_output(path: str | os.PathLike, *, stores: Iterable[str | os.PathLike] = (),
                 flag: str = "--output") -> Path:
    """``path`` if writing a new file there (or replacing a regular file) harms nothing, else a
    ``UserError`` naming ``flag``; the stores (and their -wal/-shm files) are never written."""
    out = Path(path)
    if out.name in ("", ".", ".."):
        raise UserError(f"{path!s} names a folder, not a file; name the file to write", field=flag)
    try:
        st = os.lstat(out)
    except FileNotFoundError:
        st = None
    except (OSError, ValueError) as err:
        raise UserError(f"cannot write {path!s} ({getattr(err, 'strerror', None) or err})", field=flag) from None
    protected = [(p, Path(s)) for s in stores for p in _sidecars(Path(s))]
    resolved = _resolved(out)
    for file, store in protected:
        same = resolved == _resolved(file)
        if st is not None and not same:
            try:
                same = os.path.samefile(out, file)
            except OSError:
                same = False
        if same:
            what = "itself" if file == store else f"({file.name[len(store.name):]} file)"
            raise UserError(f"{path!s} is the results store {store} {what}; nothing was written; "
                            "pass another output file", field=flag)
    if st is None:
        _probe_folder(out, flag)
        return out
    if stat.S_ISLNK(st.st_mode):
        raise UserError(f"{path!s} is a symbolic link (to {os.readlink(out)}); writing through it would "
                        "leave the folder you named; remove the link or pass another file", field=flag)
    if not stat.S_ISREG(st.st_mode):
        kind = "a directory" if stat.S_ISDIR(st.st_mode) else "not a regular file (FIFO, device or socket)"
        raise UserError(f"{path!s} is {kind}; nothing was written; pass a file path", field=flag)
    if _is_sqlite(out):
        raise UserError(f"{path!s} is an SQLite database (a results store?); it was left as it is; "
                        "pass another output file", field=flag)
    _probe_folder(out, flag)
    return out


def _probe_folder(out: Path, flag: str) -> None:
    """Refuse now, not after the work, a folder where no file can be made (/proc, /sys, a
    read-only mount, a path under a file): make and remove an empty file in the nearest folder
    that exists (root ignores mode bits, so asking ``os.access`` would not tell)."""
    folder = out.absolute().parent
    while not os.path.lexists(folder) and folder != folder.parent:
        folder = folder.parent
    if not folder.is_dir():
        raise UserError(f"cannot write {out}: {folder} is not a folder", field=flag)
    probe = folder / f".tbench-probe-{os.getpid()}"
    try:
        os.close(os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except OSError as err:
        raise UserError(f"cannot write {out}: no file can be made in {folder} ({err.strerror})",
                        field=flag) from None
    os.unlink(probe)


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path.absolute()


def _is_sqlite(path: Path) -> bool:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return False
    try:
        return os.read(fd, 16) == b"SQLite format 3\x00"
    except OSError:
        return False
    finally:
        os.close(fd)


def replace_atomically(path: Path, write) -> None:
    """Call ``write(temporary path)`` beside ``path``, then rename it onto ``path`` (a reader never
    sees half a file, and a link put at ``path`` meanwhile is replaced, not followed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name[:64]}.{os.getpid()}.tmp")
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
