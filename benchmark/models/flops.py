"""FLOPs of a model or a training step, counted from its jaxpr.

Every ``dot_general`` and ``conv_general_dilated`` (forward, and the two of each in the backward
pass of a training step) counts 2 FLOPs per multiply-accumulate: the convention of the MFU
definition in PaLM (Chowdhery et al. 2022, appendix B), which also ignores element-wise work.
XLA's own ``cost_analysis()`` of the compiled function (:func:`xla_flops`, which also counts
element-wise ops) is the cross-check ``tbench bench`` records beside it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import jax
import numpy as np


def _conv_flops(eqn: Any) -> float:
    lhs, rhs = (v.aval for v in eqn.invars[:2])
    out = eqn.outvars[0].aval
    dn = eqn.params["dimension_numbers"]
    # Each output element is a dot over the kernel window x the input features it sees; the
    # kernel's "in features" dimension already is that per-group count.
    window = math.prod(rhs.shape[d] for d in dn.rhs_spec[2:])
    in_features = rhs.shape[dn.rhs_spec[1]]
    del lhs
    return 2.0 * math.prod(out.shape) * in_features * window


def _dot_flops(eqn: Any) -> float:
    lhs, rhs = (v.aval for v in eqn.invars[:2])
    (lhs_contract, _), (lhs_batch, _) = eqn.params["dimension_numbers"]
    contracted = math.prod(lhs.shape[d] for d in lhs_contract)
    out = eqn.outvars[0].aval
    del rhs, lhs_batch  # batch dimensions are already in the output shape
    return 2.0 * math.prod(out.shape) * contracted


def _inner_jaxprs(param: Any) -> list[Any]:
    if hasattr(param, "eqns"):
        return [param]
    if hasattr(getattr(param, "jaxpr", None), "eqns"):
        return [param.jaxpr]
    if isinstance(param, list | tuple):
        return [j for p in param for j in _inner_jaxprs(p)]
    return []


def _count(jaxpr: Any) -> float:
    total = 0.0
    for eqn in jaxpr.eqns:
        name = eqn.primitive.name
        if name == "conv_general_dilated":
            total += _conv_flops(eqn)
        elif name == "dot_general":
            total += _dot_flops(eqn)
        multiplier = eqn.params.get("length", 1) if name == "scan" else 1
        for param in eqn.params.values():
            for inner in _inner_jaxprs(param):
                total += multiplier * _count(inner)
    return total


def matmul_flops(fn: Callable, *args: Any) -> float:
    """FLOPs of every matmul and convolution in ``fn(*args)`` (2 per multiply-accumulate).

    Walks nested jaxprs (``pjit``, ``custom_vjp``, ``scan`` bodies times their length); a
    ``while_loop`` body is counted once, since its trip count is not static.
    """
    closed = jax.make_jaxpr(fn)(*args)
    return _count(closed.jaxpr)


def xla_flops(jitted: Any, *args: Any) -> float | None:
    """XLA's cost-analysis FLOPs of a jitted function at these arguments, or ``None``."""
    try:
        analysis = jitted.lower(*args).compile().cost_analysis()
    except Exception:  # cost analysis is optional per backend
        return None
    if isinstance(analysis, list | tuple):
        analysis = analysis[0] if analysis else None
    if not analysis or "flops" not in analysis:
        return None
    return float(np.asarray(analysis["flops"]))
