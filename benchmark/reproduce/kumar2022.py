"""Kumar, Raghunathan, Jones, Ma & Liang 2022, "Fine-Tuning can Distort Pretrained Features and
Underperform Out-of-Distribution" (ICLR 2022): LP-FT (linear probe, then full fine-tuning from
the probed head) against full fine-tuning.

Claims, fixed before the runs (cases on the clean source only; see
:mod:`benchmark.reproduce.finetuning_methods`):

1. ``lpft_beats_ft_shifted``: on the shifted target (photo-blended digits), LP-FT's target
   accuracy exceeds full fine-tuning's, at every budget.
2. ``lpft_forgets_less``: LP-FT distorts the pretrained features less: its forgetting (source
   test accuracy lost) is lower than full fine-tuning's, on every pair and budget.
"""

from __future__ import annotations

import pandas as pd

from benchmark.reproduce import claims as C
from benchmark.reproduce import finetuning_methods as F
from benchmark.reproduce.claims import Claim
from benchmark.reproduce.paper import Paper

METHODS = ("finetune_full", "lp_ft", "linear_probe")


def claims(t: pd.DataFrame) -> list[Claim]:
    return C.judge([
        C.ClaimSpec(
            "lpft_beats_ft_shifted",
            "LP-FT beats full fine-tuning on a shifted target.",
            "LP-FT beats full fine-tuning out of distribution (about 10% on average in the abstract, "
            "e.g. ImageNet → ImageNet-R/-Sketch, Living-17, Entity-30) and is about 1% better in distribution.",
            "per budget on the clean source → the photo-blended target, paired by seed: adjusted "
            "t-CI of accuracy(lp_ft) − accuracy(finetune_full) > 0 at every budget → reproduced; "
            "< 0 at any → refuted",
            F.beats_cases(t, "lp_ft", shifted_only=True), measured_prefix="lp_ft − finetune_full: "),
        C.ClaimSpec(
            "lpft_forgets_less",
            "LP-FT changes the pretrained features less than full fine-tuning: it forgets less of the source task.",
            "Fine-tuning with a randomly initialised head distorts the pretrained features (their analysis "
            "of two-layer linear networks); LP-FT changes them less (smaller feature change in their experiments).",
            "per clean-source pair and budget, paired by seed: adjusted t-CI of forgetting(finetune_full) "
            "− forgetting(lp_ft) > 0 everywhere → reproduced; < 0 anywhere → refuted",
            F.beats_cases(t, "lp_ft", value="forgetting"), measured_prefix="forgetting(finetune_full) − forgetting(lp_ft): ",
            unmeasured="not recorded: the runs carry no extras['forgetting']"),
    ])


PAPER = Paper(
    name="kumar2022",
    title="Fine-Tuning can Distort Pretrained Features and Underperform Out-of-Distribution (LP-FT)",
    citation="A. Kumar, A. Raghunathan, R. Jones, T. Ma, P. Liang. ICLR 2022 (arXiv:2202.10054).",
    setup=("CLIP, ImageNet-pretrained ResNets and ViTs fine-tuned on ImageNet, CIFAR-10, "
           "Living-17, Entity-30, DomainNet and others, evaluated in and out of distribution: "
           "linear probing, full fine-tuning, and LP-FT (train the head first with the backbone "
           "frozen, then everything from that head)."),
    differences=(
        "Shift: the papers' out-of-distribution test sets are shifted versions of the fine-tuning "
        "distribution; here the *target* is shifted from the source (font digits → photo-blended "
        "UCI digits) and the claim is on its test split, as the issue asks.",
        *F.DIFFERENCES,
    ),
    quick={"seeds": 3, "train": {"steps": 80}},
    tidy=F.tidy,
    claims=claims,
    figure=lambda t: F.figure(t, METHODS),
    figure_caption=("Forgetting (source test accuracy lost; lower is better) against target test "
                    "accuracy per method, one panel per clean-source pair, marker per budget; "
                    "bars are 95% CIs over seeds (unadjusted)."),
    table=F.table,
    suite=F.SUITE,
    registered=F.REGISTERED,
)
