"""Run a paper's suite through the normal machinery, then judge its claims and write outputs.

``suites/papers/<name>.yaml`` → (``--quick``: the paper's ``quick`` overrides merged in, suite
renamed ``<name>-quick``) → :func:`benchmark.config.resolve_suite` → grid → store
``results/papers/<suite name>.sqlite`` (resumable: finished runs are never redone) → executor →
``tidy`` / ``claims`` / ``figure`` → ``results/papers/<name>.csv`` and
``reports/papers/<name>.html``. Only the runs of the suite's current cells are judged (by run id,
which addresses the cell's full configuration and the seed); others in the store are ignored.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import sys
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from benchmark.errors import UserError
from benchmark.reproduce import get
from benchmark.reproduce.claims import Claim
from benchmark.reproduce.paper import Paper
from benchmark.reproduce.render import write_csv, write_html

SUITES_DIR = Path("suites/papers")
REPORTS_DIR = Path("reports/papers")
RESULTS_DIR = Path("results/papers")


def merge_overrides(raw: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """``raw`` with ``overrides`` applied: mapping values merge key by key, the rest replace."""
    out = copy.deepcopy(raw)
    for key, value in overrides.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = {**out[key], **copy.deepcopy(value)}
        else:
            out[key] = copy.deepcopy(value)
    return out


def suite_path(paper: Paper, suites_dir: Path = SUITES_DIR) -> Path:
    return Path(os.path.normpath(Path(suites_dir) / (paper.suite or f"{paper.name}.yaml")))


def load_raw(paper: Paper, suites_dir: Path = SUITES_DIR) -> dict[str, Any]:
    """The paper's suite YAML as a mapping (validated later by ``resolve_suite``)."""
    path = suite_path(paper, suites_dir)
    if not path.is_file():
        raise UserError(f"the suite of reproduction {paper.name!r} is missing; restore it from git "
                        "or pass --suites-dir", file=str(path))
    try:
        raw = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise UserError(f"malformed YAML ({str(err).splitlines()[0]}); fix the syntax", file=str(path)) from None
    if not isinstance(raw, dict):
        raise UserError("a suite is a mapping of fields (name, targets, strategies, ...)", file=str(path))
    return raw


def paper_suite(paper: Paper, *, quick: bool, suites_dir: Path = SUITES_DIR,
                extra_overrides: dict[str, Any] | None = None):
    """The resolved :class:`benchmark.config.Suite` and the overrides applied (None if full)."""
    from benchmark.config import resolve_suite

    raw = load_raw(paper, suites_dir)
    overrides: dict[str, Any] = {}
    if quick:
        overrides = merge_overrides(overrides, paper.quick)
    if extra_overrides:
        overrides = merge_overrides(overrides, extra_overrides)
    if overrides:
        raw = merge_overrides(raw, overrides)
        raw["name"] = f"{raw.get('name', paper.name)}-quick" if quick else f"{raw.get('name', paper.name)}-custom"
    return resolve_suite(raw, file=str(suite_path(paper, suites_dir))), (overrides or None)


def paper_grid(paper: Paper, suite: Any):
    """The suite's grid without the cells the paper does not use (``Paper.keep``)."""
    from benchmark.grid import build_grid

    grid = build_grid(suite)
    if paper.keep is None:
        return grid
    return dataclasses.replace(grid, runs=tuple(r for r in grid.runs if paper.keep(r.spec)))


@dataclasses.dataclass
class Outcome:
    """What one ``tbench reproduce`` did: its claims, files and the grid run summary."""

    claims: list[Claim]
    html: Path
    csv: Path
    store: Path
    runs: pd.DataFrame
    summary: Any = None


def judge(paper: Paper, runs: pd.DataFrame) -> tuple[list[Claim], pd.DataFrame, Any]:
    """``(claims, per-condition table, figure)`` from the store's runs frame (pure, no JAX)."""
    tidy = paper.tidy(runs)
    return paper.claims(tidy), paper.table(tidy), paper.figure(tidy)


def reproduce(name: str, *, quick: bool = False, run: bool = True, store_path: Path | None = None,
              suites_dir: Path = SUITES_DIR, reports_dir: Path = REPORTS_DIR,
              results_dir: Path = RESULTS_DIR, data_dir: str | None = None,
              executor: str = "local", address: str | None = None, listener: Any = None,
              extra_overrides: dict[str, Any] | None = None) -> Outcome:
    """Run (unless ``run=False``) and judge reproduction ``name``; write its CSV and HTML."""
    from benchmark.store import Store

    paper = get(name)
    suite, overrides = paper_suite(paper, quick=quick, suites_dir=suites_dir, extra_overrides=extra_overrides)
    store_path = Path(store_path) if store_path else Path(results_dir) / f"{suite.name}.sqlite"
    store_path.parent.mkdir(parents=True, exist_ok=True)
    summary = None
    grid = paper_grid(paper, suite)
    with Store(store_path) as store:
        if run:
            from benchmark.executors import make_executor, run_grid
            summary = run_grid(grid, store, make_executor(executor, address=address, data_dir=data_dir),
                               listener=listener)
        # One identity per cell: only runs of the suite's cells as they are now are judged, with
        # or without training first; runs of an earlier version of the suite are never pooled.
        runs = store.runs_frame()
        runs = runs[runs["run_id"].isin({r.run_id for r in grid.runs})].reset_index(drop=True)
    claims, conditions, figure = judge(paper, runs)
    csv = write_csv(paper, claims, conditions, Path(results_dir))
    html = write_html(paper, claims, conditions, figure, Path(reports_dir) / f"{paper.name}.html",
                      runs=runs, suite_path=str(suite_path(paper, suites_dir)), store_path=str(store_path),
                      overrides=overrides)
    return Outcome(claims, html, csv, store_path, runs, summary)


class PrintListener:
    """One line per finished cell on stderr (``tbench reproduce`` progress)."""

    def __init__(self) -> None:
        self.total = 0
        self.done = 0

    def start(self, total: int, finished_before: int) -> None:
        self.total, self.done = total, finished_before
        print(f"{total} runs, {finished_before} already in the store", file=sys.stderr, flush=True)

    def begin(self, spec: Any, seeds: list[int]) -> None:
        pass

    def finish(self, spec: Any, results: list[Any]) -> None:
        self.done += len(results)
        accs = ", ".join("—" if r.accuracy is None else f"{r.accuracy:.3f}" for r in results)
        print(f"[{self.done}/{self.total}] {spec.strategy_label} {spec.source or '∅'} → {spec.target} "
              f"budget {spec.labels_per_class}: {accs}", file=sys.stderr, flush=True)
