"""Reductions, arg-reductions and the softmax family (axis semantics differ before opset 13)."""

from __future__ import annotations

import numpy as np

from cerebro.compiler.ir import DType, Value
from cerebro.frontends.onnx import build as b
from cerebro.frontends.onnx.table import Ctx, rule

# name -> (IR reduction, transform before, transform after)
REDUCTIONS = {
    "ReduceSum": "reduce_sum", "ReduceMax": "reduce_max", "ReduceMin": "reduce_min", "ReduceProd": "reduce_prod",
    "ReduceMean": "reduce_sum", "ReduceL1": "reduce_sum", "ReduceL2": "reduce_sum", "ReduceSumSquare": "reduce_sum",
    "ReduceLogSum": "reduce_sum", "ReduceLogSumExp": "reduce_sum",
}
# the opset where `axes` moved from an attribute to an input
AXES_INPUT_SINCE = {"ReduceSum": 13}


def _reduce(ctx: Ctx, x: Value, axes: list[int] | None) -> Value:
    keep = bool(ctx.attr("keepdims", 1))
    if not axes:
        if ctx.attr("noop_with_empty_axes", 0):
            return x
        axes = list(range(x.rank))
    dims = b.axes(ctx, axes, x.rank)
    op = ctx.op_type
    if op == "ReduceLogSumExp":
        peak = b.reduce(ctx, "reduce_max", x, dims, True)
        peak = b.select(ctx, ctx.add("is_finite", peak), peak, b.expand(ctx, b.scalar(ctx, 0, x), peak.shape))
        total = b.reduce(ctx, "reduce_sum", ctx.add("exp", b.sub(ctx, x, peak)), dims, keep)
        return b.add(ctx, ctx.add("log", total), peak if keep else b.reshape(ctx, peak, total.shape))
    if op in ("ReduceL1",):
        x = ctx.add("abs", x)
    if op in ("ReduceL2", "ReduceSumSquare"):
        x = ctx.add("mul", x, x)
    out = b.reduce(ctx, REDUCTIONS[op], x, dims, keep)
    if op == "ReduceMean":
        out = b.div(ctx, out, b.scalar(ctx, int(np.prod([x.shape[d] for d in dims])), out))
    if op == "ReduceL2":
        out = ctx.add("sqrt", out)
    if op == "ReduceLogSum":
        out = ctx.add("log", out)
    return out


def _attr_axes(ctx: Ctx, x: Value) -> Value:
    return _reduce(ctx, x, ctx.attr("axes"))


def _input_axes(ctx: Ctx, x: Value, axes: Value | None = None) -> Value:
    return _reduce(ctx, x, b.ints(ctx, axes, f"{ctx.op_type}'s axes") if axes is not None and axes.size else None)


for _name in REDUCTIONS:
    rule(_name)(_attr_axes)
    rule(_name, since=AXES_INPUT_SINCE.get(_name, 18))(_input_axes)


def _arg(ctx: Ctx, x: Value, kind: str) -> Value:
    ax = b.axis(ctx, ctx.attr("axis", 0), x.rank)
    if ctx.attr("select_last_index", 0):
        flipped = ctx.add("rev", x, dims=(ax,))
        idx = ctx.add(kind, flipped, axis=ax, index_dtype=DType.i64)
        idx = b.sub(ctx, ctx.const(np.int64(x.shape[ax] - 1)), idx)
    else:
        idx = ctx.add(kind, x, axis=ax, index_dtype=DType.i64)
    if ctx.attr("keepdims", 1):
        idx = b.reshape(ctx, idx, x.shape[:ax] + (1,) + x.shape[ax + 1:])
    return idx


@rule("ArgMax")
def argmax(ctx: Ctx, x: Value) -> Value:
    return _arg(ctx, x, "argmax")


@rule("ArgMin")
def argmin(ctx: Ctx, x: Value) -> Value:
    return _arg(ctx, x, "argmin")


def softmax_on(ctx: Ctx, x: Value, ax: int, log: bool = False) -> Value:
    """Numerically stable (log-)softmax along one axis."""
    shifted = b.sub(ctx, x, b.reduce(ctx, "reduce_max", x, [ax], True))
    e = ctx.add("exp", shifted)
    total = b.reduce(ctx, "reduce_sum", e, [ax], True)
    if log:
        return b.sub(ctx, shifted, ctx.add("log", total))
    return b.div(ctx, e, total)


def hardmax_on(ctx: Ctx, x: Value, ax: int) -> Value:
    first = ctx.add("argmax", x, axis=ax, index_dtype=DType.i64)
    first = b.reshape(ctx, first, x.shape[:ax] + (1,) + x.shape[ax + 1:])
    iota = ctx.add("iota", shape=x.shape, dtype=DType.i64, dimension=ax)
    return b.cast(ctx, b.binary(ctx, "eq", iota, first), x.dtype)


KINDS = {
    "Softmax": lambda ctx, x, ax: softmax_on(ctx, x, ax),
    "LogSoftmax": lambda ctx, x, ax: softmax_on(ctx, x, ax, log=True),
    "Hardmax": hardmax_on,
}


def _flattened(ctx: Ctx, x: Value) -> Value:
    """Before opset 13 the op works on x flattened to 2-D at `axis` (default 1)."""
    ax = b.axis(ctx, ctx.attr("axis", 1), x.rank)
    flat = b.reshape(ctx, x, (int(np.prod(x.shape[:ax])), int(np.prod(x.shape[ax:]))))
    return b.reshape(ctx, KINDS[ctx.op_type](ctx, flat, 1), x.shape)


def _per_axis(ctx: Ctx, x: Value) -> Value:
    return KINDS[ctx.op_type](ctx, x, b.axis(ctx, ctx.attr("axis", -1), x.rank))


for _name in KINDS:
    rule(_name)(_flattened)
    rule(_name, since=13)(_per_axis)


@rule("LpNormalization")
def lp_normalization(ctx: Ctx, x: Value) -> Value:
    ax = b.axis(ctx, ctx.attr("axis", -1), x.rank)
    if ctx.attr("p", 2) == 1:
        norm = b.reduce(ctx, "reduce_sum", ctx.add("abs", x), [ax], True)
    else:
        norm = ctx.add("sqrt", b.reduce(ctx, "reduce_sum", ctx.add("mul", x, x), [ax], True))
    zero = b.binary(ctx, "eq", norm, b.scalar(ctx, 0, norm))
    safe = b.select(ctx, zero, b.scalar(ctx, 1, norm), norm)
    return b.div(ctx, x, b.expand(ctx, safe, x.shape))
