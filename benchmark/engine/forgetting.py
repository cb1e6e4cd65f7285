"""Catastrophic forgetting: how much of the source task a transfer run unlearned (issue 16).

``measure_forgetting`` scores the source task on the source *test* split twice, with one recipe:
the source model before transfer, and the transferred backbone after it.

* ``kept_head=True`` (the strategy kept the source head, e.g. ``source_only``; ``dann`` and
  ``self_training`` when source and target share their classes): each model's own head
  classifies the source test images.
* otherwise (a new head was trained for the target): a linear probe on the backbone's
  penultimate features. Closed-form ridge regression on one-hot source labels (big_vision's
  ``fewshot_lsr``): features standardised with the probe-train mean and deviation, a bias column,
  ``W = (XᵀX + λ I)⁻¹ XᵀY`` with ``λ = RIDGE × max(trace(XᵀX) / D, 1)`` (the bias is not shrunk), in
  float64 on the host; accuracy of ``argmax(X_test W)``. Fit on at most ``max_train``
  source-train images, scored on at most ``max_test`` source-test images, the same images
  (drawn from the seed) before and after.

``forgetting = source_acc_before − source_acc_after`` (positive: the source task got worse).
The same recipe on the same images and parameters gives the same number to the bit, so an
unchanged backbone forgets exactly 0 (``tests/test_forgetting.py``). A LeNet-16 costs about a
second per call on 2 CPU cores (two feature passes over ≤ 4,000 images and a D×D solve);
"before" is remembered on the source model (``SourceModel.evaluations``) within a process.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np

from benchmark.engine.pretrain import SourceModel
from benchmark.engine.train import apply_batched

MAX_TRAIN = 2000
MAX_TEST = 2000
RIDGE = 1e-3
KEPT_HEAD, LINEAR_PROBE = "kept head", "linear probe"


def measure_forgetting(seed: int, source: SourceModel, params: dict, model_key: tuple,
                       source_train: Any, source_test: Any, *, kept_head: bool = False,
                       max_train: int = MAX_TRAIN, max_test: int = MAX_TEST) -> dict[str, Any]:
    """Source-test accuracy before and after transfer, and their difference.

    source: the pretrained source model (it remembers its "before" in ``source.evaluations``); params: the trained target model's params (``model``
        tree, the transferred backbone + its head); model_key: the target model's key.
    source_train / source_test: the source domains (``images uint8[N, H, W, C]``, ``labels``).
    kept_head: score through each model's own head (it must have the source's classes)
        instead of a linear probe.
    Returns ``{"source_acc_before", "source_acc_after", "forgetting", "forgetting_probe",
    "forgetting_n_test"}``.
    """
    if kept_head and int(model_key[2]) != int(source.num_classes):
        raise ValueError(f"kept_head needs a head with the source's {source.num_classes} classes, "
                         f"the trained model has {model_key[2]}")
    rng = np.random.default_rng([int(seed), 0xF0E6])
    train_idx = _subsample(rng, len(source_train.labels), max_train)
    test_idx = _subsample(rng, len(source_test.labels), max_test)
    sets = (np.asarray(source_train.images)[train_idx], np.asarray(source_train.labels, np.int64)[train_idx],
            np.asarray(source_test.images)[test_idx], np.asarray(source_test.labels, np.int64)[test_idx])
    score = _head_accuracy if kept_head else _probe_accuracy
    memo = ("forgetting before", int(seed), kept_head, max_train, max_test,
            len(source_train.labels), len(source_test.labels))
    if memo not in source.evaluations:
        source.evaluations[memo] = score(source.model_key, source.params, *sets)
    before = source.evaluations[memo]
    after = score(model_key, params, *sets)
    return {"source_acc_before": before, "source_acc_after": after, "forgetting": before - after,
            "forgetting_probe": KEPT_HEAD if kept_head else LINEAR_PROBE, "forgetting_n_test": int(test_idx.size)}


def _subsample(rng: np.random.Generator, n: int, most: int) -> np.ndarray:
    return np.sort(rng.permutation(n)[:most]) if n > most else np.arange(n)


def _head_accuracy(model_key: tuple, params: dict, train_images, train_labels, test_images,
                   test_labels) -> float:
    logits = apply_batched(model_key, "__call__", params, jax.device_put(test_images))
    return float(np.mean(np.argmax(np.asarray(jax.device_get(logits)), -1) == test_labels))


def _probe_accuracy(model_key: tuple, params: dict, train_images, train_labels, test_images,
                    test_labels) -> float:
    def features(images):
        return np.asarray(jax.device_get(apply_batched(model_key, "features", params, jax.device_put(images))),
                          np.float64)

    weights, mean, scale = ridge_probe(features(train_images), train_labels,
                                       int(max(train_labels.max(initial=0), test_labels.max(initial=0))) + 1)
    predictions = np.argmax(_design(features(test_images), mean, scale) @ weights, -1)
    return float(np.mean(predictions == test_labels))


def _design(features: np.ndarray, mean: np.ndarray, scale: np.ndarray) -> np.ndarray:
    return np.concatenate([(features - mean) / scale, np.ones((len(features), 1))], axis=1)


def ridge_probe(features: np.ndarray, labels: np.ndarray, num_classes: int,
                ridge: float = RIDGE) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(W float64[D+1, K], mean[D], scale[D])`` of the closed-form ridge probe on one-hot labels.

    features: float64[N, D]; labels: int[N]. Dead features (zero deviation) get scale 1.
    """
    mean = features.mean(0)
    scale = features.std(0)
    scale = np.where(scale > 0, scale, 1.0)
    x = _design(features, mean, scale)
    gram = x.T @ x
    # λ follows the features' scale (trace / D); at least `ridge`, so all-dead features still solve.
    lam = ridge * max(np.trace(gram[:-1, :-1]) / max(gram.shape[0] - 1, 1), 1.0)
    penalty = lam * np.eye(gram.shape[0])
    penalty[-1, -1] = 0.0
    targets = np.eye(num_classes)[labels]
    return np.linalg.solve(gram + penalty, x.T @ targets), mean, scale
