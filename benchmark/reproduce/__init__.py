"""Paper reproductions: ``tbench reproduce NAME [--quick]``.

One module per paper, each declaring ``PAPER`` (:class:`~benchmark.reproduce.paper.Paper`):

* ``yosinski2014`` — layer transferability between class halves (Fig. 2).
* ``ganin2016`` — DANN vs source only vs train on target, proxy A-distance (Table 2).
* ``wang2019`` — negative transfer gap vs source perturbation and target budget.
* ``kumar2022`` — LP-FT against full fine-tuning: shifted target, forgetting.
* ``li2018`` — L2-SP (and BSS, Chen et al. 2019) help most at small budgets.
* ``howard2018`` — ULMFiT's per-block rates and gradual unfreezing forget less.

The last three judge the same runs (``suites/finetuning.yaml``, one store); their shared parts
are :mod:`benchmark.reproduce.finetuning_methods`.

The verdict logic (:mod:`benchmark.reproduce.claims` and each paper's ``claims``) is pure
pandas over the store's runs frame; :mod:`benchmark.reproduce.runner` runs the paper's suite
through the normal grid/store/executor and writes the report and CSV.
"""

from __future__ import annotations

import importlib

from benchmark.errors import UserError
from benchmark.reproduce.paper import Paper

PAPERS = {
    "yosinski2014": "benchmark.reproduce.yosinski2014",
    "ganin2016": "benchmark.reproduce.ganin2016",
    "wang2019": "benchmark.reproduce.wang2019",
    "kumar2022": "benchmark.reproduce.kumar2022",
    "li2018": "benchmark.reproduce.li2018",
    "howard2018": "benchmark.reproduce.howard2018",
}


def names() -> list[str]:
    """Every reproducible paper, by CLI name."""
    return list(PAPERS)


def get(name: str) -> Paper:
    """The :class:`Paper` called ``name``; a ``UserError`` listing the known ones otherwise."""
    if name not in PAPERS:
        import difflib

        close = difflib.get_close_matches(name, list(PAPERS), n=1, cutoff=0.5)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UserError(f"no reproduction called {name!r}{hint}; choose one of {', '.join(PAPERS)}",
                        field="NAME")
    return importlib.import_module(PAPERS[name]).PAPER
