"""Verdicts of the fine-tuning pages (kumar2022, li2018, howard2018) on CONSTRUCTED runs (no JAX).

Accuracies and forgetting are exact formulas plus a fixed per-seed wobble, so each verdict is
known: the pattern the papers claim must read ``reproduced``, its opposite ``refuted``, and
runs that record no forgetting ``not measured``. The permuted (negative-transfer) source is
present with the opposite pattern and must not sway the clean-source claims.
"""

from __future__ import annotations

from test_reproduce_claims import SEEDS, WOBBLE, frame, verdicts

from benchmark.reproduce import claims as C
from benchmark.reproduce import finetuning_methods as F
from benchmark.reproduce import get
from benchmark.reproduce.runner import paper_suite

SOURCES = ("font_digits", "font_digits@label_permutation=1")
TARGETS = ("uci_digits", "uci_digits_m")
BUDGETS = (10, -1)
METHODS = ("scratch", "finetune_full", "lp_ft", "l2sp", "bss", "discriminative_lr", "gradual_unfreeze")


def runs(acc_gain, forget_less, *, with_forgetting=True):
    """acc_gain(method, target, budget) and forget_less(method) for the clean source; the permuted
    source gets the opposite signs."""
    rows = []
    for source in SOURCES:
        flip = 1 if F.clean_source(source) else -1
        for target in TARGETS:
            for b in BUDGETS:
                for m in METHODS:
                    for seed, w in zip(SEEDS, WOBBLE, strict=True):
                        if m == "scratch":
                            rows.append(dict(source=None, target=target, strategy=m, lpc=b, seed=seed,
                                             accuracy=0.5 + w))
                            continue
                        gain = 0.0 if m == "finetune_full" else flip * acc_gain(m, target, b)
                        forgetting = 0.3 - (0.0 if m == "finetune_full" else flip * forget_less(m))
                        rows.append(dict(source=source, target=target, strategy=m, lpc=b, seed=seed,
                                         accuracy=0.7 + gain + w,
                                         extras={"forgetting": forgetting + w} if with_forgetting else {}))
    return frame(rows)


def judged(name, r):
    paper = get(name)
    return verdicts(paper.claims(paper.tidy(r)))


def papers_pattern(m, target, b):
    if m == "lp_ft":
        return 0.05 if target.endswith("_m") else 0.0
    if m in ("l2sp", "bss"):
        return 0.06 if b == 10 else 0.01
    return 0.0


def test_the_papers_pattern_is_reproduced_on_every_page():
    r = runs(papers_pattern, lambda m: 0.1)
    assert judged("kumar2022", r) == {"lpft_beats_ft_shifted": C.REPRODUCED, "lpft_forgets_less": C.REPRODUCED}
    assert set(judged("li2018", r).values()) == {C.REPRODUCED}
    assert set(judged("howard2018", r).values()) == {C.REPRODUCED}


def test_the_opposite_pattern_is_refuted():
    r = runs(lambda m, t, b: -papers_pattern(m, t, b) - (0.05 if m == "lp_ft" else 0.0), lambda m: -0.1)
    assert set(judged("kumar2022", r).values()) == {C.REFUTED}
    assert judged("li2018", r) == {"l2sp_helps_small": C.REFUTED, "l2sp_gain_shrinks": C.REFUTED,
                                   "bss_helps_small": C.REFUTED, "bss_gain_shrinks": C.REFUTED}
    assert set(judged("howard2018", r).values()) == {C.REFUTED}


def test_gain_that_does_not_shrink_is_no_evidence_and_missing_forgetting_is_not_measured():
    r = runs(lambda m, t, b: 0.04 if m in ("l2sp", "bss") else 0.0, lambda m: 0.0, with_forgetting=False)
    li = judged("li2018", r)
    assert li["l2sp_helps_small"] == C.REPRODUCED and li["l2sp_gain_shrinks"] == C.NO_EVIDENCE
    assert set(judged("howard2018", r).values()) == {C.NOT_MEASURED}
    assert judged("kumar2022", r)["lpft_forgets_less"] == C.NOT_MEASURED


def test_claims_read_the_clean_source_only():
    t = F.tidy(runs(papers_pattern, lambda m: 0.1))
    cases = F.beats_cases(t, "lp_ft", value="forgetting")
    assert [c.label for c in cases] == [f"font_digits → {x}, {b}/class" for x in TARGETS for b in ("10", "all")]
    assert all(len(c.values) == len(SEEDS) for c in cases)


def test_the_three_pages_share_one_suite_and_its_store():
    suites = {paper_suite(get(n), quick=False)[0].name for n in ("kumar2022", "li2018", "howard2018")}
    assert suites == {"finetuning"}
    table = get("li2018").table(F.tidy(runs(papers_pattern, lambda m: 0.1)))
    row = table[(table["pair"] == "font_digits → uci_digits") & (table["budget"] == "10") & (table["method"] == "l2sp")]
    assert row["seeds"].item() == len(SEEDS) and abs(row["forgetting"].item() - 0.2) < 1e-9


def test_the_trade_off_figure_has_one_panel_per_clean_source_pair():
    t = F.tidy(runs(papers_pattern, lambda m: 0.1))
    fig = get("kumar2022").figure(t)
    assert [ax.get_title() for ax in fig.axes] == [f"font_digits → {x}" for x in TARGETS]
    # finetune_full, lp_ft at two budgets: 4 error-bar points per panel
    assert all(len(ax.containers) == 4 for ax in fig.axes)


def test_an_empty_store_is_not_measured_on_every_page():
    """`tbench reproduce kumar2022 --report-only` before any run: every claim not measured (the
    clean-source filter of an empty frame once selected no columns and raised KeyError)."""
    empty = runs(papers_pattern, lambda m: 0.1).iloc[:0]
    for name in ("kumar2022", "li2018", "howard2018"):
        paper = get(name)
        t = paper.tidy(empty)
        assert set(verdicts(paper.claims(t)).values()) == {C.NOT_MEASURED}
        assert paper.table(t).empty
