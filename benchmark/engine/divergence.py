"""When a training run has diverged, for every optimizer, and why (``extras["diverged_reason"]``).

Three signs, checked by ``Trainer.train`` on the losses it brings to the host each chunk:

* a loss that is not finite (NaN/inf; SGD at a huge learning rate usually ends here);
* a loss that explodes: above ``EXPLODE_FACTOR`` × the run's first loss *and* above
  ``EXPLODE_FLOOR``. Adam normalises its steps, so at a learning rate of 1e6 the loss grows to
  ~1e27 and never overflows: only non-finite values were caught, and such runs were stored as
  ``ok``. A cross-entropy starts near ln K (2.3 for 10 classes, 6.9 for 1,000) and a fine-tuned
  model lower; 1,000× its start is three orders of magnitude, and the floor (100 nats: logits
  100 apart, a model confidently wrong on everything) keeps a start near 0 (a source already
  fitting the target) from turning an ordinary wobble into a divergence;
* the end at chance on its own training data: over the last ``log_every`` steps the training
  accuracy is not above 1/K (one-sided, z < ``CHANCE_Z`` with n = steps × batch predictions)
  and the loss is still at least ``CHANCE_LOSS`` × ln K (a model that is guessing, e.g. one
  class for everything, not one that is learning slowly). Only on runs of at least two log
  windows, so a deliberately short run is not judged on its first steps.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

EXPLODE_FACTOR = 1e3
EXPLODE_FLOOR = 1e2
CHANCE_Z = 3.0
CHANCE_LOSS = 0.9


class DivergenceWatch:
    """Watches one ``Trainer.train`` call; ``reason`` is set when it finds a divergence."""

    def __init__(self, num_classes: int, hp: Mapping[str, Any]):
        self.num_classes = int(num_classes)
        self.batch_size = int(hp.get("batch_size") or 1)
        self.first: float | None = None
        self.reason: str | None = None

    def bad_steps(self, losses: np.ndarray, start: int) -> np.ndarray:
        """Mask of the steps (of one chunk starting at step ``start``) that diverged."""
        losses = np.asarray(losses, np.float64)
        finite = np.isfinite(losses)
        if self.first is None and finite.size and finite[0]:
            self.first = float(losses[0])
        limit = max(EXPLODE_FACTOR * abs(self.first or 0.0), EXPLODE_FLOOR)
        with np.errstate(invalid="ignore"):
            bad = ~finite | (losses > limit)
        if bad.any() and self.reason is None:
            k = int(np.argmax(bad))
            if not finite[k]:
                self.reason = f"loss {losses[k]} (not finite) at step {start + k}"
            else:
                self.reason = (f"loss exploded to {losses[k]:.3g} at step {start + k}, over "
                               f"{EXPLODE_FACTOR:g}x the first loss {self.first:.3g} (and over {EXPLODE_FLOOR:g})")
        return bad

    def params_not_finite(self, step: int) -> None:
        self.reason = self.reason or f"parameters not finite after step {step}"

    def at_chance(self, history: Mapping[str, list[np.ndarray]], log_every: int) -> bool:
        """Whether the run ends guessing on its training batches (sets ``reason`` if so)."""
        if "accuracy" not in history or "loss" not in history or self.num_classes < 2:
            return False
        accuracy = np.concatenate(history["accuracy"])
        loss = np.concatenate(history["loss"])
        window = max(1, int(log_every))
        if len(accuracy) < 2 * window:
            return False
        acc, last_loss = float(np.mean(accuracy[-window:])), float(np.mean(loss[-window:]))
        p0 = 1.0 / self.num_classes
        n = window * self.batch_size
        z = (acc - p0) / math.sqrt(p0 * (1 - p0) / n)
        if z < CHANCE_Z and last_loss >= CHANCE_LOSS * math.log(self.num_classes):
            self.reason = (f"ended at chance on its own training data: accuracy {acc:.3f} over the last "
                           f"{window} steps (chance {p0:.3f}), loss {last_loss:.3f} >= "
                           f"{CHANCE_LOSS:g} ln {self.num_classes}")
            return True
        return False

    def extras(self) -> dict[str, str]:
        return {"diverged_reason": self.reason} if self.reason else {}
