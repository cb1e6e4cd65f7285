"""What a reproduction module declares: the paper, how its runs map to its conditions, its claims.

Each paper module (``yosinski2014``, ``ganin2016``, ``wang2019``) defines ``PAPER = Paper(...)``.
The runner (:mod:`benchmark.reproduce.runner`) loads ``suites/papers/<name>.yaml``, applies
``quick`` for ``--quick``, runs the grid through the normal store, then calls
``tidy(runs) -> frame``, ``claims(frame) -> [Claim]`` and ``figure(frame) -> Figure``. All three
are pure functions of the store's runs frame (no JAX), so tests can feed constructed results
with known verdicts.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

import pandas as pd

from benchmark.reproduce.claims import Claim


@dataclasses.dataclass(frozen=True)
class Paper:
    """One reproducible paper.

    name: CLI name and file stem (``suites/papers/<name>.yaml``, ``reports/papers/<name>.html``).
    title / citation: shown at the top of the report.
    setup: the paper's own experiment, in one paragraph.
    differences: where our data or scale differ from the paper, said plainly.
    quick: overrides merged into the suite for ``--quick`` (top-level keys of the suite schema;
        mappings such as ``train`` are merged key by key). Shown in the report.
    tidy: ``runs_frame -> frame`` of the paper's conditions (one row per run).
    claims: ``tidy frame -> [Claim]``.
    figure: ``tidy frame -> matplotlib Figure`` mirroring the paper's figure; ``figure_caption``.
    table: ``tidy frame -> DataFrame`` of per-condition means with CIs (CSV and HTML).
    keep: ``CellSpec -> bool``; cells of the suite's grid the paper does not use are left out
        (a suite crosses every strategy with every budget; DANN needs budget 0 only, the
        train-on-target bound ``all`` only). ``None`` keeps every cell.
    tuned: every default of the page's conditions that was chosen by looking at results, and on
        what data (shown on the page; empty only when the history shows none).
    changes: which verdicts changed since the 2026-11-23 pages (session 3), and why.
    suite: the suite file relative to ``suites/papers`` (default ``<name>.yaml``); pages that
        judge the same runs name one suite (``../finetuning.yaml``) and so share its store.
    registered: when the claims were fixed before any run, how that can be checked (shown on the
        page instead of the "revised after results were seen" notice); empty otherwise.
    """

    name: str
    title: str
    citation: str
    setup: str
    differences: tuple[str, ...]
    quick: dict[str, Any]
    tidy: Callable[[pd.DataFrame], pd.DataFrame]
    claims: Callable[[pd.DataFrame], list[Claim]]
    figure: Callable[[pd.DataFrame], Any]
    figure_caption: str
    table: Callable[[pd.DataFrame], pd.DataFrame]
    keep: Callable[[Any], bool] | None = None
    tuned: tuple[str, ...] = ()
    changes: tuple[str, ...] = ()
    suite: str = ""
    registered: str = ""
