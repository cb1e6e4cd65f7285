"""Li, Grandvalet & Davoine 2018, "Explicit Inductive Bias for Transfer Learning with
Convolutional Networks" (ICML 2018: L2-SP), and Chen, Wang, Fu, Long & Wang 2019, "Catastrophic
Forgetting Meets Negative Transfer: Batch Spectral Shrinkage for Safe Transfer Learning"
(NeurIPS 2019: BSS): regularised fine-tuning helps most when target labels are scarce.

Claims, fixed before the runs (clean source only; the smallest and largest budgets of the
suite, 10 labels per class and all; see :mod:`benchmark.reproduce.finetuning_methods`):

1. ``l2sp_helps_small`` / ``bss_helps_small``: at the smallest budget the method's target
   accuracy exceeds full fine-tuning's, on every pair.
2. ``l2sp_gain_shrinks`` / ``bss_gain_shrinks``: its gain over full fine-tuning is larger at
   the smallest budget than with all labels, on every pair.
"""

from __future__ import annotations

import pandas as pd

from benchmark.analysis.transfer import format_budget
from benchmark.reproduce import claims as C
from benchmark.reproduce import finetuning_methods as F
from benchmark.reproduce.claims import Claim
from benchmark.reproduce.paper import Paper

METHODS = ("finetune_full", "l2sp", "bss")
PAPER_SAYS = {
    "l2sp": ("L2-SP beats fine-tuning with plain weight decay on every target, and its gain "
             "shrinks as the target's training set grows (their experiments on subsets of the "
             "training examples per class)."),
    "bss": ("BSS helps most when labels are scarce: TLlib reports fine-tuning → fine-tuning + BSS "
            "on CUB-200 at 15% of the labels 46.7 → 49.3, with smaller gains at larger shares "
            "of the labels."),
}


def _method_claims(t: pd.DataFrame, method: str) -> list[C.ClaimSpec]:
    ends = F.budget_ends(t)
    small, large = ends if ends else (10, -1)
    return [
        C.ClaimSpec(
            f"{method}_helps_small",
            f"At the smallest budget ({format_budget(small)} labels per class), {method} beats full fine-tuning.",
            PAPER_SAYS[method],
            f"per clean-source pair at {format_budget(small)}/class, paired by seed: adjusted t-CI of "
            f"accuracy({method}) − accuracy(finetune_full) > 0 on every pair → reproduced; < 0 on any → refuted",
            F.beats_cases(t, method, budgets=[small]), measured_prefix=f"{method} − finetune_full: "),
        C.ClaimSpec(
            f"{method}_gain_shrinks",
            f"{method}'s gain over full fine-tuning is larger with few labels than with all of them.",
            PAPER_SAYS[method],
            f"per clean-source pair, per seed: gain at {format_budget(small)}/class − gain at "
            f"{format_budget(large)}/class (gain = {method} − finetune_full, same seed); adjusted t-CI "
            "> 0 on every pair → reproduced; < 0 on any → refuted",
            F.shrink_cases(t, method, small, large) if ends else (), measured_prefix="gain difference: "),
    ]


def claims(t: pd.DataFrame) -> list[Claim]:
    return C.judge([*_method_claims(t, "l2sp"), *_method_claims(t, "bss")])


PAPER = Paper(
    name="li2018",
    title="L2-SP (Li et al. 2018) and Batch Spectral Shrinkage (Chen et al. 2019): regularised fine-tuning at small budgets",
    citation=("X. Li, Y. Grandvalet, F. Davoine. Explicit Inductive Bias for Transfer Learning with "
              "Convolutional Networks. ICML 2018. — X. Chen, S. Wang, B. Fu, M. Long, J. Wang. "
              "Catastrophic Forgetting Meets Negative Transfer: Batch Spectral Shrinkage for Safe "
              "Transfer Learning. NeurIPS 2019."),
    setup=("ImageNet- or Places-pretrained ResNets fine-tuned on Caltech-256, MIT Indoors, "
           "Stanford Dogs, CUB-200, FGVC Aircraft and Stanford Cars at several shares of the "
           "target labels: L2-SP pulls the backbone toward its pretrained weights; BSS penalises "
           "the smallest singular values of each batch's features."),
    differences=(
        "Budgets: 10 labels per class and every label of the target (≈ 112 per class after the "
        "validation split), not the papers' 15–100% of fine-grained datasets.",
        "Hyper-parameters: L2-SP α = 0.1, β = 0.01 and BSS η = 0.001, k = 1 (the papers' and "
        "TLlib's values), not tuned on these runs.",
        *F.DIFFERENCES,
    ),
    quick={"seeds": 3, "train": {"steps": 80}},
    tidy=F.tidy,
    claims=claims,
    figure=lambda t: F.figure(t, METHODS),
    figure_caption=("Forgetting against target test accuracy per method, one panel per clean-source "
                    "pair, marker per budget; bars are 95% CIs over seeds (unadjusted)."),
    table=F.table,
    suite=F.SUITE,
    registered=F.REGISTERED,
)
