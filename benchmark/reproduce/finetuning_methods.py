"""What the fine-tuning pages share (issue 16): one suite, one tidy frame, claim builders, figure.

The pages ``kumar2022`` (LP-FT), ``li2018`` (L2-SP and BSS) and ``howard2018`` (ULMFiT's
per-block rates and gradual unfreezing) judge claims on the same runs: ``suites/finetuning.yaml``
(font digits, clean and label-permuted, → UCI digits and their photo-blended variant, at 10
labels per class and all, five seeds), stored once in ``results/papers/finetuning.sqlite``
(the suite's name), so ``tbench run suites/finetuning.yaml --store results/papers/finetuning.sqlite``
and the three ``tbench reproduce`` calls train each run once.

Every claim compares a method with ``finetune_full`` on the same (pair, budget, seed), on
target accuracy or on *forgetting* (source-test accuracy before transfer minus after, recorded
by the engine for every run that starts from a source; positive: the source task got worse).
Claims speak about the **clean source** only (the label-permuted source is the suite's
negative-transfer arm: what it "forgets" is a permuted task); the pages' tables show every pair.

Pure pandas; no JAX.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from benchmark.analysis.forgetting import forgetting_values
from benchmark.analysis.transfer import budget_sort_key, format_budget
from benchmark.reproduce import claims as C
from benchmark.reproduce.runs import condition_table, dataset_ops, ok

SUITE = "../finetuning.yaml"
"""The pages' suite, relative to ``suites/papers`` (``suites/finetuning.yaml``)."""
FULL_FT = "finetune_full"
SHIFTED_SUFFIX = "_m"
"""A target whose base name ends so is the photo-blended (shifted) variant of a built-in."""
TIDY_COLUMNS = ["pair", "source", "target", "method", "labels_per_class", "budget", "seed", "accuracy",
                "forgetting", "status"]
METHOD_ORDER = ("scratch", "linear_probe", "finetune_full", "lp_ft", "l2sp", "bss", "discriminative_lr",
                "gradual_unfreeze", "surgical")


def clean_source(source: str | None) -> bool:
    """A source whose labels are its own (no ``label_*`` op): the sources the claims speak about."""
    return isinstance(source, str) and bool(source) and not any(op.startswith("label_") for op in dataset_ops(source))


def shifted_target(target: str) -> bool:
    return target.split("@", 1)[0].endswith(SHIFTED_SUFFIX)


def tidy(runs: pd.DataFrame) -> pd.DataFrame:
    """Runs → one row per run: ``pair, source, target, method, labels_per_class, budget, seed,
    accuracy, forgetting, status`` (``forgetting`` NaN where the run records none: scratch)."""
    if runs.empty:
        return pd.DataFrame(columns=TIDY_COLUMNS)
    method = runs["strategy_label"] if "strategy_label" in runs else runs["strategy"]
    source = [s if isinstance(s, str) and s else None for s in runs["source"]]
    out = pd.DataFrame({
        "pair": [f"{s} → {t}" if s else f"(none) → {t}" for s, t in zip(source, runs["target"], strict=True)],
        "source": source, "target": runs["target"], "method": method,
        "labels_per_class": runs["labels_per_class"].astype(int),
        "budget": [format_budget(b) for b in runs["labels_per_class"]],
        "seed": runs["seed"].astype(int), "accuracy": pd.to_numeric(runs["accuracy"], errors="coerce"),
        "forgetting": forgetting_values(runs).to_numpy(float), "status": runs["status"],
    })
    return out[TIDY_COLUMNS].reset_index(drop=True)


def _rows(t: pd.DataFrame, column: str, keep) -> pd.DataFrame:
    """The rows of ``t`` whose ``column`` value ``keep`` accepts (a boolean mask, so an empty frame
    keeps its columns: a list of no booleans would select no columns instead)."""
    return t[np.fromiter((bool(keep(v)) for v in t[column]), dtype=bool, count=len(t))]


def _groups(t: pd.DataFrame, *, shifted_only: bool = False, budgets: Sequence[int] | None = None):
    """``(label, frame)`` per (clean-source pair, budget), budgets in order."""
    t = _rows(t, "source", clean_source)
    if shifted_only:
        t = _rows(t, "target", shifted_target)
    if budgets is not None:
        t = t[t["labels_per_class"].isin(list(budgets))]
    keys = sorted({(p, b) for p, b in zip(t["pair"], t["labels_per_class"], strict=True)},
                  key=lambda k: (k[0], budget_sort_key(k[1])))
    for pair, b in keys:
        yield f"{pair}, {format_budget(b)}/class", t[(t["pair"] == pair) & (t["labels_per_class"] == b)]


def beats_cases(t: pd.DataFrame, method: str, *, value: str = "accuracy", shifted_only: bool = False,
                budgets: Sequence[int] | None = None) -> tuple[C.Case, ...]:
    """Per clean-source (pair, budget): per seed ``method − finetune_full`` on accuracy (claimed > 0),
    or ``finetune_full − method`` on forgetting (``method`` forgets less: claimed > 0)."""
    t = ok(t)
    cases = []
    for label, g in _groups(t, shifted_only=shifted_only, budgets=budgets):
        if value == "accuracy":
            pairs = C.paired(g, g["method"] == method, g["method"] == FULL_FT)
        else:
            pairs = C.paired(g, g["method"] == FULL_FT, g["method"] == method, value=value)
        cases.append(C.Case.of(label, C.differences(pairs), +1))
    return tuple(cases)


def shrink_cases(t: pd.DataFrame, method: str, small: int, large: int) -> tuple[C.Case, ...]:
    """Per clean-source pair: per seed ``gain(small budget) − gain(large budget)`` where
    ``gain = accuracy(method) − accuracy(finetune_full)`` on the same seed (claimed > 0: the
    method's gain over fine-tuning shrinks as target data grows)."""
    t = _rows(ok(t), "source", clean_source)
    cases = []
    for pair, g in t.groupby("pair", sort=True):
        gains = {}
        for b in (small, large):
            h = g[g["labels_per_class"] == b]
            pairs = C.paired(h, h["method"] == method, h["method"] == FULL_FT)
            gains[b] = pd.Series(C.differences(pairs), index=pairs["seed"].to_numpy())
        both = pd.concat([gains[small].rename("s"), gains[large].rename("l")], axis=1, join="inner")
        cases.append(C.Case.of(f"{pair}: gain at {format_budget(small)}/class − at {format_budget(large)}/class",
                               (both["s"] - both["l"]).to_numpy(float), +1))
    return tuple(cases)


def table(t: pd.DataFrame) -> pd.DataFrame:
    """Per (pair, budget, method): accuracy and forgetting, each mean with its 95% CI over seeds."""
    keys = ["pair", "budget", "method"]
    order = {"method": list(METHOD_ORDER), "budget": _budget_labels(t)}
    acc = condition_table(t, keys, order=order)
    forg = condition_table(t, keys, value="forgetting", order=order)
    forg = forg.rename(columns={"mean": "forgetting", "low": "forgetting_low", "high": "forgetting_high",
                                "seeds": "forgetting_seeds"}).drop(columns=["not_ok"])
    out = acc.rename(columns={"mean": "accuracy", "low": "accuracy_low", "high": "accuracy_high"})
    return out.merge(forg, on=keys, how="left")


def _budget_labels(t: pd.DataFrame) -> list[str]:
    """The frame's budgets as displayed (``10``, ``all``), smallest first."""
    return [format_budget(b) for b in sorted({int(b) for b in t["labels_per_class"]}, key=budget_sort_key)]


def figure(t: pd.DataFrame, methods: Sequence[str]):
    """The trade-off users choose on: mean forgetting (x) vs target accuracy (y) per method, one
    panel per clean-source pair, both budgets (marker), 95% CIs both ways."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tab = table(t)
    clean = np.array([clean_source(p.split(" → ")[0]) for p in tab["pair"]], dtype=bool)
    tab = tab[tab["method"].isin(list(methods)).to_numpy() & clean]
    pairs = sorted(tab["pair"].unique()) or ["(no runs)"]
    fig, axes = plt.subplots(1, len(pairs), figsize=(4.6 * len(pairs), 4.0), squeeze=False)
    colors = dict(zip(methods, plt.get_cmap("tab10").colors, strict=False))
    markers = ["o", "s", "^", "D"]
    budgets = [b for b in _budget_labels(t) if b in set(tab["budget"])]
    for ax, pair in zip(axes[0], pairs, strict=True):
        for i, budget in enumerate(budgets):
            for method in methods:
                r = tab[(tab["pair"] == pair) & (tab["budget"] == budget) & (tab["method"] == method)]
                if r.empty or not np.isfinite(r["forgetting"].iloc[0]):
                    continue
                r = r.iloc[0]
                xerr = np.nan_to_num([[r["forgetting"] - r["forgetting_low"]], [r["forgetting_high"] - r["forgetting"]]])
                yerr = np.nan_to_num([[r["accuracy"] - r["accuracy_low"]], [r["accuracy_high"] - r["accuracy"]]])
                ax.errorbar(r["forgetting"], r["accuracy"], xerr=xerr, yerr=yerr, fmt=markers[i % 4],
                            color=colors[method], capsize=2, label=f"{method}, {budget}/class")
        ax.set_title(pair, fontsize=10)
        ax.set_xlabel("forgetting (source test accuracy lost)")
        ax.grid(alpha=0.3)
    axes[0][0].set_ylabel("target test accuracy")
    if axes[0][-1].get_legend_handles_labels()[0]:
        axes[0][-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.0, 0.5), frameon=False)
    fig.tight_layout()
    return fig


DIFFERENCES = (
    "Data and model: rendered font digits (and the same with its labels permuted, a source built "
    "for negative transfer) → scikit-learn's UCI handwritten digits and their photo-blended "
    "variant, 28×28 grey, a LeNet of width 8 pre-trained for 300 steps and transferred for 120: "
    "not the papers' ImageNet-scale backbones and datasets.",
    "Every method keeps its declared defaults (backbone at 0.1× the head's rate where it has one; "
    "`tbench strategies` lists them); none was tuned on this page's runs. Each run is scored at "
    "its last step on the target test split; the validation split (20% of each class's labels) "
    "is held out of training and chose nothing here (no sweep in this suite).",
    "Forgetting is measured on the source's test split, before transfer and after it, through a "
    "linear probe fit on source-train features of the backbone (the same recipe both times): "
    "the papers measure out-of-distribution or source accuracy in their own ways.",
)
REGISTERED = ("Claims, cases and verdict rules of this page were committed before any run of "
              "suites/finetuning.yaml (git history of benchmark/reproduce/); they were not revised "
              "after the runs.")


def budget_ends(t: pd.DataFrame) -> tuple[int, int] | None:
    """The smallest and the largest label budget of the runs (``all`` is the largest), or None
    when there are fewer than two."""
    budgets = sorted({int(b) for b in t["labels_per_class"] if int(b) != 0}, key=budget_sort_key)
    return (budgets[0], budgets[-1]) if len(budgets) >= 2 else None
