"""Lowering of lax.scatter, scatter-add/-mul/-max/-min and dynamic_update_slice: one IR scatter.

Every update element gets the flat operand position XLA's scatter semantics give it (the start
index of its update window, plus its offset in the window, plus its batch index on batching dims);
the IR scatter applies the updates in row-major order. Modes: CLIP clamps each start so the window
fits (jnp's mode="clip"); FILL_OR_DROP and PROMISE_IN_BOUNDS drop a whole window whose start does
not fit (XLA's CPU behaviour), marked by position -1, which the IR scatter never writes.
"""

from __future__ import annotations

import numpy as np

from cerebro.compiler.ir import DType, Value
from cerebro.frontends.jax.context import Context
from cerebro.frontends.jax.rules_gather import _components, _scalar


def _window_sizes(dn, x: Value, updates: Value) -> list[int]:
    """The update window's extent along each operand dim (1 on inserted and batching dims)."""
    unit = {int(d) for d in dn.inserted_window_dims} | {int(d) for d in dn.operand_batching_dims}
    windowed = [d for d in range(x.rank) if d not in unit]
    sizes = [1] * x.rank
    for d, slot in zip(windowed, dn.update_window_dims):
        sizes[d] = updates.shape[int(slot)]
    return sizes


def _positions(ctx: Context, eqn, x: Value, indices: Value, updates: Value) -> Value:
    dn = eqn.params["dimension_numbers"]
    clip = "CLIP" in str(eqn.params["mode"])
    rank = updates.rank
    window_slots = [int(d) for d in dn.update_window_dims]
    scatter_slots = [p for p in range(rank) if p not in window_slots]
    sizes = _window_sizes(dn, x, updates)
    unit = {int(d) for d in dn.inserted_window_dims} | {int(d) for d in dn.operand_batching_dims}
    windowed = [d for d in range(x.rank) if d not in unit]
    start_map = [int(d) for d in dn.scatter_dims_to_operand_dims]
    operand_batching = [int(d) for d in dn.operand_batching_dims]
    indices_batching = [int(d) for d in dn.scatter_indices_batching_dims]
    comps = _components(ctx, indices, DType.i64)

    def along(slot: int) -> Value:
        shape = [1] * rank
        shape[slot] = updates.shape[slot]
        return ctx.add("iota", shape=tuple(shape), dtype=DType.i64, dimension=slot)

    def place(value: Value) -> Value:
        shape = [1] * rank
        for slot, size in zip(scatter_slots, value.shape):
            shape[slot] = size
        return ctx.reshape(value, tuple(shape))

    flat, inside, stride = None, None, 1
    for d in reversed(range(x.rank)):
        position = None
        if d in operand_batching:
            position = along(scatter_slots[indices_batching[operand_batching.index(d)]])
        elif d in start_map:
            start = comps[start_map.index(d)]
            low, high = _scalar(ctx, 0, start), _scalar(ctx, x.shape[d] - sizes[d], start)
            if clip:
                start = ctx.elementwise("min", ctx.elementwise("max", start, low), high)
            else:
                fits = ctx.add("and", ctx.elementwise("ge", start, low), ctx.elementwise("le", start, high))
                inside = fits if inside is None else ctx.add("and", inside, fits)
            position = place(start)
        if d in windowed and sizes[d] > 1:
            offset = along(window_slots[windowed.index(d)])
            position = offset if position is None else ctx.elementwise("add", position, offset)
        if position is not None:
            if stride != 1:
                position = ctx.elementwise("mul", position, ctx.const(np.array(stride), DType.i64))
            flat = position if flat is None else ctx.elementwise("add", flat, position)
        stride *= x.shape[d]
    flat = ctx.broadcast(flat if flat is not None else ctx.const(np.zeros((1,) * rank), DType.i64), updates.shape)
    if inside is None:
        return flat
    return ctx.elementwise("select", place(inside), flat, ctx.const(np.array(-1), DType.i64))


def _computes_the_update(eqn) -> bool:
    """lax.scatter whose update_jaxpr does more than return the update (x.at[i].apply(fn))."""
    jaxpr = eqn.params.get("update_jaxpr")
    if jaxpr is None:
        return False
    jaxpr = getattr(jaxpr, "jaxpr", jaxpr)
    return bool(jaxpr.eqns) or jaxpr.outvars[0] is not jaxpr.invars[1]


def _scatter(kind: str):
    def rule(ctx: Context, eqn, x: Value, indices: Value, updates: Value) -> list[Value]:
        if not indices.dtype.is_int:
            raise ctx.fail(f"scatter with {indices.dtype.name} indices")
        if kind == "set" and _computes_the_update(eqn):
            raise ctx.fail("scatter that computes its update from the operand (x.at[...].apply)")
        if x.size == 0 or updates.size == 0:
            return [x]
        return [ctx.add("scatter", x, _positions(ctx, eqn, x, indices, updates), updates, kind=kind)]

    return rule


def _dynamic_update_slice(ctx: Context, eqn, x: Value, update: Value, *starts: Value) -> list[Value]:
    """A scatter set of the whole update at its start, each start clamped so the update fits (as XLA)."""
    if update.size == 0:
        return [x]
    flat, stride = None, 1
    for d in reversed(range(x.rank)):
        start = ctx.convert(ctx.reshape(starts[d], (1,) * x.rank), DType.i64)
        start = ctx.elementwise("min", ctx.elementwise("max", start, _scalar(ctx, 0, start)),
                                _scalar(ctx, x.shape[d] - update.shape[d], start))
        offsets = [1] * x.rank
        offsets[d] = update.shape[d]
        position = ctx.elementwise("add", start, ctx.add("iota", shape=tuple(offsets), dtype=DType.i64, dimension=d))
        if stride != 1:
            position = ctx.elementwise("mul", position, ctx.const(np.array(stride), DType.i64))
        flat = position if flat is None else ctx.elementwise("add", flat, position)
        stride *= x.shape[d]
    return [ctx.add("scatter", x, ctx.broadcast(flat, update.shape), update, kind="set")]


LIMITS = {"scatter": "not x.at[...].apply (an update_jaxpr that computes from the operand)"}

RULES = {
    "dynamic_update_slice": _dynamic_update_slice,
    "scatter": _scatter("set"),
    "scatter-add": _scatter("add"),
    "scatter-mul": _scatter("mul"),
    "scatter-max": _scatter("max"),
    "scatter-min": _scatter("min"),
}
