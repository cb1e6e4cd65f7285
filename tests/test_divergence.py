"""Divergence that is not NaN: a loss that explodes, or a run that ends at chance on its own
training data, is ``diverged`` with the reason, for every optimizer (issue 15)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import tiny

from benchmark.engine.divergence import EXPLODE_FLOOR, DivergenceWatch
from benchmark.engine.plan import choose
from benchmark.engine.run import load_cell_data, run_seed

FAST = choose("cpu")


@pytest.fixture(scope="module")
def cell_data(data_dir):
    return load_cell_data(tiny.cell("scratch"), data_dir)


def _run(cell_data, tmp_path, **train):
    result, _ = run_seed(tiny.cell("scratch", train=train), tiny.SEED, cell_data, plan=FAST,
                         checkpoint_dir=str(tmp_path))
    return result


def test_adam_at_a_huge_learning_rate_is_diverged_with_the_reason(cell_data, tmp_path):
    # It was stored as `ok` with a training loss of 1.3e27: Adam's normalised steps never overflow.
    result = _run(cell_data, tmp_path, optimizer="adam", learning_rate=1e6)
    assert result.status == "diverged" and result.accuracy is None
    assert "loss exploded" in result.extras["diverged_reason"]
    assert 0 <= result.diverged_step < tiny.TRAIN["steps"]


def test_sgd_at_a_huge_learning_rate_is_still_diverged(cell_data, tmp_path):
    result = _run(cell_data, tmp_path, optimizer="sgd", learning_rate=1e6)
    assert result.status == "diverged" and result.extras["diverged_reason"]


def test_a_normal_tiny_run_is_still_ok(cell_data, tmp_path):
    for optimizer, lr in (("sgd", tiny.TRAIN["learning_rate"]), ("adam", 1e-3)):
        result = _run(cell_data, tmp_path, optimizer=optimizer, learning_rate=lr)
        assert result.status == "ok" and "diverged_reason" not in result.extras, (optimizer, result.extras)
        assert result.accuracy > 0.3


def _history(accuracy: float, loss: float, steps: int = 48) -> dict[str, list[np.ndarray]]:
    return {"accuracy": [np.full(steps, accuracy)], "loss": [np.full(steps, loss)]}


def test_a_run_that_ends_guessing_on_its_training_data_is_diverged():
    watch = DivergenceWatch(10, {"batch_size": 32})
    assert watch.at_chance(_history(0.10, math.log(10)), log_every=16)
    assert "ended at chance on its own training data: accuracy 0.100" in watch.extras()["diverged_reason"]
    # a constant-class collapse: accuracy 1/K, the loss above ln K
    assert DivergenceWatch(5, {"batch_size": 32}).at_chance(_history(0.2, 4.0), log_every=16)


@pytest.mark.parametrize("accuracy, loss, steps", [
    (0.30, 2.0, 48),    # learning: above chance
    (0.10, 1.2, 48),    # loss well below ln 10: calibrated, learning slowly
    (0.10, 2.3, 16),    # one log window only: a short run is not judged on its first steps
])
def test_runs_that_are_learning_or_too_short_are_not_called_at_chance(accuracy, loss, steps):
    watch = DivergenceWatch(10, {"batch_size": 32})
    assert not watch.at_chance(_history(accuracy, loss, steps), log_every=16)
    assert watch.extras() == {}


def test_explosion_is_relative_to_the_first_loss_with_an_absolute_floor():
    watch = DivergenceWatch(10, {})
    assert not watch.bad_steps(np.array([2.3, 50.0, 2000.0]), 0).any()  # under 1000 x 2.3
    assert watch.bad_steps(np.array([2.4e3, 1.0]), 3).tolist() == [True, False]
    assert "loss exploded to 2.4e+03 at step 3" in watch.reason
    low = DivergenceWatch(10, {})  # a start near 0 (a source that already fits): the floor rules
    assert not low.bad_steps(np.array([1e-3, 5.0, EXPLODE_FLOOR * 0.99]), 0).any()
    assert low.bad_steps(np.array([EXPLODE_FLOOR * 1.01]), 3).all()
    nan = DivergenceWatch(10, {})
    assert nan.bad_steps(np.array([2.3, np.nan]), 8).tolist() == [False, True]
    assert nan.reason == "loss nan (not finite) at step 9"
