"""The Flax-tutorial training loop (google/flax ``examples/mnist/train.py``), on the engine's model.

As in the example: a ``TrainState``, a jitted ``apply_model`` (loss, grads, accuracy) and a
jitted ``update_model`` called from a Python loop over batches sliced from *host numpy* arrays
by a host permutation, so every step copies its batch to the device; losses are collected and
averaged once at the end of the epoch. The one change: images stay uint8 (the model scales
them), where the example feeds float32.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax.training import train_state


def create_train_state(model: nn.Module, params: dict, learning_rate: float,
                       momentum: float) -> train_state.TrainState:
    tx = optax.sgd(learning_rate, momentum)
    return train_state.TrainState.create(apply_fn=model.apply, params=params, tx=tx)


@jax.jit
def apply_model(state: train_state.TrainState, images: jax.Array, labels: jax.Array):
    """Loss, gradients and accuracy for one batch (``images uint8[B, H, W, C]``, ``labels int[B]``)."""

    def loss_fn(params):
        logits = state.apply_fn({"params": params}, images)
        one_hot = jax.nn.one_hot(labels, logits.shape[-1])
        loss = jnp.mean(optax.softmax_cross_entropy(logits=logits, labels=one_hot))
        return loss, logits

    (loss, logits), grads = jax.value_and_grad(loss_fn, has_aux=True)(state.params)
    accuracy = jnp.mean(jnp.argmax(logits, -1) == labels)
    return grads, loss, accuracy


@jax.jit
def update_model(state: train_state.TrainState, grads: Any) -> train_state.TrainState:
    return state.apply_gradients(grads=grads)


def training_trial(
    model: nn.Module,
    params: dict,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    batch_size: int,
    learning_rate: float,
    momentum: float,
    steps: int,
    seed: int = 0,
) -> Callable[[], float]:
    """A trial for :func:`benchmark.bench.timing.interleave`: ``steps`` steps of the loop.

    images: uint8[N, H, W, C] and labels: int32[N] as host numpy arrays. Each trial continues
    from the previous trial's state (as epochs do) and returns the mean loss, which waits for
    the device.
    """
    holder = {"state": create_train_state(model, params, learning_rate, momentum)}
    rng = np.random.default_rng(seed)
    n = images.shape[0]

    def trial() -> float:
        state = holder["state"]
        perms = rng.permutation(n)
        if n < steps * batch_size:
            perms = np.concatenate([rng.permutation(n) for _ in range(-(-steps * batch_size // n))])
        perms = perms[: steps * batch_size].reshape(steps, batch_size)
        epoch_loss = []
        for perm in perms:
            grads, loss, _ = apply_model(state, images[perm, ...], labels[perm, ...])
            state = update_model(state, grads)
            epoch_loss.append(loss)
        holder["state"] = state
        return float(np.mean(jax.device_get(epoch_loss)))

    return trial


def step_function(model: nn.Module, params: dict, learning_rate: float, momentum: float):
    """``(fn, args)``: one whole training step as a function of its arguments, for FLOP counts."""
    state = create_train_state(model, params, learning_rate, momentum)

    def one_step(state, images, labels):
        grads, loss, _ = apply_model(state, images, labels)
        return update_model(state, grads), loss

    return one_step, state
