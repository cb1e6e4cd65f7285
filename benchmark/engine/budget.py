"""Target label budgets: which target train examples a run may see the labels of.

``labels_per_class = k`` keeps the first ``k`` examples of each class in a permutation of the
train split drawn from the seed; ``ALL_LABELS`` (-1) keeps every label; 0 keeps none. Every
other train example is the *unlabeled pool* (images only). The selection is a scan in
permutation order, so examples that are not selected can carry any label (or an invalid one)
without changing which are: the leakage tests poison them and check nothing changes.
"""

from __future__ import annotations

import numpy as np

from benchmark.cellspec import ALL_LABELS
from benchmark.errors import UserError

_BUDGET_STREAM = 0xB0D6E7


def split_budget(labels: np.ndarray, num_classes: int, labels_per_class: int,
                 seed: int) -> tuple[np.ndarray, np.ndarray]:
    """``(labeled_idx int64[Nl], unlabeled_idx int64[Nu])``, both sorted, disjoint, covering N.

    labels: int[N] train labels; a class with fewer than ``labels_per_class`` examples gives
    all it has.
    """
    labels = np.asarray(labels)
    n = labels.shape[0]
    if labels_per_class == ALL_LABELS:
        return np.arange(n), np.arange(0)
    if labels_per_class < 0:
        raise UserError(f"labels_per_class must be -1 (all), 0 or positive, got {labels_per_class}",
                        field="labels_per_class")
    perm = np.random.default_rng([int(seed), _BUDGET_STREAM]).permutation(n)
    in_order = labels[perm]
    chosen = [perm[np.flatnonzero(in_order == c)[:labels_per_class]] for c in range(num_classes)]
    labeled = np.sort(np.concatenate(chosen)) if chosen else np.arange(0)
    unlabeled = np.setdiff1d(np.arange(n), labeled)
    return labeled, unlabeled
