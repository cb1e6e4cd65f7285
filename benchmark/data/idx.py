"""Reader for the IDX format of MNIST / Fashion-MNIST (LeCun et al., yann.lecun.com/exdb/mnist).

An IDX file is a 4-byte magic ``0x00 0x00 TYPE NDIM``, NDIM big-endian uint32 sizes, then the
data in row-major order, big-endian. Files may be gzipped (detected by content, not name).
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np

from benchmark.errors import UserError

_TYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (plain or gzipped) into an array of its declared shape and type."""
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        raw = gzip.decompress(raw)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _TYPES:
        raise UserError(f"{path} is not an IDX file (bad magic number {raw[:4].hex() or 'empty'}); re-download or reinstall it")
    dtype = np.dtype(_TYPES[raw[2]])
    ndim = raw[3]
    header = 4 + 4 * ndim
    shape = tuple(int(s) for s in np.frombuffer(raw[4:header], dtype=">u4"))
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(raw) != expected:
        raise UserError(f"{path} is truncated or padded: header says {shape} ({expected} bytes), file has {len(raw)}; reinstall it")
    return np.frombuffer(raw, dtype=dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def write_idx(path: str | os.PathLike, array: np.ndarray, *, compress: bool = False) -> None:
    """Write ``array`` as IDX (the inverse of ``read_idx``; used by tests and tools)."""
    codes = {np.dtype(v).newbyteorder("="): k for k, v in _TYPES.items()}
    array = np.asarray(array)
    code = codes[array.dtype.newbyteorder("=")]
    payload = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    payload += array.astype(np.dtype(_TYPES[code])).tobytes()
    Path(path).write_bytes(gzip.compress(payload, mtime=0) if compress else payload)
