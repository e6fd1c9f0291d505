"""TopK, ScatterElements and ScatterND: IR argsort and scatter.

TopK orders by IEEE total order (NaN above +inf for largest=1), ties lower index first (the ONNX
spec's rule); its outputs are always sorted. The scatters compute each update's flat position in
the data (negative indices count from the end) and apply the updates in order: duplicates
accumulate for the add/mul/max/min reductions and the last one wins for none; an index still out
of range after that is dropped rather than written.
"""

from __future__ import annotations

import numpy as np

from cerebro.compiler.ir import DType, Value
from cerebro.frontends.onnx import build as b
from cerebro.frontends.onnx.table import Ctx, rule
from cerebro.frontends.sorting import top_k

_REDUCTIONS = {"none": "set", "add": "add", "mul": "mul", "max": "max", "min": "min"}


LIMITS = {
    "TopK": "k must be a constant",
    "ScatterElements": "an index out of range after wrapping is dropped (ONNX: an error)",
    "ScatterND": "an index out of range after wrapping is dropped (ONNX: an error)",
}


@rule("TopK", since=10)
def topk(ctx: Ctx, x: Value, k: Value) -> list[Value]:
    (count,) = b.ints(ctx, k, "TopK's k")
    ax = b.axis(ctx, ctx.attr("axis", -1), x.rank)
    if not 0 <= count <= x.shape[ax]:
        raise ctx.error(f"k={count} is outside 0..{x.shape[ax]}")
    return list(top_k(ctx, x, count, ax, largest=bool(ctx.attr("largest", 1))))


def _wrapped(ctx: Ctx, idx: Value, size: int) -> Value:
    """Indices as i64 with negative ones counted from the end (out-of-range ones stay out of range)."""
    idx = b.cast(ctx, idx, DType.i64)
    return b.select(ctx, b.binary(ctx, "lt", idx, ctx.const(np.int64(0))), b.add(ctx, idx, ctx.const(np.int64(size))),
                    idx)


def _reduction(ctx: Ctx) -> str:
    name = ctx.attr("reduction", "none")
    name = name.decode() if isinstance(name, bytes) else name
    if name not in _REDUCTIONS:
        raise ctx.error(f"unknown reduction {name!r}")
    return _REDUCTIONS[name]


def _inside(ctx: Ctx, idx: Value, size: int) -> Value:
    return ctx.add("and", b.binary(ctx, "ge", idx, ctx.const(np.int64(0))),
                   b.binary(ctx, "lt", idx, ctx.const(np.int64(size))))


@rule("ScatterElements", "Scatter", since=9)
def scatter_elements(ctx: Ctx, data: Value, indices: Value, updates: Value) -> Value:
    ax = b.axis(ctx, ctx.attr("axis", 0), data.rank)
    idx = _wrapped(ctx, indices, data.shape[ax])
    flat = b.flat_positions(ctx, idx, data.shape, ax)
    flat = b.select(ctx, _inside(ctx, idx, data.shape[ax]), flat, ctx.const(np.int64(-1)))
    return ctx.add("scatter", data, flat, updates, kind=_reduction(ctx))


@rule("ScatterND", since=11)
def scatter_nd(ctx: Ctx, data: Value, indices: Value, updates: Value) -> Value:
    """indices[..., q] picks data[i_0, ..., i_q-1, :]; updates[...] is that slice for each index tuple."""
    q = indices.shape[-1]
    batch, inner = indices.shape[:-1], data.shape[q:]
    strides = np.cumprod((data.shape[1:] + (1,))[::-1])[::-1]
    start, ok = ctx.const(np.zeros((1,) * len(batch), np.int64)), None
    for d in range(q):
        part = b.reshape(ctx, b.slice_axis(ctx, indices, indices.rank - 1, d, d + 1), batch)
        part = _wrapped(ctx, part, data.shape[d])
        inside = _inside(ctx, part, data.shape[d])
        ok = inside if ok is None else ctx.add("and", ok, inside)
        start = b.add(ctx, start, b.mul(ctx, part, ctx.const(np.int64(strides[d]))))
    start = b.select(ctx, ok, start, ctx.const(np.int64(-data.size)))  # stays negative after the offsets
    offsets = ctx.const(np.arange(int(np.prod(inner, dtype=np.int64)), dtype=np.int64).reshape(inner))
    flat = b.add(ctx, b.reshape(ctx, start, batch + (1,) * len(inner)),
                 b.reshape(ctx, offsets, (1,) * len(batch) + inner))
    return ctx.add("scatter", data, b.expand(ctx, flat, updates.shape), updates, kind=_reduction(ctx))
