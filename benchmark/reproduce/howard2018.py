"""Howard & Ruder 2018, "Universal Language Model Fine-tuning for Text Classification" (ACL 2018,
ULMFiT), §3.2: discriminative fine-tuning (lower learning rates for lower layers) and gradual
unfreezing, both proposed to avoid catastrophic forgetting.

Claims, fixed before the runs (clean source only; see
:mod:`benchmark.reproduce.finetuning_methods`):

1. ``lower_rates_forget_less``: per-block learning rates decaying toward the input
   (``discriminative_lr``) forget less of the source task than full fine-tuning, on every pair
   and budget.
2. ``gradual_unfreeze_forgets_less``: unfreezing one block at a time from the top
   (``gradual_unfreeze``) forgets less than full fine-tuning, on every pair and budget.
"""

from __future__ import annotations

import pandas as pd

from benchmark.reproduce import claims as C
from benchmark.reproduce import finetuning_methods as F
from benchmark.reproduce.claims import Claim
from benchmark.reproduce.paper import Paper

METHODS = ("finetune_full", "discriminative_lr", "gradual_unfreeze")


def _forgets_less(t: pd.DataFrame, claim_id: str, method: str, statement: str, paper_says: str) -> C.ClaimSpec:
    return C.ClaimSpec(
        claim_id, statement, paper_says,
        "per clean-source pair and budget, paired by seed: adjusted t-CI of forgetting(finetune_full) − "
        f"forgetting({method}) > 0 everywhere → reproduced; < 0 anywhere → refuted",
        F.beats_cases(t, method, value="forgetting"),
        measured_prefix=f"forgetting(finetune_full) − forgetting({method}): ",
        unmeasured="not recorded: the runs carry no extras['forgetting']")


def claims(t: pd.DataFrame) -> list[Claim]:
    return C.judge([
        _forgets_less(t, "lower_rates_forget_less", "discriminative_lr",
                      "Lower learning rates for lower layers forget less of the source task than full fine-tuning.",
                      "§3.2: different layers capture different information, so they should be fine-tuned "
                      "to different extents; discriminative fine-tuning (η^(l−1) = η^l / 2.6) with slanted "
                      "triangular rates retains what pre-training learned (the classifier fine-tuning ablation)."),
        _forgets_less(t, "gradual_unfreeze_forgets_less", "gradual_unfreeze",
                      "Unfreezing one block at a time from the top forgets less than full fine-tuning.",
                      "§3.2: fine-tuning all layers at once risks catastrophic forgetting; gradual "
                      "unfreezing from the last layer avoids it (the classifier fine-tuning ablation)."),
    ])


PAPER = Paper(
    name="howard2018",
    title="Universal Language Model Fine-tuning (ULMFiT): discriminative rates and gradual unfreezing",
    citation="J. Howard, S. Ruder. ACL 2018 (arXiv:1801.06146), §3.2 and the classifier fine-tuning ablation.",
    setup=("An AWD-LSTM language model pre-trained on Wikitext-103, fine-tuned on six text "
           "classification tasks; discriminative fine-tuning (each layer's rate 1/2.6 of the one "
           "above), slanted triangular learning rates and gradual unfreezing, ablated one by one."),
    differences=(
        "Modality: images, not text; the claim transferred is the mechanism's (lower rates and "
        "later unfreezing for lower blocks keep what pre-training learned), measured directly as "
        "forgetting on the source task, which the paper argues but does not measure.",
        "Schedules: a constant rate per block (decay 1/2.6 per block), no slanted triangular "
        "schedule; gradual unfreezing splits the 120 target steps evenly over the blocks.",
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
