"""Domain-gap sanity check: pixel logistic regression trained on A, tested on B.

``python -m benchmark.data.sanity [NAME ...]`` prints a matrix (rows: train domain, columns:
test domain) of test accuracy, all domains mapped to 28×28×1. The diagonal is in-domain
accuracy; a large drop off the diagonal means the domains really differ. A quick look before
spending hours of training on a suite, not a result.
"""

from __future__ import annotations

import sys

import numpy as np

from benchmark.cellspec import InputSpec
from benchmark.data import load

DEFAULT = ["uci_digits", "font_digits", "uci_digits_m", "font_digits_m", "fashion_mnist"]


def pixel_transfer_matrix(names: list[str], max_train: int = 3000, max_test: int = 2000) -> np.ndarray:
    """accuracy[i, j] of a logistic regression fit on ``names[i]`` train, scored on ``names[j]`` test."""
    from sklearn.linear_model import LogisticRegression

    spec = InputSpec(28, 28, 1)
    rng = np.random.default_rng(0)

    def arrays(name: str, split: str, cap: int) -> tuple[np.ndarray, np.ndarray]:
        d = load(name, split, spec=spec)
        pick = rng.permutation(len(d))[:cap]
        return d.images[pick].reshape(len(pick), -1) / 255.0, d.labels[pick]

    tests = [arrays(n, "test", max_test) for n in names]
    out = np.zeros((len(names), len(names)))
    for i, name in enumerate(names):
        x, y = arrays(name, "train", max_train)
        model = LogisticRegression(max_iter=300, C=0.1).fit(x, y)
        out[i] = [model.score(xt, yt) for xt, yt in tests]
    return out


def main(argv: list[str] | None = None) -> int:
    names = (argv if argv is not None else sys.argv[1:]) or DEFAULT
    matrix = pixel_transfer_matrix(names)
    width = max(len(n) for n in names) + 2
    print("train \\ test".ljust(width) + "".join(n[:14].rjust(15) for n in names))
    for name, row in zip(names, matrix, strict=True):
        print(name.ljust(width) + "".join(f"{a:15.3f}" for a in row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
