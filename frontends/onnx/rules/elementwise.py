"""Elementwise ONNX ops: arithmetic with numpy broadcasting, comparisons, activations."""

from __future__ import annotations

import math

import numpy as np

from cerebro.compiler.ir import Value
from cerebro.frontends.mathchains import atan as atan_chain
from cerebro.frontends.onnx import build as b
from cerebro.frontends.onnx.table import Ctx, rule
from cerebro.frontends.onnx.types import elem_dtype

BINARY = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "div", "And": "and", "Or": "or", "Xor": "xor",
          "Equal": "eq", "Less": "lt", "LessOrEqual": "le", "Greater": "gt", "GreaterOrEqual": "ge",
          "BitwiseAnd": "and", "BitwiseOr": "or", "BitwiseXor": "xor"}
UNARY = {"Neg": "neg", "Abs": "abs", "Exp": "exp", "Log": "log", "Tanh": "tanh", "Erf": "erf", "Sqrt": "sqrt",
         "Floor": "floor", "Ceil": "ceil", "Round": "round", "Sign": "sign", "Not": "not",
         "Sin": "sin", "Cos": "cos", "Reciprocal": "reciprocal", "BitwiseNot": "not"}
VARIADIC = {"Max": "max", "Min": "min", "Sum": "add"}


def _binary_rule(op: str):
    return lambda ctx, x, y: b.binary(ctx, op, x, y)


def _unary_rule(op: str):
    return lambda ctx, x: ctx.add(op, x)


def _variadic_rule(op: str):
    def build(ctx: Ctx, *xs: Value) -> Value:
        out = xs[0]
        for x in xs[1:]:
            out = b.binary(ctx, op, out, x)
        return out
    return build


for _onnx, _ir in BINARY.items():
    rule(_onnx)(_binary_rule(_ir))
for _onnx, _ir in UNARY.items():
    rule(_onnx)(_unary_rule(_ir))
for _onnx, _ir in VARIADIC.items():
    rule(_onnx)(_variadic_rule(_ir))


@rule("Mean")
def mean(ctx: Ctx, *xs: Value) -> Value:
    total = _variadic_rule("add")(ctx, *xs)
    return b.div(ctx, total, b.scalar(ctx, len(xs), total))


@rule("Pow")
def pow_(ctx: Ctx, x: Value, y: Value) -> Value:
    return b.binary(ctx, "pow", x, b.cast(ctx, y, x.dtype))


@rule("Mod")
def mod(ctx: Ctx, x: Value, y: Value) -> Value:
    """fmod=1 is C fmod (IR rem); fmod=0 takes the divisor's sign, as Python's %."""
    r = b.binary(ctx, "rem", x, y)
    if ctx.attr("fmod", 0):
        return r
    zero = b.scalar(ctx, 0, r)
    wrong_sign = b.binary(ctx, "ne", b.binary(ctx, "lt", r, zero), b.binary(ctx, "lt", y, b.scalar(ctx, 0, y)))
    fix = b.binary(ctx, "and", b.binary(ctx, "ne", r, zero), wrong_sign)
    return b.select(ctx, fix, b.add(ctx, r, y), r)


@rule("Where")
def where(ctx: Ctx, cond: Value, x: Value, y: Value) -> Value:
    shape = b.broadcast_shape(cond.shape, x.shape, y.shape)
    return ctx.add("select", b.expand(ctx, cond, shape), b.expand(ctx, x, shape), b.expand(ctx, y, shape))


@rule("Identity")
def identity(ctx: Ctx, x: Value) -> Value:
    return x


@rule("Cast")
def cast(ctx: Ctx, x: Value) -> Value:
    return b.cast(ctx, x, elem_dtype(ctx.attr("to"), ctx.loc))


@rule("CastLike")
def cast_like(ctx: Ctx, x: Value, like: Value) -> Value:
    return b.cast(ctx, x, like.dtype)


@rule("IsNaN")
def isnan(ctx: Ctx, x: Value) -> Value:
    return ctx.add("ne", x, x)


@rule("IsInf")
def isinf(ctx: Ctx, x: Value) -> Value:
    inf = ctx.add("and", ctx.add("not", ctx.add("is_finite", x)), ctx.add("eq", x, x))
    pos = b.binary(ctx, "gt", x, b.scalar(ctx, 0, x))
    if not ctx.attr("detect_negative", 1):
        return ctx.add("and", inf, pos)
    if not ctx.attr("detect_positive", 1):
        return ctx.add("and", inf, ctx.add("not", pos))
    return inf


# -- activations --------------------------------------------------------------


def _k(ctx: Ctx, x: Value, value: float) -> Value:
    return b.scalar(ctx, value, x)


@rule("Relu")
def relu(ctx: Ctx, x: Value) -> Value:
    return b.binary(ctx, "max", x, _k(ctx, x, 0))


@rule("LeakyRelu")
def leaky_relu(ctx: Ctx, x: Value) -> Value:
    neg = b.binary(ctx, "lt", x, _k(ctx, x, 0))
    return b.select(ctx, neg, b.mul(ctx, x, _k(ctx, x, ctx.attr("alpha", 0.01))), x)


@rule("PRelu")
def prelu(ctx: Ctx, x: Value, slope: Value) -> Value:
    shape = b.broadcast_shape(x.shape, slope.shape)
    neg = b.binary(ctx, "lt", x, _k(ctx, x, 0))
    return b.select(ctx, b.expand(ctx, neg, shape), b.expand(ctx, b.mul(ctx, x, slope), shape), b.expand(ctx, x, shape))


@rule("Elu")
def elu(ctx: Ctx, x: Value) -> Value:
    neg = b.mul(ctx, ctx.add("expm1", x), _k(ctx, x, ctx.attr("alpha", 1.0)))
    return b.select(ctx, b.binary(ctx, "lt", x, _k(ctx, x, 0)), neg, x)


@rule("Selu")
def selu(ctx: Ctx, x: Value) -> Value:
    alpha, gamma = ctx.attr("alpha", 1.67326319217681884765625), ctx.attr("gamma", 1.05070102214813232421875)
    neg = b.mul(ctx, b.sub(ctx, ctx.add("exp", x), _k(ctx, x, 1)), _k(ctx, x, alpha))
    return b.mul(ctx, b.select(ctx, b.binary(ctx, "le", x, _k(ctx, x, 0)), neg, x), _k(ctx, x, gamma))


@rule("Sigmoid")
def sigmoid(ctx: Ctx, x: Value) -> Value:
    return ctx.add("logistic", x)


@rule("HardSigmoid")
def hard_sigmoid(ctx: Ctx, x: Value) -> Value:
    y = b.add(ctx, b.mul(ctx, x, _k(ctx, x, ctx.attr("alpha", 0.2))), _k(ctx, x, ctx.attr("beta", 0.5)))
    return b.binary(ctx, "min", b.binary(ctx, "max", y, _k(ctx, x, 0)), _k(ctx, x, 1))


@rule("HardSwish")
def hard_swish(ctx: Ctx, x: Value) -> Value:
    y = b.add(ctx, b.mul(ctx, x, _k(ctx, x, 1 / 6)), _k(ctx, x, 0.5))
    return b.mul(ctx, x, b.binary(ctx, "min", b.binary(ctx, "max", y, _k(ctx, x, 0)), _k(ctx, x, 1)))


@rule("Softplus")
def softplus(ctx: Ctx, x: Value) -> Value:
    """log(1 + e^x) = max(x, 0) + log1p(e^-|x|), which never overflows."""
    tail = ctx.add("log1p", ctx.add("exp", ctx.add("neg", ctx.add("abs", x))))
    return b.add(ctx, b.binary(ctx, "max", x, _k(ctx, x, 0)), tail)


@rule("Softsign")
def softsign(ctx: Ctx, x: Value) -> Value:
    return b.div(ctx, x, b.add(ctx, ctx.add("abs", x), _k(ctx, x, 1)))


@rule("Swish")
def swish(ctx: Ctx, x: Value) -> Value:
    return b.mul(ctx, x, ctx.add("logistic", b.mul(ctx, x, _k(ctx, x, ctx.attr("alpha", 1.0)))))


@rule("Mish")
def mish(ctx: Ctx, x: Value) -> Value:
    return b.mul(ctx, x, ctx.add("tanh", softplus(ctx, x)))


@rule("Gelu", since=20)
def gelu(ctx: Ctx, x: Value) -> Value:
    half_x = b.mul(ctx, x, _k(ctx, x, 0.5))
    if ctx.attr("approximate", "none") == "tanh":
        cube = b.mul(ctx, b.mul(ctx, x, x), x)
        inner = b.mul(ctx, b.add(ctx, x, b.mul(ctx, cube, _k(ctx, x, 0.044715))), _k(ctx, x, math.sqrt(2 / math.pi)))
        return b.mul(ctx, half_x, b.add(ctx, ctx.add("tanh", inner), _k(ctx, x, 1)))
    erf = ctx.add("erf", b.mul(ctx, x, _k(ctx, x, 1 / math.sqrt(2))))
    return b.mul(ctx, half_x, b.add(ctx, erf, _k(ctx, x, 1)))


@rule("ThresholdedRelu")
def thresholded_relu(ctx: Ctx, x: Value) -> Value:
    return b.select(ctx, b.binary(ctx, "gt", x, _k(ctx, x, ctx.attr("alpha", 1.0))), x, _k(ctx, x, 0))


@rule("Celu")
def celu(ctx: Ctx, x: Value) -> Value:
    alpha = ctx.attr("alpha", 1.0)
    neg = b.mul(ctx, ctx.add("expm1", b.div(ctx, x, _k(ctx, x, alpha))), _k(ctx, x, alpha))
    return b.add(ctx, b.binary(ctx, "max", x, _k(ctx, x, 0)), b.binary(ctx, "min", neg, _k(ctx, x, 0)))


@rule("Shrink")
def shrink(ctx: Ctx, x: Value) -> Value:
    lambd, bias = ctx.attr("lambd", 0.5), ctx.attr("bias", 0.0)
    below = b.select(ctx, b.binary(ctx, "lt", x, _k(ctx, x, -lambd)), b.add(ctx, x, _k(ctx, x, bias)), _k(ctx, x, 0))
    return b.select(ctx, b.binary(ctx, "gt", x, _k(ctx, x, lambd)), b.sub(ctx, x, _k(ctx, x, bias)), below)


@rule("Clip", since=1)
def clip_attrs(ctx: Ctx, x: Value) -> Value:
    return _clip(ctx, x, ctx.attr("min", -np.inf), ctx.attr("max", np.inf))


@rule("Clip", since=11)
def clip(ctx: Ctx, x: Value, lo: Value | None = None, hi: Value | None = None) -> Value:
    out = x
    if lo is not None:
        out = b.binary(ctx, "max", out, lo)
    if hi is not None:
        out = b.binary(ctx, "min", out, hi)
    return out


def _clip(ctx: Ctx, x: Value, lo: float, hi: float) -> Value:
    return b.binary(ctx, "min", b.binary(ctx, "max", x, _k(ctx, x, lo)), _k(ctx, x, hi))


# -- trigonometry the IR lacks, decomposed -------------------------------------


@rule("Tan")
def tan(ctx: Ctx, x: Value) -> Value:
    return ctx.add("div", ctx.add("sin", x), ctx.add("cos", x))


@rule("Sinh")
def sinh(ctx: Ctx, x: Value) -> Value:
    return b.mul(ctx, b.sub(ctx, ctx.add("exp", x), ctx.add("exp", ctx.add("neg", x))), _k(ctx, x, 0.5))


@rule("Cosh")
def cosh(ctx: Ctx, x: Value) -> Value:
    return b.mul(ctx, b.add(ctx, ctx.add("exp", x), ctx.add("exp", ctx.add("neg", x))), _k(ctx, x, 0.5))


@rule("Asinh")
def asinh(ctx: Ctx, x: Value) -> Value:
    ax = ctx.add("abs", x)
    r = ctx.add("log", b.add(ctx, ax, ctx.add("sqrt", b.add(ctx, b.mul(ctx, ax, ax), _k(ctx, x, 1)))))
    return b.mul(ctx, ctx.add("sign", x), r)


@rule("Acosh")
def acosh(ctx: Ctx, x: Value) -> Value:
    return ctx.add("log", b.add(ctx, x, ctx.add("sqrt", b.sub(ctx, b.mul(ctx, x, x), _k(ctx, x, 1)))))


@rule("Atanh")
def atanh(ctx: Ctx, x: Value) -> Value:
    ratio = b.div(ctx, b.add(ctx, _k(ctx, x, 1), x), b.sub(ctx, _k(ctx, x, 1), x))
    return b.mul(ctx, ctx.add("log", ratio), _k(ctx, x, 0.5))


@rule("Atan")
def atan(ctx: Ctx, x: Value) -> Value:
    return atan_chain(ctx, x)


@rule("Asin")
def asin(ctx: Ctx, x: Value) -> Value:
    """asin x = atan(x / sqrt(1 - x^2)); |x| = 1 gives x / 0 = +-inf and atan(+-inf) = +-pi/2."""
    return atan_chain(ctx, b.div(ctx, x, ctx.add("sqrt", b.sub(ctx, _k(ctx, x, 1), b.mul(ctx, x, x)))))


@rule("Acos")
def acos(ctx: Ctx, x: Value) -> Value:
    return b.sub(ctx, _k(ctx, x, math.pi / 2), asin(ctx, x))

