"""Lowering of JAX's elementwise primitives: most map one-to-one, a few expand to short IR chains."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from cerebro.compiler.ir import DType, Value
from cerebro.frontends.jax.context import Context

Rule = Callable[..., list[Value]]

# JAX primitive -> IR op with the same meaning.
_SAME = {
    "neg": "neg", "abs": "abs", "exp": "exp", "log": "log", "log1p": "log1p", "expm1": "expm1", "tanh": "tanh",
    "erf": "erf", "sqrt": "sqrt", "rsqrt": "rsqrt", "logistic": "logistic", "floor": "floor", "ceil": "ceil",
    "sign": "sign", "not": "not", "sin": "sin", "cos": "cos", "is_finite": "is_finite",
    "add": "add", "sub": "sub", "mul": "mul", "div": "div", "rem": "rem", "max": "max", "min": "min",
    "and": "and", "or": "or", "xor": "xor", "shift_left": "shift_left",
    "shift_right_logical": "shift_right_logical", "shift_right_arithmetic": "shift_right_arithmetic",
    "eq": "eq", "ne": "ne", "lt": "lt", "le": "le", "gt": "gt", "ge": "ge",
}


def _same(op: str) -> Rule:
    def rule(ctx: Context, eqn, *xs: Value) -> list[Value]:
        return [ctx.elementwise(op, *xs)]

    return rule


def _const_like(ctx: Context, value: float, x: Value) -> Value:
    return ctx.const(np.full((1,) * x.rank, value), x.dtype)


def _square(ctx: Context, eqn, x: Value) -> list[Value]:
    return [ctx.add("mul", x, x)]


def _integer_pow(ctx: Context, eqn, x: Value) -> list[Value]:
    """x**y by repeated squaring; a negative y takes the reciprocal (floats only, as in JAX)."""
    y = int(eqn.params["y"])
    if y == 0:
        return [ctx.broadcast(_const_like(ctx, 1, x), x.shape)]
    result, base, n = None, x, abs(y)
    while n:
        if n & 1:
            result = base if result is None else ctx.add("mul", result, base)
        n >>= 1
        if n:
            base = ctx.add("mul", base, base)
    if y < 0:
        result = ctx.elementwise("div", _const_like(ctx, 1, x), result)
    return [result]


def _pow(ctx: Context, eqn, x: Value, y: Value) -> list[Value]:
    return [ctx.elementwise("pow", x, ctx.convert(y, x.dtype))]


def _exp2(ctx: Context, eqn, x: Value) -> list[Value]:
    return [ctx.add("exp", ctx.elementwise("mul", x, _const_like(ctx, math.log(2.0), x)))]


def _tan(ctx: Context, eqn, x: Value) -> list[Value]:
    return [ctx.add("div", ctx.add("sin", x), ctx.add("cos", x))]


def _erfc(ctx: Context, eqn, x: Value) -> list[Value]:
    return [ctx.elementwise("sub", _const_like(ctx, 1, x), ctx.add("erf", x))]


def _round(ctx: Context, eqn, x: Value) -> list[Value]:
    """lax.round defaults to halves away from zero; the IR's round is halves to even."""
    method = int(eqn.params.get("rounding_method", 0))
    if method == 1:
        return [ctx.add("round", x)]
    # trunc(|x|) + 1 where the dropped fraction is a half or more (floor(|x| + 0.5) would round
    # 0.49999997 up, and 2**23 + 1 to 2**23 + 2, as the sum itself rounds)
    magnitude = ctx.add("abs", x)
    whole = ctx.add("floor", magnitude)
    up = ctx.elementwise("ge", ctx.add("sub", magnitude, whole), _const_like(ctx, 0.5, x))
    rounded = ctx.add("select", up, ctx.elementwise("add", whole, _const_like(ctx, 1, x)), whole)
    return [ctx.add("mul", ctx.add("sign", x), rounded)]


def _cbrt(ctx: Context, eqn, x: Value) -> list[Value]:
    magnitude = ctx.elementwise("pow", ctx.add("abs", x), _const_like(ctx, 1.0 / 3.0, x))
    return [ctx.add("mul", ctx.add("sign", x), magnitude)]


def _sinh(ctx: Context, eqn, x: Value) -> list[Value]:
    half = _const_like(ctx, 0.5, x)
    return [ctx.elementwise("mul", ctx.add("sub", ctx.add("exp", x), ctx.add("exp", ctx.add("neg", x))), half)]


def _cosh(ctx: Context, eqn, x: Value) -> list[Value]:
    half = _const_like(ctx, 0.5, x)
    return [ctx.elementwise("mul", ctx.add("add", ctx.add("exp", x), ctx.add("exp", ctx.add("neg", x))), half)]


def _clamp(ctx: Context, eqn, lo: Value, x: Value, hi: Value) -> list[Value]:
    """XLA's clamp is min(max(x, lo), hi): hi wins where lo > hi."""
    return [ctx.elementwise("min", ctx.elementwise("max", x, lo), hi)]


def _select_n(ctx: Context, eqn, which: Value, *cases: Value) -> list[Value]:
    """select_n(p, a, b) picks b where p is true (or nonzero), a elsewhere."""
    if len(cases) == 1:
        return [cases[0]]
    if len(cases) > 2:
        raise ctx.fail(f"select_n with {len(cases)} cases (only 2 are supported)")
    cond = which
    if which.dtype is not DType.bool:
        cond = ctx.elementwise("ne", which, ctx.const(np.zeros(()), which.dtype))
    return [ctx.elementwise("select", cond, cases[1], cases[0])]


def _convert_element_type(ctx: Context, eqn, x: Value) -> list[Value]:
    return [ctx.convert(x, ctx.dtype(eqn.params["new_dtype"]))]


def _bitcast_convert_type(ctx: Context, eqn, x: Value) -> list[Value]:
    dtype = ctx.dtype(eqn.params["new_dtype"])
    if dtype.itemsize != x.dtype.itemsize:
        raise ctx.fail(f"bitcast from {x.dtype.name} to {dtype.name} changes the width (only equal widths)")
    return [x if dtype is x.dtype else ctx.add("bitcast", x, dtype=dtype)]


def _identity(ctx: Context, eqn, *xs: Value) -> list[Value]:
    return list(xs)


def _reduce_precision(ctx: Context, eqn, x: Value) -> list[Value]:
    exponent, mantissa = eqn.params["exponent_bits"], eqn.params["mantissa_bits"]
    keeps = {DType.f32: (8, 23), DType.f64: (11, 52)}.get(x.dtype)
    if keeps is None or exponent < keeps[0] or mantissa < keeps[1]:
        raise ctx.fail(f"reduce_precision to e{exponent}m{mantissa} on {x.dtype.name} would change values")
    return [x]


RULES: dict[str, Rule] = {
    **{prim: _same(op) for prim, op in _SAME.items()},
    "square": _square,
    "integer_pow": _integer_pow,
    "pow": _pow,
    "exp2": _exp2,
    "tan": _tan,
    "erfc": _erfc,
    "round": _round,
    "cbrt": _cbrt,
    "sinh": _sinh,
    "cosh": _cosh,
    "clamp": _clamp,
    "select_n": _select_n,
    "convert_element_type": _convert_element_type,
    "bitcast_convert_type": _bitcast_convert_type,
    "stop_gradient": _identity,
    "copy": _identity,
    "copy_p": _identity,
    "optimization_barrier": _identity,
    "sharding_constraint": _identity,
    "reduce_precision": _reduce_precision,
}

# What a rule does not cover (docs/coverage.md shows these as "supported with limits").
LIMITS = {
    "select_n": "1 or 2 cases",
    "bitcast_convert_type": "equal widths",
    "reduce_precision": "to at least the input's own precision (a no-op)",
}
