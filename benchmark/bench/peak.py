"""The matmul peak: what an MFU is measured against on this machine.

``tbench bench`` divides each contender's counted training FLOPs per second
(:func:`benchmark.models.flops.matmul_flops`) by the rate of this trial, a jitted square f32
matmul, the largest dense workload the backend runs near its peak.
"""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp

MATMUL_N = 2048


def matmul_trial(n: int = MATMUL_N, *, repeats_inside: int = 4) -> tuple[Callable[[], None], float]:
    """A trial for :func:`benchmark.bench.timing.interleave`: ``repeats_inside`` jitted
    ``f32[n, n] @ f32[n, n]`` products. Returns ``(trial, flops_per_trial)`` with
    ``flops_per_trial = repeats_inside * 2 n^3``.
    """
    key_a, key_b = jax.random.split(jax.random.key(0))
    a = jax.random.normal(key_a, (n, n), jnp.float32)
    b = jax.random.normal(key_b, (n, n), jnp.float32)
    dot = jax.jit(jnp.dot)
    dot(a, b).block_until_ready()

    def trial() -> None:
        out = None
        for _ in range(repeats_inside):
            out = dot(a, b)
        out.block_until_ready()

    return trial, float(repeats_inside) * 2.0 * n**3
