"""The IDX reader (MNIST's format) and Fashion-MNIST from Debian's package."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from conftest import require_system

from benchmark.data.builders.fashion_mnist import DEBIAN_DIR, FILES, read_fashion_mnist
from benchmark.data.idx import read_idx, write_idx
from benchmark.errors import DatasetUnavailable, UserError


def test_read_idx_parses_a_hand_written_file(tmp_path):
    # Header written byte by byte as the format says: 0 0 type ndim, big-endian sizes, data.
    path = tmp_path / "tiny-idx3-ubyte"
    path.write_bytes(bytes([0, 0, 0x08, 3, 0, 0, 0, 2, 0, 0, 0, 2, 0, 0, 0, 3]) + bytes(range(12)))
    array = read_idx(path)
    assert array.dtype == np.uint8 and array.shape == (2, 2, 3)
    assert array[1, 0].tolist() == [6, 7, 8]
    big_endian = tmp_path / "labels-idx1"
    big_endian.write_bytes(gzip.compress(bytes([0, 0, 0x0C, 1, 0, 0, 0, 2]) + (258).to_bytes(4, "big") + (-1).to_bytes(4, "big", signed=True)))
    assert read_idx(big_endian).tolist() == [258, -1]


def test_write_then_read_round_trips_and_bad_files_are_user_errors(tmp_path):
    data = np.arange(24, dtype=np.int16).reshape(2, 3, 4) - 5
    write_idx(tmp_path / "x.gz", data, compress=True)
    assert np.array_equal(read_idx(tmp_path / "x.gz"), data)
    (tmp_path / "bad").write_bytes(b"\x12\x34\x08\x01")
    with pytest.raises(UserError, match="not an IDX file"):
        read_idx(tmp_path / "bad")
    (tmp_path / "short").write_bytes(bytes([0, 0, 0x08, 1, 0, 0, 0, 9, 1, 2]))
    with pytest.raises(UserError, match="truncated"):
        read_idx(tmp_path / "short")


def test_missing_fashion_mnist_says_how_to_install_and_what_else_to_use(tmp_path):
    with pytest.raises(DatasetUnavailable) as err:
        read_fashion_mnist(tmp_path)
    message = str(err.value)
    assert "apt-get install dataset-fashion-mnist" in message and "font_digits" in message
    assert str(tmp_path) in message


def test_fashion_mnist_reads_a_folder_of_test_written_idx_files(tmp_path):
    rng = np.random.default_rng(0)
    for split, (images_file, labels_file) in FILES.items():
        n = 5 if split == "train" else 3
        write_idx(tmp_path / images_file, rng.integers(0, 256, (n, 28, 28), dtype=np.uint8), compress=True)
        write_idx(tmp_path / labels_file, np.arange(n, dtype=np.uint8), compress=True)
    splits = read_fashion_mnist(tmp_path)
    assert splits["train"]["image"].shape == (5, 28, 28, 1) and splits["test"]["label"].tolist() == [0, 1, 2]


def test_real_fashion_mnist_from_debian():
    require_system(Path(DEBIAN_DIR, FILES["test"][0]).is_file(), "dataset-fashion-mnist", "apt-get install dataset-fashion-mnist")
    splits = read_fashion_mnist(DEBIAN_DIR)
    assert splits["train"]["image"].shape == (60_000, 28, 28, 1)
    assert np.array_equal(np.bincount(splits["test"]["label"]), [1000] * 10)
    assert np.array_equal(np.bincount(splits["train"]["label"]), [6000] * 10)
