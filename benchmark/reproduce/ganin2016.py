"""Ganin, Ustinova, Ajakan, Germain, Larochelle, Laviolette, Marchand & Lempitsky 2016,
"Domain-Adversarial Training of Neural Networks" (JMLR 17(59)), Table 2 and §5.1.5.

Conditions per (source → target) pair, all without target labels except the upper bound:

* ``source_only``: trained on labelled source, tested on target (budget 0).
* ``dann``: labelled source + unlabelled target with gradient reversal (budget 0).
* ``dann_no_adversary``: the same DANN schedule with the domain loss weight at 0 (budget 0):
  the arm that isolates the adversarial term. ``source_only`` is the pretrained model as is, so
  "source only < DANN" mixes the adversarial term with DANN's extra source training; this arm
  trains on the source for exactly DANN's steps, without the adversary.
* ``train_on_target``: ``scratch`` with every target label (budget ``all``): the upper bound.

Claims: (0) the adversarial term helps: DANN > the same schedule without it (the mechanism, our
addition); (1) source only < DANN and (2) DANN < train on target on every pair; (3) DANN closes a
substantial share of the gap ``(DANN − source only) / (train on target − source only)``;
(4) the proxy A-distance between source and target features is lower under DANN than with the
source-only model (read from the runs' ``extras["proxy_a_distance"]``).
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from benchmark.reproduce import claims as C
from benchmark.reproduce.claims import Claim
from benchmark.reproduce.paper import Paper
from benchmark.reproduce.runs import base_name, condition_table, ok, strategy_params

SOURCE_ONLY, DANN, TRAIN_ON_TARGET = "source_only", "dann", "train_on_target"
DANN_NO_ADVERSARY = "dann_no_adversary"
METHODS = (SOURCE_ONLY, DANN_NO_ADVERSARY, DANN, TRAIN_ON_TARGET)
TIDY_COLUMNS = ["pair", "method", "seed", "accuracy", "pad", "status"]

# Table 2 of the paper (accuracy on the target test set): source only, DANN, train on target.
PUBLISHED = {
    "MNIST → MNIST-M": (0.5225, 0.7666, 0.9596),
    "Syn Numbers → SVHN": (0.8674, 0.9109, 0.9220),
    "SVHN → MNIST": (0.5490, 0.7385, 0.9942),
    "Syn Signs → GTSRB": (0.7900, 0.8865, 0.9980),
}
# Which published pair each of our (source base, target base) pairs mirrors.
ANALOGUES = {
    ("uci_digits", "uci_digits_m"): "MNIST → MNIST-M",
    ("font_digits", "font_digits_m"): "MNIST → MNIST-M",
    ("mnist", "mnist_m"): "MNIST → MNIST-M",
    ("font_digits", "uci_digits"): "Syn Numbers → SVHN",
    ("font_digits", "svhn_cropped"): "Syn Numbers → SVHN",
    ("svhn_cropped", "mnist"): "SVHN → MNIST",
}
SMALLEST_PUBLISHED_SHARE = min((d - s) / (t - s) for s, d, t in PUBLISHED.values())


def keep(spec) -> bool:
    """Cells Table 2 uses: adaptation without target labels, scratch with all of them."""
    if spec.strategy in (SOURCE_ONLY, DANN):
        return spec.labels_per_class == 0
    return spec.strategy != "scratch" or spec.labels_per_class == -1


def pair_name(source: str, target: str) -> str:
    return f"{source} → {target}"


def analogue(pair: str) -> str | None:
    """The published pair ours mirrors (``font_digits → uci_digits`` → ``Syn Numbers → SVHN``)."""
    source, _, target = pair.partition(" → ")
    return ANALOGUES.get((base_name(source), base_name(target)))


def _pad(extras: object) -> float:
    if isinstance(extras, dict) and extras.get("proxy_a_distance") is not None:
        return float(extras["proxy_a_distance"])
    return math.nan


def tidy(runs: pd.DataFrame) -> pd.DataFrame:
    """Runs → ``pair, method, seed, accuracy, pad, status``; ``train_on_target`` runs (scratch,
    all labels) are repeated under every pair that has their target."""
    rows = []
    adapted = runs[runs["strategy"].isin([SOURCE_ONLY, DANN]) & (runs["labels_per_class"] == 0)
                   & runs["source"].notna()]
    pairs = sorted({(s, t) for s, t in zip(adapted["source"], adapted["target"], strict=True)})
    for _, r in adapted.iterrows():
        method = r["strategy"]
        if method == DANN and strategy_params(r).get("domain_weight") == 0:
            method = DANN_NO_ADVERSARY
        rows.append({"pair": pair_name(r["source"], r["target"]), "method": method,
                     "seed": int(r["seed"]), "accuracy": r["accuracy"],
                     "pad": _pad(r.get("extras")), "status": r["status"]})
    upper = runs[(runs["strategy"] == "scratch") & (runs["labels_per_class"] == -1)]
    for source, target in pairs:
        for _, r in upper[upper["target"] == target].iterrows():
            rows.append({"pair": pair_name(source, target), "method": TRAIN_ON_TARGET,
                         "seed": int(r["seed"]), "accuracy": r["accuracy"], "pad": math.nan,
                         "status": r["status"]})
    return pd.DataFrame(rows, columns=TIDY_COLUMNS)


def _published_text(pairs: list[str], column: int | None = None) -> str:
    names = sorted({a for a in map(analogue, pairs) if a}) or ["SVHN → MNIST"]
    parts = []
    for name in names:
        s, d, t = PUBLISHED[name]
        parts.append(f"{name}: {s:.4f} / {d:.4f} / {t:.4f}" if column is None else
                     f"{name}: {(d - s) / (t - s):.0%}")
    return "; ".join(parts)


def _ordering(t: pd.DataFrame, lower: str, higher: str, claim_id: str, statement: str) -> C.ClaimSpec:
    cases = [C.Case.of(pair, C.differences(C.paired(g, g["method"] == higher, g["method"] == lower)), +1)
             for pair, g in t.groupby("pair")]
    pairs = sorted(t["pair"].unique())
    return C.ClaimSpec(
        claim_id, statement,
        "source only / DANN / train on target (Table 2) — " + _published_text(pairs),
        f"per pair, paired by seed: adjusted t-CI of ({higher} − {lower}) > 0 on every pair → "
        "reproduced; < 0 on any pair → refuted",
        tuple(cases), measured_prefix=f"{higher} − {lower}: ",
    )


def share_of_gap(g: pd.DataFrame) -> np.ndarray:
    """Per seed ``(dann − source_only) / (train_on_target − source_only)`` for one pair: float[seeds].

    Seeds where train on target does not beat source only (no gap to close) are dropped.
    """
    wide = g.pivot_table(index="seed", columns="method", values="accuracy", aggfunc="mean")
    if not {SOURCE_ONLY, DANN, TRAIN_ON_TARGET} <= set(wide.columns):
        return np.array([])
    gap = wide[TRAIN_ON_TARGET] - wide[SOURCE_ONLY]
    share = (wide[DANN] - wide[SOURCE_ONLY]) / gap.where(gap > 0)
    return share.dropna().to_numpy(float)


def _claim_gap(t: pd.DataFrame) -> C.ClaimSpec:
    cases = [C.Case.of(pair, share_of_gap(g), +1, min_upper=SMALLEST_PUBLISHED_SHARE, digits=2)
             for pair, g in t.groupby("pair")]
    pairs = sorted(t["pair"].unique())
    return C.ClaimSpec(
        "gap_closed", "DANN closes a substantial share of the source-only → train-on-target gap.",
        "share of the gap closed — " + _published_text(pairs, column=1)
        + f" (smallest published share: {SMALLEST_PUBLISHED_SHARE:.0%})",
        "per pair: per-seed share; adjusted t-CI > 0 with its upper end ≥ the smallest published "
        f"share ({SMALLEST_PUBLISHED_SHARE:.2f}) on every pair → reproduced; CI < 0 on any pair → refuted",
        tuple(cases), measured_prefix="share closed: ",
    )


def _claim_pad(t: pd.DataFrame) -> C.ClaimSpec:
    cases = [C.Case.of(pair, C.differences(C.paired(g, g["method"] == DANN, g["method"] == SOURCE_ONLY,
                                                    value="pad")), -1)
             for pair, g in t.groupby("pair")]
    return C.ClaimSpec(
        "pad_falls", "DANN features make source and target harder to tell apart (lower proxy A-distance).",
        "§5.1.5 and Fig. 3: the proxy A-distance between domains is lower on DANN's representation "
        "than on a standard network's (same architecture, no adaptation).",
        "per pair, paired by seed: adjusted t-CI of PAD(dann) − PAD(source_only) < 0 → reproduced; > 0 → refuted",
        tuple(cases), measured_prefix="PAD(DANN) − PAD(source only): ",
        unmeasured="not recorded: the runs carry no extras['proxy_a_distance']",
    )


def claims(t: pd.DataFrame) -> list[Claim]:
    t = ok(t)
    mechanism = []
    if (t["method"] == DANN_NO_ADVERSARY).any():
        mechanism.append(_ordering(t, DANN_NO_ADVERSARY, DANN, "adversary_helps",
                                   "The adversarial term helps: DANN beats the same schedule with the "
                                   "domain loss weight at 0 (the arm that isolates the mechanism)."))
    return C.judge([
        *mechanism,
        _ordering(t, SOURCE_ONLY, DANN, "source_only_lt_dann", "DANN beats source only on the target."),
        _ordering(t, DANN, TRAIN_ON_TARGET, "dann_lt_train_on_target",
                  "Training on the labelled target beats DANN (the upper bound)."),
        _claim_gap(t),
        _claim_pad(t),
    ])


def table(t: pd.DataFrame) -> pd.DataFrame:
    """Accuracy per (pair, method) with 95% CI, plus the published numbers of the mirrored pair."""
    out = condition_table(t, ["pair", "method"], order={"method": list(METHODS)})
    mirrored = [analogue(p) for p in out["pair"]]
    out["published_pair"] = pd.Series(mirrored, index=out.index, dtype=object)
    column = {SOURCE_ONLY: 0, DANN: 1, TRAIN_ON_TARGET: 2}  # Table 2 has no no-adversary arm
    out["published"] = [PUBLISHED[a][column[m]] if a and m in column else math.nan
                        for a, m in zip(mirrored, out["method"], strict=True)]
    return out


def figure(t: pd.DataFrame):
    """Grouped bars (Table 2 as a figure): accuracy per pair and method, published values hollow."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    tab = table(t)
    pairs = list(dict.fromkeys(tab["pair"]))
    fig, ax = plt.subplots(figsize=(max(5.5, 2.4 * len(pairs) + 1.5), 4.4))
    colors = {SOURCE_ONLY: "#999999", DANN_NO_ADVERSARY: "#9ecae1", DANN: "#2b8cbe", TRAIN_ON_TARGET: "#238b45"}
    width = 0.2
    for j, method in enumerate(METHODS):
        rows = tab[tab["method"] == method].set_index("pair").reindex(pairs)
        x = np.arange(len(pairs)) + (j - (len(METHODS) - 1) / 2) * width
        mean = rows["mean"].to_numpy(float)
        err = np.nan_to_num(np.vstack([mean - rows["low"].to_numpy(float), rows["high"].to_numpy(float) - mean]))
        ax.bar(x, np.nan_to_num(mean), width, yerr=err, capsize=3, color=colors[method],
               label=method.replace("_", " "))
        ax.scatter(x, rows["published"], marker="_", s=300, color="black", zorder=3,
                   label="published (mirrored pair)" if j == 0 else None)
    ax.set_xticks(np.arange(len(pairs)))
    ax.set_xticklabels([f"{p}\n(≈ {analogue(p) or 'no published analogue'})" for p in pairs], fontsize=8)
    ax.set_ylabel("accuracy on the target test split")
    ax.set_ylim(0, 1.05)
    ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=4, frameon=False)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    return fig


DANN_TUNED = (
    "DANN's backbone_lr_scale was 0.1 until 2026-12-02, chosen by looking at target test accuracy "
    "(commit f242f4c) on pairs this page reports. It is now 0.01, re-derived by the rule stated in "
    "that suite's header (written before its runs were launched; committed minutes after they "
    "started): the highest mean source-validation accuracy of {0.01, 0.1, 1.0} over "
    "font_digits → uci_digits_m and uci_digits → uci_digits_m without target labels "
    "(suites/defaults/dann_backbone_lr.yaml, results/defaults/dann_backbone_lr.txt); target test "
    "accuracy chose nothing. The other settings (500 steps, gamma 10, domain weight 1) are the "
    "paper's schedule or this page's earlier versions; none was chosen on this page's test data."
)


PAPER = Paper(
    name="ganin2016",
    title="Domain-Adversarial Training of Neural Networks (DANN)",
    citation=("Y. Ganin, E. Ustinova, H. Ajakan, P. Germain, H. Larochelle, F. Laviolette, "
              "M. Marchand, V. Lempitsky. JMLR 17(59), 2016, Table 2 and §5.1.5."),
    setup=("Unsupervised domain adaptation on digits and signs: MNIST → MNIST-M, Syn Numbers → "
           "SVHN, SVHN → MNIST, Syn Signs → GTSRB. A CNN trained on labelled source and "
           "unlabelled target, the domain classifier attached through a gradient reversal layer "
           "with λ ramped 0 → 1 (λ_p = 2/(1+exp(−10p)) − 1); compared with a source-only network "
           "and a network trained on the labelled target."),
    differences=(
        "Data: offline look-alikes — font-rendered digits → scikit-learn's UCI handwritten digits "
        "mirror Syn Numbers → SVHN (synthetic → real), digits → their photo-blended `_m` "
        "variant mirror MNIST → MNIST-M. SVHN → MNIST runs only where the catalog datasets "
        "are prepared; the published numbers are shown beside the mirrored pair, not compared "
        "as equals.",
        "Model and scale: a LeNet-style net (width 8) on 28×28 RGB inputs, 600 pretraining and "
        "500 adaptation steps (--quick: 400 and 400), not the paper's larger CNNs trained for tens "
        "of thousands of steps; 5 seeds (--quick: 3) with 95% CIs.",
        "No model selection (the paper tuned on a small labelled target validation set): every "
        "condition trains a fixed schedule and is scored at its last step.",
        "Arms: DANN starts from the pretrained source model and trains 500 more steps with source "
        "labels, while source only is that pretrained model as it is, so 'DANN − source only' mixes "
        "the adversarial term with extra source training; a same-schedule arm with the adversarial "
        "weight at 0 is not in this suite.",
    ),
    quick={"seeds": 3, "backbone": {"name": "lenet", "params": {"width": 8}},
           "pretrain": {"steps": 400}, "train": {"steps": 400}},
    tidy=tidy,
    claims=claims,
    figure=figure,
    figure_caption=("Mean accuracy on the target test split with 95% CIs over seeds; black dashes "
                    "are the published numbers of the paper's pair that ours mirrors (a different "
                    "dataset: compare orderings, not values)."),
    table=table,
    keep=keep,
    tuned=(DANN_TUNED,),
    changes=(
    "All runs are new (2026-12-02): every label budget now splits 80/20 per class into train and validation, so training sees fewer labels; sources are checked on their own held-out split; intervals are Bonferroni-adjusted across each claim's cases and the former in-between verdict is gone (a mean on the claimed side with every interval containing 0 is no evidence).",
    "DANN's backbone learning-rate scale is 0.01 (chosen by source validation) instead of 0.1 (chosen on test).",
    'New claim: the adversarial term helps (against the same schedule with domain weight 0): no evidence.',
    'Source only < DANN: in-between → no evidence; the PAD falling: reproduced → no evidence (every raw interval below 0, one adjusted interval reaching 0); DANN < train on target: reproduced as before.',
    )
)
