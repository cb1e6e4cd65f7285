"""Seed batching (``benchmark.engine.seed_batch``) computes what running the seeds one by one does.

On the tiny shared cell (tests/tiny.py): ``run_cell`` with ``plan.batch_seeds`` on and off gives
the same statuses, test accuracies (within 1e-4) and curves (losses within 1e-4 relative), for a
strategy with one train call (``finetune_full``) and one with two (``lp_ft``), and the batched run
did batch. On ``Trainer.train`` calls under ``LockStep``: a seed that diverges stops where it
stops sequentially while the other goes on; calls that do not match run alone and batching resumes
when they match again; an exception in one seed is raised without hanging the other; the watchdog
lets waiting seeds go on unbatched.
"""

from __future__ import annotations

import dataclasses
import functools
import threading
import time

import jax
import numpy as np
import pytest
import tiny

from benchmark.engine import run_cell
from benchmark.engine.plan import BATCH_SEEDS_ENV, choose
from benchmark.engine.seed_batch import LockStep
from benchmark.errors import UserError

SEEDS = [0, 1]
OFF = dataclasses.replace(choose("cpu"), batch_seeds=False)
ON = dataclasses.replace(OFF, batch_seeds=True)
DEADLINE_S = 120.0


def _assert_runs_match(batched, sequential) -> None:
    for b, s in zip(batched, sequential, strict=True):
        assert (b.seed, b.status, b.diverged_step) == (s.seed, s.status, s.diverged_step)
        if s.accuracy is None:
            assert b.accuracy is None
        else:
            assert abs(b.accuracy - s.accuracy) <= 1e-4
            np.testing.assert_allclose(b.per_class_accuracy, s.per_class_accuracy, atol=1e-4)
        assert [p["step"] for p in b.curve] == [p["step"] for p in s.curve]
        np.testing.assert_allclose([p["loss"] for p in b.curve], [p["loss"] for p in s.curve], rtol=1e-4)
        np.testing.assert_allclose([p["accuracy"] for p in b.curve], [p["accuracy"] for p in s.curve], atol=1e-4)


@pytest.mark.parametrize("name, train_calls", [("finetune_full", 1), ("lp_ft", 2)])
def test_batched_seeds_match_sequential_seeds(name, train_calls, data_dir) -> None:
    spec = tiny.cell(name)
    sequential = run_cell(spec, SEEDS, data_dir=data_dir, plan=OFF)
    batched = run_cell(spec, SEEDS[::-1], data_dir=data_dir, plan=ON)  # results come in the order asked
    assert [r.status for r in sequential] == ["ok", "ok"]
    assert sequential[0].curve != sequential[1].curve  # the seeds differ: not one run twice
    _assert_runs_match(batched, sequential[::-1])
    for r in batched:
        assert r.plan["batch_seeds"] and r.plan["seed_batch"] == {"seeds": 2, "calls_batched": train_calls,
                                                                  "calls_alone": 0}
    assert not sequential[0].plan["batch_seeds"] and "seed_batch" not in sequential[0].plan


def test_batched_seeds_diverge_as_sequential_seeds(data_dir) -> None:
    spec = tiny.cell("lp_ft", train={"learning_rate": 1e9})
    sequential = run_cell(spec, SEEDS, data_dir=data_dir, plan=OFF)
    batched = run_cell(spec, SEEDS, data_dir=data_dir, plan=ON)
    assert [r.status for r in sequential] == ["diverged", "diverged"]
    _assert_runs_match(batched, sequential)
    # The probe diverges, so lp_ft's second call never comes: one batched call per seed.
    assert [r.plan["seed_batch"]["calls_batched"] for r in batched] == [1, 1]


def test_an_error_is_raised_as_sequentially(data_dir) -> None:
    spec = tiny.cell("finetune_full", labels_per_class=0)
    with pytest.raises(UserError, match="labels_per_class"):
        run_cell(spec, SEEDS, data_dir=data_dir, plan=OFF)
    with pytest.raises(UserError, match="labels_per_class"):
        run_cell(spec, SEEDS, data_dir=data_dir, plan=ON)


# -- Trainer.train calls under LockStep -------------------------------------------------------


@pytest.fixture(scope="module")
def setup():
    """A trainer, params and data of the tiny scratch shapes (test_engine compiles the same)."""
    from benchmark.config.schedule import resolve_train
    from benchmark.data import info
    from benchmark.engine.train import Trainer
    from benchmark.strategies.base import all_train, supervised_loss

    trainer = Trainer((tiny.BACKBONE, tuple(tiny.BACKBONE_PARAMS.items()), 10), OFF,
                      pad_to=info(tiny.TARGET).splits["train"])
    params = {"model": trainer.model.init(jax.random.key(0), np.zeros((1, *tiny.SPEC.shape), np.uint8))["params"]}
    rng = np.random.default_rng(0)
    n = tiny.LABELS_PER_CLASS * 10
    data = {"images": jax.device_put(rng.integers(0, 256, (n, *tiny.SPEC.shape), np.uint8)),
            "labels": jax.device_put(rng.integers(0, 10, n).astype(np.int32))}

    def train(seed: int, steps: int = 24, learning_rate: float = tiny.TRAIN["learning_rate"]):
        hp = resolve_train({**tiny.TRAIN, "learning_rate": learning_rate})
        return trainer.train(params, data, jax.random.key(seed), loss=supervised_loss, labels=all_train,
                             hp=hp, steps=steps)

    return train


def _lockstep(fns, **kwargs):
    """``(LockStep, results or the exception)``, failing if the seeds do not end in DEADLINE_S."""
    lockstep = LockStep(len(fns), **kwargs)
    out: list = []

    def target():
        try:
            out.append(lockstep.run(fns))
        except Exception as error:  # noqa: BLE001 - the test inspects it
            out.append(error)

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(DEADLINE_S)
    assert not thread.is_alive(), "the lock-step did not end: deadlock"
    return lockstep, out[0]


def _assert_fits_match(batched, sequential) -> None:
    assert batched.diverged_step == sequential.diverged_step
    assert batched.extras.keys() == sequential.extras.keys()
    assert [p["step"] for p in batched.curve] == [p["step"] for p in sequential.curve]
    for key in ("loss", "accuracy"):
        np.testing.assert_allclose([p[key] for p in batched.curve], [p[key] for p in sequential.curve], rtol=1e-4)
    for b, s in zip(jax.tree.leaves(batched.params), jax.tree.leaves(sequential.params), strict=True):
        np.testing.assert_allclose(np.asarray(b), np.asarray(s), rtol=1e-4, atol=1e-5, equal_nan=True)


def test_a_diverging_seed_stops_where_it_stops_sequentially_and_the_other_goes_on(setup) -> None:
    rates = [tiny.TRAIN["learning_rate"], 1e9]  # floats are kernel arguments: one signature
    sequential = [setup(seed, learning_rate=lr) for seed, lr in enumerate(rates)]
    lockstep, batched = _lockstep([functools.partial(setup, seed, learning_rate=lr)
                                   for seed, lr in enumerate(rates)])
    assert lockstep.rounds == [2] and lockstep.calls == [[1, 0], [1, 0]]
    assert sequential[0].diverged_step is None and sequential[1].diverged_step is not None
    assert sequential[1].diverged_step < 24 - 8  # it stopped chunks before the end
    for b, s in zip(batched, sequential, strict=True):
        _assert_fits_match(b, s)


def test_mismatched_calls_run_alone_and_batching_resumes_when_they_match(setup) -> None:
    def two_calls():
        return setup(0, steps=16), setup(0, steps=24)

    lockstep, (pair, single) = _lockstep([two_calls, functools.partial(setup, 1)])
    # Round 1: 16 vs 24 steps, no match: seed 0's call alone. Round 2: both at 24 steps, batched.
    assert lockstep.rounds == [1, 2] and lockstep.calls == [[1, 1], [1, 0]]
    assert pair[0].curve == setup(0, steps=16).curve  # run alone: exactly Trainer.train
    _assert_fits_match(pair[1], setup(0))
    _assert_fits_match(single, setup(1))


def test_an_exception_in_one_seed_is_raised_and_stops_the_others(setup) -> None:
    def fails_after_training():
        setup(1)
        raise ValueError("boom")

    def trains_twice():
        return setup(0), setup(0, steps=16)

    lockstep, error = _lockstep([trains_twice, fails_after_training])
    assert isinstance(error, ValueError) and str(error) == "boom"
    assert lockstep.calls == [[1, 0], [1, 0]]  # seed 0's second call was stopped, not run


def test_the_watchdog_lets_waiting_seeds_go_on_unbatched(setup) -> None:
    def slow():
        time.sleep(3.0)  # holds the turn with no progress: the other seed waits, then goes on
        return setup(0)

    lockstep, results = _lockstep([slow, functools.partial(setup, 1)], timeout_s=0.5)
    assert lockstep.broken and lockstep.calls == [[0, 1], [0, 1]]
    assert [r.curve for r in results] == [setup(0).curve, setup(1).curve]


def test_the_plan_batches_seeds_where_measured_or_where_the_environment_says(monkeypatch) -> None:
    lenet = ("lenet", {"width": 8})
    monkeypatch.setenv(BATCH_SEEDS_ENV, "1")
    assert choose("cpu", model=lenet).batch_seeds and choose("gpu").batch_seeds
    monkeypatch.setenv(BATCH_SEEDS_ENV, "0")
    assert not choose("cpu", model=lenet).batch_seeds and not choose("gpu").batch_seeds
    assert choose("cpu", ON) is ON  # a forced Plan runs exactly as given
    monkeypatch.setenv(BATCH_SEEDS_ENV, "yes")
    with pytest.raises(UserError, match=BATCH_SEEDS_ENV):
        choose("cpu")
