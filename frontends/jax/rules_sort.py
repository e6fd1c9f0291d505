"""Lowering of lax.sort, lax.top_k and the cumulative reductions (cumsum, cumprod, cummax, cummin).

sort: one IR argsort of the key (its canonical order is lax.sort's comparator: -0 equals +0, NaNs
equal and last; stable; several keys: one stable argsort per key, last key first), then every
operand is gathered at the sorted positions, so the sorted values are the original elements (a -0
stays -0, NaN payloads stay in order). argsort's own iota operand is the positions themselves.
top_k: argsort in descending IEEE total order (as XLA's TopK: +NaN first, -NaN last, +0 before
-0; ties lower index first), the first k positions, then the values gathered. A small k asks
argsort for k positions only (one pass over x, O(n k) at worst); a bigger one sorts the row.
"""

from __future__ import annotations

import math

import numpy as np

from cerebro.compiler.ir import DType, Value
from cerebro.frontends.jax.context import Context

FIRST_K_LIMIT = 32  # top_k up to this k selects (n compares, k-long insertions); above it the row is sorted


def _to_last(ctx: Context, x: Value, axis: int) -> tuple[Value, tuple[int, ...]]:
    """x with `axis` moved last, and the permutation that undoes it."""
    perm = tuple(d for d in range(x.rank) if d != axis) + (axis,)
    inverse = tuple(int(i) for i in np.argsort(perm))
    return ctx.transpose(x, perm), inverse


def _take_rows(ctx: Context, x: Value, positions: Value) -> Value:
    """x[..., positions[..., j]] along the last axis (x and positions share the leading dims)."""
    n, rows = x.shape[-1], math.prod(x.shape[:-1])
    flat = ctx.reshape(positions, (rows, positions.shape[-1]))
    if rows > 1:
        starts = ctx.add("iota", shape=(rows, 1), dtype=DType.i64, dimension=0)
        flat = ctx.elementwise("add", flat, ctx.elementwise("mul", starts, ctx.const(np.array(n), DType.i64)))
    taken = ctx.add("take", ctx.reshape(x, (x.size,)), ctx.reshape(flat, (flat.size,)), axis=0, mode="clip")
    return ctx.reshape(taken, positions.shape)


def _is_iota(x: Value) -> bool:
    """A constant counting 0..n-1 along the last axis (argsort's second operand)."""
    if not x.is_const or not x.dtype.is_int:
        return False
    return bool(np.array_equal(x.data, np.broadcast_to(np.arange(x.shape[-1]), x.shape)))


def _sort(ctx: Context, eqn, *operands: Value) -> list[Value]:
    """Several keys sort by the last key first, then stably by each earlier one (so the first decides)."""
    axis = int(eqn.params["dimension"])
    moved = [_to_last(ctx, x, axis) for x in operands]
    keys = [x for x, _ in moved[:int(eqn.params["num_keys"])]]
    positions = ctx.add("argsort", keys[-1])
    for key in reversed(keys[:-1]):
        positions = _take_rows(ctx, positions, ctx.add("argsort", _take_rows(ctx, key, positions)))
    outputs = []
    for x, inverse in moved:
        if _is_iota(x):
            sorted_x = ctx.convert(positions, x.dtype)
        else:
            sorted_x = _take_rows(ctx, x, positions)
        outputs.append(ctx.transpose(sorted_x, inverse))
    return outputs


def _top_k(ctx: Context, eqn, x: Value) -> list[Value]:
    k = int(eqn.params["k"])
    axis = int(eqn.params.get("axis", x.rank - 1))
    moved, inverse = _to_last(ctx, x, axis)
    if k <= FIRST_K_LIMIT:
        order = ctx.add("argsort", moved, order="total", descending=True, k=k)
    else:
        order = ctx.add("argsort", moved, order="total", descending=True)
        order = ctx.add("slice", order, start=(0,) * order.rank, limit=order.shape[:-1] + (k,),
                        strides=(1,) * order.rank)
    values = _take_rows(ctx, moved, order)
    index_dtype = ctx.dtype(eqn.outvars[1].aval.dtype)
    return [ctx.transpose(values, inverse), ctx.transpose(ctx.convert(order, index_dtype), inverse)]


def _cumulative(kind: str):
    def rule(ctx: Context, eqn, x: Value) -> list[Value]:
        axis = int(eqn.params["axis"])
        reverse = bool(eqn.params["reverse"])
        if reverse:
            x = ctx.add("rev", x, dims=(axis,))
        out = ctx.add("cumulative", x, kind=kind, axis=axis)
        return [ctx.add("rev", out, dims=(axis,)) if reverse else out]

    return rule


RULES = {
    "sort": _sort,
    "top_k": _top_k,
    "cumsum": _cumulative("sum"),
    "cumprod": _cumulative("prod"),
    "cummax": _cumulative("max"),
    "cummin": _cumulative("min"),
}
