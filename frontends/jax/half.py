"""f16/bf16 arithmetic with XLA's CPU semantics: every op computed in f32 and rounded back after it.

Measured against jax.jit on CPU (tests/test_jax_f16.py): XLA rounds to the 16-bit type after each op even
inside a fusion (tanh(a*b + a)*b rounds four times), reductions and dots accumulate in f32 and round once.
The IR refuses arithmetic on f16/bf16 (ops.HALF_OPS), so a primitive missing here fails loudly.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from cerebro.compiler.ir import DType, Value
from cerebro.frontends.jax.context import Context

# Primitives whose rules only move, select or convert elements: f16/bf16 pass through them unconverted.
MOVES = frozenset({"reshape", "transpose", "slice", "concatenate", "pad", "broadcast_in_dim", "squeeze",
                   "expand_dims", "rev", "select_n", "convert_element_type", "bitcast_convert_type", "copy",
                   "copy_p", "stop_gradient", "optimization_barrier"})


# Loops (rules_control.py): their bodies' equations are lowered by these same rules, each rounding its own.
LOOPS = frozenset({"scan", "while"})


class _Var:
    def __init__(self, aval: Any) -> None:
        self.aval = aval


class _InF32:
    """eqn as its rule sees it when computing in f32: f16/bf16 outputs (e.g. dot_general's result type) and
    dtype parameters (iota's) read as f32; everything else is the equation's own."""

    def __init__(self, eqn: Any) -> None:
        self._eqn = eqn
        self.outvars = [_Var(v.aval.update(dtype=_f32(v.aval.dtype))) for v in eqn.outvars]
        self.params = {k: _f32(v) if isinstance(v, np.dtype) else v for k, v in eqn.params.items()}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._eqn, name)


HALF_DTYPES = (DType.f16.numpy, DType.bf16.numpy)


def _is_half(dtype: Any) -> bool:
    """Whether a JAX dtype (a PRNG key's included) is f16 or bf16."""
    return any(dtype == half for half in HALF_DTYPES)


def _f32(dtype: Any) -> Any:
    return np.dtype(np.float32) if _is_half(dtype) else dtype


def computes_on_half(eqn: Any, inputs: list[Value]) -> bool:
    """Whether eqn does arithmetic with an f16/bf16 operand or result."""
    if eqn.primitive.name in MOVES or eqn.primitive.name in LOOPS:
        return False
    return any(v.dtype.is_half for v in inputs) or any(_is_half(v.aval.dtype) for v in eqn.outvars)


def _logistic(ctx: Context, eqn: Any, x: Value) -> list[Value]:
    """XLA expands logistic before computing in f32: 1 / (1 + exp(-x)), rounded after each of the four ops."""
    def rounded(op: str, *operands: Value) -> Value:
        return ctx.convert(ctx.convert(ctx.elementwise(op, *operands), x.dtype), DType.f32)

    one = ctx.const(np.float32(1))
    e = rounded("exp", rounded("neg", ctx.convert(x, DType.f32)))
    return [ctx.convert(ctx.elementwise("div", one, rounded("add", one, e)), x.dtype)]


EXPANDED = {"logistic": _logistic}  # primitives XLA rewrites into several rounded ops for 16-bit floats


# Scans XLA runs in the 16-bit type, rounding after every step (measured: bf16 cumsum of 64 differs from
# an f32 scan rounded once in 60% of elements): refused rather than answered differently.
PER_STEP = frozenset({"cumsum", "cumprod", "cumlogsumexp", "reduce_window_sum"})


def lower_in_f32(ctx: Context, eqn: Any, rule: Any, inputs: list[Value]) -> list[Value]:
    """rule on f32 copies of the f16/bf16 inputs, each f16/bf16 result rounded back to its type."""
    if eqn.primitive.name in PER_STEP:
        raise ctx.fail("on float16/bfloat16 (XLA rounds after every step; not supported yet: compute it in "
                       "float32)")
    if eqn.primitive.name in EXPANDED:
        return EXPANDED[eqn.primitive.name](ctx, eqn, *inputs)
    wide = [ctx.convert(v, DType.f32) if v.dtype.is_half else v for v in inputs]
    outputs = rule(ctx, _InF32(eqn), *wide)
    return [ctx.convert(value, ctx.dtype(var.aval.dtype)) for value, var in zip(outputs, eqn.outvars)]
