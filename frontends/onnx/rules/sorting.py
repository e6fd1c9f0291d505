"""TopK, ScatterElements, ScatterND and GatherND: IR argsort, scatter and take.

TopK orders by IEEE total order (NaN above +inf for largest=1), ties lower index first (the ONNX
spec's rule); its outputs are always sorted. The scatters compute each update's flat position in
the data (negative indices count from the end) and apply the updates in order: duplicates
accumulate for the add/mul/max/min reductions and the last one wins for none; an index still out
of range after that is dropped rather than written. GatherND reads at the same flat positions (one
take from the data flattened down to its gathered dims), each index component clamped into range.
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
    "GatherND": "an index out of range after wrapping is clamped (ONNX: an error)",
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


@rule("GatherND", since=11)
def gather_nd(ctx: Ctx, data: Value, indices: Value) -> Value:
    """indices[..., q] picks data[batch, i_0, ..., i_q-1, :] (the first batch_dims dims of both are shared):
    one take along the flattened batch and indexed dims, at batch * (their count) + the row-major offset."""
    batch_dims, q = int(ctx.attr("batch_dims", 0)), indices.shape[-1] if indices.rank else 0
    if indices.rank < 1 or not 0 <= batch_dims < indices.rank or batch_dims + q > data.rank \
            or indices.shape[:batch_dims] != data.shape[:batch_dims]:
        raise ctx.error(f"indices {indices.shape} with batch_dims {batch_dims} do not fit data {data.shape}")
    picked, inner = data.shape[batch_dims:batch_dims + q], data.shape[batch_dims + q:]
    rows = indices.shape[:-1]
    strides = np.cumprod((picked[1:] + (1,))[::-1])[::-1] if q else ()
    flat = ctx.const(np.zeros((1,) * len(rows), np.int64))
    for d, (size, stride) in enumerate(zip(picked, strides)):
        part = _wrapped(ctx, b.reshape(ctx, b.slice_axis(ctx, indices, indices.rank - 1, d, d + 1), rows), size)
        low, high = ctx.const(np.int64(0)), ctx.const(np.int64(size - 1))
        part = ctx.elementwise("min", ctx.elementwise("max", part, low), high)
        flat = b.add(ctx, flat, b.mul(ctx, part, ctx.const(np.int64(stride))))
    count = int(np.prod(picked, dtype=np.int64))
    for d in range(batch_dims):  # the batch position, in units of the picked block
        block = int(np.prod(data.shape[d + 1:batch_dims], dtype=np.int64)) * count
        iota = ctx.add("iota", shape=rows, dtype=DType.i64, dimension=d)
        flat = b.add(ctx, flat, b.mul(ctx, iota, ctx.const(np.int64(block))))
    source = b.reshape(ctx, data, (int(np.prod(data.shape[:batch_dims + q], dtype=np.int64)),) + inner)
    return ctx.add("take", source, b.expand(ctx, flat, rows), axis=0, mode="clip")
