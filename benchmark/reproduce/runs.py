"""Small helpers over the store's runs frame shared by the paper modules (no JAX)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd

from benchmark.analysis.stats import mean_ci


def strategy_params(row: pd.Series) -> dict:
    """The run's resolved strategy parameters, read from its stored config (``config.cell``)."""
    config = row.get("config") if hasattr(row, "get") else None
    if isinstance(config, dict):
        cell = config.get("cell", config)
        params = cell.get("strategy_params") if isinstance(cell, dict) else None
        if isinstance(params, dict):
            return params
    return {}


def dataset_ops(name: str | None) -> dict[str, str | None]:
    """``font_digits@label_noise=0.4,invert`` → ``{"label_noise": "0.4", "invert": None}``."""
    if not name or "@" not in name:
        return {}
    ops: dict[str, str | None] = {}
    for part in name.split("@", 1)[1].split(","):
        key, _, value = part.partition("=")
        ops[key.strip()] = value.strip() if value else None
    return ops


def base_name(name: str | None) -> str | None:
    """``font_digits@label_noise=0.4`` → ``font_digits``."""
    return None if name is None else name.split("@", 1)[0].strip()


def ok(frame: pd.DataFrame) -> pd.DataFrame:
    """Finished runs with a finite accuracy (``status == "ok"``); diverged/failed are counted apart."""
    acc = pd.to_numeric(frame["accuracy"], errors="coerce")
    return frame[(frame["status"] == "ok") & np.isfinite(acc)].assign(accuracy=acc)


def condition_table(frame: pd.DataFrame, keys: Sequence[str], *, value: str = "accuracy",
                    order: dict[str, Sequence] | None = None) -> pd.DataFrame:
    """Mean of ``value`` with its Student-t 95% CI over seeds per group of ``keys``.

    Columns: ``*keys, mean, low, high, seeds`` (finished runs) and ``not_ok`` (diverged or
    failed runs of the group, shown so a missing seed is never silent). Accuracy intervals are
    clipped to [0, 1] (as in ``tbench report``): a t-interval over 3 seeds can overshoot.
    """
    rows = []
    for key, g in frame.groupby(list(keys), sort=True, dropna=False):
        key = key if isinstance(key, tuple) else (key,)
        good = ok(g) if "status" in g else g
        est = mean_ci(pd.to_numeric(good[value], errors="coerce").to_numpy(float))
        low, high = est.low, est.high
        if value == "accuracy" and est.has_ci:
            low, high = max(0.0, low), min(1.0, high)
        rows.append({**dict(zip(keys, key, strict=True)), "mean": est.mean, "low": low,
                     "high": high, "seeds": est.n, "not_ok": int(len(g) - len(good))})
    out = pd.DataFrame(rows, columns=[*keys, "mean", "low", "high", "seeds", "not_ok"])
    for col, values in (order or {}).items():
        rank = {v: i for i, v in enumerate(values)}
        out = out.assign(**{f"_{col}": out[col].map(lambda v, r=rank: r.get(v, math.inf))})
    sort_cols = [f"_{c}" if c in (order or {}) else c for c in keys]
    out = out.sort_values(sort_cols, kind="stable").drop(columns=[f"_{c}" for c in (order or {})])
    return out.reset_index(drop=True)
