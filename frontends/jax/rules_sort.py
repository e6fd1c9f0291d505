"""Lowering of lax.sort, lax.top_k and the cumulative reductions (cumsum, cumprod, cummax, cummin,
cumlogsumexp).

sort: one IR argsort of the key (its canonical order is lax.sort's comparator: -0 equals +0, NaNs
equal and last; stable; several keys: one stable argsort per key, last key first), then every
operand is gathered at the sorted positions, so the sorted values are the original elements (a -0
stays -0, NaN payloads stay in order). argsort's own iota operand is the positions themselves.
top_k: argsort in descending IEEE total order (as XLA's TopK: +NaN first, -NaN last, +0 before
-0; ties lower index first), the first k positions, then the values gathered (frontends/sorting.py).
"""

from __future__ import annotations

import numpy as np

from cerebro.compiler.ir import Value
from cerebro.frontends.jax.context import Context
from cerebro.frontends.sorting import take_rows, to_last, top_k


def _is_iota(x: Value) -> bool:
    """A constant counting 0..n-1 along the last axis (argsort's second operand)."""
    if not x.is_const or not x.dtype.is_int:
        return False
    return bool(np.array_equal(x.data, np.broadcast_to(np.arange(x.shape[-1]), x.shape)))


def _sort(ctx: Context, eqn, *operands: Value) -> list[Value]:
    """Several keys sort by the last key first, then stably by each earlier one (so the first decides)."""
    axis = int(eqn.params["dimension"])
    moved = [to_last(ctx, x, axis) for x in operands]
    keys = [x for x, _ in moved[:int(eqn.params["num_keys"])]]
    positions = ctx.add("argsort", keys[-1])
    for key in reversed(keys[:-1]):
        positions = take_rows(ctx, positions, ctx.add("argsort", take_rows(ctx, key, positions)))
    outputs = []
    for x, inverse in moved:
        if _is_iota(x):
            sorted_x = ctx.convert(positions, x.dtype)
        else:
            sorted_x = take_rows(ctx, x, positions)
        outputs.append(ctx.transpose(sorted_x, inverse))
    return outputs


def _top_k(ctx: Context, eqn, x: Value) -> list[Value]:
    values, positions = top_k(ctx, x, int(eqn.params["k"]), int(eqn.params.get("axis", x.rank - 1)))
    return [values, ctx.convert(positions, ctx.dtype(eqn.outvars[1].aval.dtype))]


def _cumulative(kind: str):
    def rule(ctx: Context, eqn, x: Value) -> list[Value]:
        axis = int(eqn.params["axis"])
        reverse = bool(eqn.params["reverse"])
        if reverse:
            x = ctx.add("rev", x, dims=(axis,))
        out = ctx.add("cumulative", x, kind=kind, axis=axis)
        return [ctx.add("rev", out, dims=(axis,)) if reverse else out]

    return rule


LIMITS = {
    "cumsum": "a float cumsum adds in order where XLA adds in a tree: equal up to rounding",
    "cumlogsumexp": "float32/float64; combines in order (XLA: its own window order): equal up to rounding",
}

RULES = {
    "sort": _sort,
    "top_k": _top_k,
    "cumsum": _cumulative("sum"),
    "cumprod": _cumulative("prod"),
    "cummax": _cumulative("max"),
    "cummin": _cumulative("min"),
    "cumlogsumexp": _cumulative("logaddexp"),
}
