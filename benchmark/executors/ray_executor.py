"""Ray executor: one Ray task per cell (all its unfinished seeds), results written by the driver.

``tbench run SUITE --executor ray`` starts a local Ray instance; ``--address ADDR`` (or
``auto``) joins an existing cluster. Tasks are retried (``max_retries``) when their worker
dies, so a killed worker loses nothing: the driver records a run only once, whichever attempt
returns it. Workers need transferbench installed and the prepared data reachable at the same
``--data-dir`` (on a multi-host cluster: a shared filesystem).
"""

from __future__ import annotations

import os
from typing import Any

from benchmark.cellspec import CellSpec
from benchmark.errors import UserError

# Environment a worker needs to find the same caches and platform as the driver.
_FORWARDED_ENV = ("TBENCH_CACHE_DIR", "TBENCH_DATA_DIR", "TBENCH_JAX_CACHE_DIR", "JAX_PLATFORMS",
                  "XLA_FLAGS", "TF_CPP_MIN_LOG_LEVEL", "TBENCH_LEASE_S")


class RayExecutor:
    """Submits :func:`benchmark.executors.run_group` as Ray tasks, one CPU each."""

    def __init__(self, *, address: str | None = None, data_dir: str | None = None,
                 checkpoint_dir: str | None = None, max_retries: int = 3):
        try:
            import ray
        except ImportError:
            raise UserError("--executor ray needs Ray; install it with "
                            "`pip install 'transferbench[ray]'`", field="--executor") from None
        self._ray = ray
        self._started_here = False
        if not ray.is_initialized():
            _check_reachable(address)
            env = {k: os.environ[k] for k in _FORWARDED_ENV if k in os.environ}
            try:
                ray.init(address=address, include_dashboard=False, log_to_driver=False,
                         runtime_env={"env_vars": env} if env else None)
            except (ConnectionError, ValueError, RuntimeError) as err:
                raise UserError(f"cannot start or reach a Ray cluster at {address or 'a new local instance'}: "
                                f"{err}; check --address (e.g. 'auto' or 'ray://host:10001')",
                                field="--address") from None
            self._started_here = True
        from benchmark.executors import run_group

        self.slots = max(1, int(ray.cluster_resources().get("CPU", 1)))
        self._task = ray.remote(run_group).options(num_cpus=1, max_retries=max_retries,
                                                   retry_exceptions=False)
        self.data_dir = data_dir
        self.checkpoint_dir = checkpoint_dir
        self._seeds: dict[Any, list[int]] = {}

    def submit(self, spec: CellSpec, seeds: list[int]) -> Any:
        ref = self._task.remote(spec.to_dict(), list(seeds), self.data_dir, self.checkpoint_dir)
        self._seeds[ref] = list(seeds)
        return ref

    def wait(self, handles: list[Any]) -> list[tuple[Any, dict[str, Any]]]:
        from benchmark.executors import environment, failed_result

        ready, _ = self._ray.wait(handles, num_returns=1)
        out = []
        for ref in ready:
            seeds = self._seeds.pop(ref)
            try:
                payload = self._ray.get(ref)
            except self._ray.exceptions.RayError as err:  # retries exhausted: record, go on
                message = f"Ray task failed after retries: {type(err).__name__}: {str(err)[:500]}"
                payload = {"results": [failed_result(s, message).to_dict() for s in seeds],
                           **environment()}
            out.append((ref, payload))
        return out

    def shutdown(self) -> None:
        for ref in list(self._seeds):
            self._ray.cancel(ref, force=True)
        self._seeds.clear()
        if self._started_here:
            self._ray.shutdown()


def _check_reachable(address: str | None, timeout_s: float = 5.0) -> None:
    """Fail fast on a ``host:port`` nobody answers on (Ray itself retries for minutes)."""
    if not address or address == "auto" or "://" in address or ":" not in address:
        return
    import socket

    host, _, port = address.rpartition(":")
    try:
        with socket.create_connection((host, int(port)), timeout=timeout_s):
            return
    except (OSError, ValueError) as err:
        raise UserError(f"no Ray cluster answers at {address} ({err}); start one with `ray start "
                        "--head` there, or check the address", field="--address") from None
