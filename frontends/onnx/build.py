"""The IR building blocks ONNX rules share: the compiler's Builder operations under ONNX names, numpy-style
broadcasting helpers, constant reads."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from cerebro.compiler.ir import DType, Value
from cerebro.compiler.ir.builder import Builder
from cerebro.frontends.onnx.table import Ctx


def broadcast_shape(*shapes: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(np.broadcast_shapes(*shapes))


# The builder's own operations, under the names the rules call them by: b.reshape(ctx, x, shape)
reshape = Builder.reshape
transpose = Builder.transpose
to_rank = Builder.to_rank
expand = Builder.broadcast
cast = Builder.convert
binary = Builder.elementwise  # binary(ctx, op, a, b): numpy broadcasting (the IR needs equal ranks)


def scalar(ctx: Ctx, value: float, like: Value) -> Value:
    return ctx.const(np.array(value, like.dtype.numpy), like.dtype)


def add(ctx: Ctx, a: Value, b: Value) -> Value:
    return binary(ctx, "add", a, b)


def sub(ctx: Ctx, a: Value, b: Value) -> Value:
    return binary(ctx, "sub", a, b)


def mul(ctx: Ctx, a: Value, b: Value) -> Value:
    return binary(ctx, "mul", a, b)


def div(ctx: Ctx, a: Value, b: Value) -> Value:
    return binary(ctx, "div", a, b)


def select(ctx: Ctx, cond: Value, a: Value, b: Value) -> Value:
    return ctx.elementwise("select", cond, a, b)


def ints(ctx: Ctx, x: Value | None, what: str) -> list[int] | None:
    """A constant integer input (shape, axes, pads); shapes are static, so it must fold."""
    return _constants(ctx, x, what, int)


def floats(ctx: Ctx, x: Value | None, what: str) -> list[float] | None:
    return _constants(ctx, x, what, float)


def _constants(ctx: Ctx, x: Value | None, what: str, convert: Callable[[Any], Any]) -> list | None:
    """x's elements (flattened) through convert; None for an absent input; ctx.dynamic if not constant."""
    if x is None:
        return None
    if not x.is_const:
        raise ctx.dynamic(what, x)
    return [convert(v) for v in np.asarray(x.data).reshape(-1)]


def flat_positions(ctx: Ctx, idx: Value, shape: tuple[int, ...], ax: int) -> Value:
    """The row-major position in a tensor of shape of each element of idx (i64 indices along axis ax):
    idx on ax, the element's own coordinate (an iota) on every other axis (GatherElements, ScatterElements)."""
    strides = np.cumprod((shape[1:] + (1,))[::-1])[::-1]
    flat = None
    for d in range(len(shape)):
        coord = idx if d == ax else ctx.add("iota", shape=idx.shape, dtype=DType.i64, dimension=d)
        term = mul(ctx, coord, ctx.const(np.int64(strides[d])))
        flat = term if flat is None else add(ctx, flat, term)
    return flat


def axis(ctx: Ctx, a: int, rank: int) -> int:
    if not -rank <= a < max(rank, 1):
        raise ctx.error(f"axis {a} out of range for rank {rank}")
    return a % rank if rank else 0


def axes(ctx: Ctx, values: list[int], rank: int) -> list[int]:
    return [axis(ctx, a, rank) for a in values]


def reduce(ctx: Ctx, kind: str, x: Value, dims: list[int], keepdims: bool) -> Value:
    dims = sorted(set(dims))
    out = ctx.add(kind, x, axes=tuple(dims)) if dims else x
    if keepdims:
        out = reshape(ctx, out, tuple(1 if i in dims else d for i, d in enumerate(x.shape)))
    return out


def slice_axis(ctx: Ctx, x: Value, ax: int, start: int, stop: int, step: int = 1) -> Value:
    if (start, stop, step) == (0, x.shape[ax], 1):
        return x
    begin = [0] * x.rank
    limit = list(x.shape)
    strides = [1] * x.rank
    begin[ax], limit[ax], strides[ax] = start, stop, step
    return ctx.add("slice", x, start=tuple(begin), limit=tuple(limit), strides=tuple(strides))


def pad(ctx: Ctx, x: Value, lo: list[int], hi: list[int], value: float = 0) -> Value:
    if not any(lo) and not any(hi):
        return x
    return ctx.add("pad", x, lo=tuple(lo), hi=tuple(hi), value=value)


def matmul(ctx: Ctx, a: Value, b: Value) -> Value:
    """numpy.matmul: 1-D operands get a unit dim, batch dims broadcast."""
    a2 = reshape(ctx, a, (1,) + a.shape) if a.rank == 1 else a
    b2 = reshape(ctx, b, b.shape + (1,)) if b.rank == 1 else b
    if b2.rank == 2 and a2.rank > 2:
        # a weight matrix: fold a's batch dims into its rows instead of broadcasting the weights
        rows = ctx.add("matmul", reshape(ctx, a2, (a2.size // a2.shape[-1], a2.shape[-1])), b2)
        out = reshape(ctx, rows, a2.shape[:-1] + b2.shape[-1:])
        return reshape(ctx, out, out.shape[:-1]) if b.rank == 1 else out
    batch = broadcast_shape(a2.shape[:-2], b2.shape[:-2])
    a3 = expand(ctx, a2, batch + a2.shape[-2:])
    b3 = expand(ctx, b2, batch + b2.shape[-2:])
    out = ctx.add("matmul", a3, b3)
    shape = out.shape
    if a.rank == 1:
        shape = shape[:-2] + shape[-1:]
    if b.rank == 1:
        shape = shape[:-1]
    return reshape(ctx, out, shape)
