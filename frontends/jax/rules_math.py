"""Lowering of atan, atan2 and erf_inv (float32) as elementwise IR chains, which fuse into one loop.

erf_inv is XLA's own expansion (chlo's ErfInv for f32, Giles' polynomials in w = -log1p(-x^2), with
erf_inv(+-1) = +-inf), so it differs from jax.jit only by the ulp log1p may differ. atan is Cephes'
atanf (frontends/mathchains.py, shared with ONNX's Atan): within 3 ulp of the correctly rounded
value; atan2 divides the smaller magnitude by the larger, so the quotient is in
[0, 1], and unfolds the octant: pi/2 - r when |y| > |x|, pi - r for x < 0 (-0 included), the sign of
y (-0 included) last. atan2(+-0, +-0) and atan2(+-inf, +-inf) are the IEEE values; NaN propagates.
"""

from __future__ import annotations

import math

import numpy as np

from cerebro.compiler.ir import DType, Value
from cerebro.frontends.jax.context import Context
from cerebro.frontends.mathchains import atan

_ERF_INV_SMALL_W = (2.81022636e-08, 3.43273939e-07, -3.5233877e-06, -4.39150654e-06, 0.00021858087,
                    -0.00125372503, -0.00417768164, 0.246640727, 1.50140941)
_ERF_INV_LARGE_W = (-0.000200214257, 0.000100950558, 0.00134934322, -0.00367342844, 0.00573950773,
                    -0.0076224613, 0.00943887047, 1.00167406, 2.83297682)


class _Chain:
    """Elementwise IR on values of one float32 shape, with Python numbers as constants."""

    def __init__(self, ctx: Context, like: Value) -> None:
        self.ctx, self.rank = ctx, like.rank

    def c(self, value: float) -> Value:
        return self.ctx.const(np.full((1,) * self.rank, value), DType.f32)

    def __call__(self, op: str, *args: Value | float) -> Value:
        return self.ctx.elementwise(op, *(a if isinstance(a, Value) else self.c(a) for a in args))

    def negative(self, x: Value) -> Value:
        """x < 0, or x is -0 (1 / -0 is -inf)."""
        zero_below = self("and", self("eq", x, 0.0), self("lt", self("div", 1.0, x), 0.0))
        return self("or", self("lt", x, 0.0), zero_below)


def _float32(ctx: Context, *values: Value) -> None:
    for v in values:
        if v.dtype is not DType.f32:
            raise ctx.fail(f"{v.dtype.name} input (float32 is supported)")


def _atan2(ctx: Context, eqn, y: Value, x: Value) -> list[Value]:
    _float32(ctx, y, x)
    f = _Chain(ctx, x)
    ax, ay = f("abs", x), f("abs", y)
    high, low = f("max", ax, ay), f("min", ax, ay)
    both_inf = f("and", f("eq", ax, math.inf), f("eq", ay, math.inf))
    t = f("select", f("eq", high, 0.0), f.c(0.0), f("div", low, high))
    r = atan(ctx, f("select", both_inf, f.c(1.0), t))
    r = f("select", f("gt", ay, ax), f("sub", math.pi / 2, r), r)
    r = f("select", f.negative(x), f("sub", math.pi, r), r)
    return [f("select", f.negative(y), f("neg", r), r)]


def _atan(ctx: Context, eqn, x: Value) -> list[Value]:
    _float32(ctx, x)
    return [atan(ctx, x)]


def _erf_inv(ctx: Context, eqn, x: Value) -> list[Value]:
    _float32(ctx, x)
    f = _Chain(ctx, x)
    w = f("neg", f("log1p", f("mul", x, f("neg", x))))
    small = f("lt", w, 5.0)
    w = f("select", small, f("sub", w, 2.5), f("sub", f("sqrt", w), 3.0))
    p = None
    for a, b in zip(_ERF_INV_SMALL_W, _ERF_INV_LARGE_W):
        coefficient = f("select", small, f.c(a), f.c(b))
        p = coefficient if p is None else f("add", coefficient, f("mul", p, w))
    result = f("mul", p, x)
    return [f("select", f("eq", f("abs", x), 1.0), f("mul", x, math.inf), result)]


LIMITS = {
    "atan2": "float32 only; Cephes' polynomial, within 3 ulp",
    "atan": "float32 only; Cephes' polynomial, within 3 ulp",
    "erf_inv": "float32 only",
}

RULES = {"atan2": _atan2, "atan": _atan, "erf_inv": _erf_inv}
