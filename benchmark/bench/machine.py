"""What the numbers were measured on: CPU, cores, memory, accelerator, load, package versions.

Also the memory meters: peak host RSS (this process and, separately, its finished children)
and, on an accelerator, the device's peak bytes in use.
"""

from __future__ import annotations

import datetime
import os
import platform
import re
import resource
import socket
import sys
from importlib import metadata
from typing import Any

from benchmark.engine.plan import usable_cores

_PACKAGES = ("jax", "jaxlib", "flax", "optax", "numpy", "torch", "tensorflow-datasets", "psutil")


def cpu_model() -> str:
    """The CPU's marketing name from /proc/cpuinfo (Linux), else ``platform.processor()``."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def total_memory_bytes() -> int | None:
    try:
        import psutil

        return int(psutil.virtual_memory().total)
    except ImportError:
        try:
            return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
        except (ValueError, OSError):
            return None


def versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {"python": sys.version.split()[0]}
    for name in _PACKAGES:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def machine_slug(backend: str) -> str:
    """A file-name-safe machine id for ``results/bench/<machine>-<date>.json``."""
    host = re.sub(r"[^A-Za-z0-9]+", "-", socket.gethostname()).strip("-").lower() or "host"
    return f"{host[:24]}-{backend}-{usable_cores()}c"


def describe() -> dict[str, Any]:
    """The machine as a JSON-ready dict: host, CPU, cores, memory, load, JAX backend, versions."""
    import jax

    devices = jax.devices()
    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {
        "host": socket.gethostname(),
        "platform": platform.platform(),
        "cpu_model": cpu_model(),
        "cpu_count": os.cpu_count(),
        "usable_cores": usable_cores(),
        "memory_bytes": total_memory_bytes(),
        "load_average_at_start": list(load) if load else None,
        "backend": jax.default_backend(),
        "devices": [d.device_kind for d in devices],
        "device_count": len(devices),
        "xla_flags": os.environ.get("XLA_FLAGS", ""),
        "versions": versions(),
        "date_utc": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def load_average() -> list[float] | None:
    return list(os.getloadavg()) if hasattr(os, "getloadavg") else None


def _maxrss_bytes(who: int) -> int:
    rss = resource.getrusage(who).ru_maxrss
    # Linux reports KiB, macOS bytes.
    return int(rss if sys.platform == "darwin" else rss * 1024)


def peak_memory() -> dict[str, Any]:
    """Peak memory so far: host RSS of this process and of its waited-for children, device bytes.

    ``device_peak_bytes`` is ``None`` on XLA:CPU (it keeps no allocator statistics; device
    arrays live in host RSS there) and on any device whose ``memory_stats()`` is unavailable.
    """
    import jax

    out: dict[str, Any] = {
        "host_peak_rss_bytes": _maxrss_bytes(resource.RUSAGE_SELF),
        "children_peak_rss_bytes": _maxrss_bytes(resource.RUSAGE_CHILDREN),
        "device_peak_bytes": None,
        "device_bytes_limit": None,
    }
    try:
        import psutil

        out["host_rss_now_bytes"] = int(psutil.Process().memory_info().rss)
    except ImportError:
        out["host_rss_now_bytes"] = None
    try:
        stats = jax.devices()[0].memory_stats()
    except Exception:  # backends without allocator stats raise various errors
        stats = None
    if stats:
        out["device_peak_bytes"] = stats.get("peak_bytes_in_use")
        out["device_bytes_limit"] = stats.get("bytes_limit")
    return out
