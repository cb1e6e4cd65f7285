"""Shared test set-up.

* No test may touch the network: connections to anything but loopback are refused.
* Every test shares one prepared-data dir and one JAX compilation cache for the session, so
  datasets are built once and kernels compiled once (XLA:CPU compiles take seconds each).
* ``require_system(...)``: a test that needs a Debian package skips with the reason on a user's
  machine that lacks it, but fails under ``CI=true`` (CI installs it; a silent skip would hide it).
"""

from __future__ import annotations

import ipaddress
import os
import socket
import tempfile
from pathlib import Path

import pytest

# Before anything imports JAX: one compilation cache for the whole test session (and for the
# subprocesses tests start), kept between sessions on this machine.
_SESSION_CACHE = Path(os.environ.get("TBENCH_TEST_CACHE", Path(tempfile.gettempdir()) / "tbench-test-cache"))
os.environ.setdefault("TBENCH_CACHE_DIR", str(_SESSION_CACHE))
os.environ.setdefault("TBENCH_DATA_DIR", str(_SESSION_CACHE / "tfds"))
os.environ.setdefault("TBENCH_JAX_CACHE_DIR", str(_SESSION_CACHE / "jax"))
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

IN_CI = os.environ.get("CI", "").lower() == "true"


def _is_loopback(address) -> bool:
    if isinstance(address, (str, bytes)):  # AF_UNIX path
        return True
    host = address[0]
    if host in ("localhost", ""):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex


def _guarded_connect(self, address):
    if not _is_loopback(address):
        raise ConnectionRefusedError(f"tests may not use the network (tried {address!r})")
    return _real_connect(self, address)


def _guarded_connect_ex(self, address):
    if not _is_loopback(address):
        raise ConnectionRefusedError(f"tests may not use the network (tried {address!r})")
    return _real_connect_ex(self, address)


socket.socket.connect = _guarded_connect
socket.socket.connect_ex = _guarded_connect_ex


def require_system(available: bool, what: str, how: str) -> None:
    """Skip (user machine) or fail (CI) when a system package a test needs is missing."""
    if available:
        return
    message = f"{what} is not installed ({how})"
    if IN_CI:
        pytest.fail(f"CI must provide it: {message}")
    pytest.skip(message)


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """Prepared TFDS datasets shared by every test of the session."""
    path = Path(os.environ["TBENCH_DATA_DIR"])
    path.mkdir(parents=True, exist_ok=True)
    return path
