"""Lowering of JAX's shape, layout, indexing and reduction primitives."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from cerebro.compiler.ir import Value
from cerebro.frontends.jax.context import Context

Rule = Callable[..., list[Value]]


def _reshape(ctx: Context, eqn, x: Value, *dynamic: Value) -> list[Value]:
    if dynamic:
        raise ctx.fail("reshape to a dynamic shape")
    if eqn.params.get("dimensions") is not None:
        x = ctx.transpose(x, eqn.params["dimensions"])
    return [ctx.reshape(x, eqn.params["new_sizes"])]


def _squeeze(ctx: Context, eqn, x: Value) -> list[Value]:
    return [ctx.reshape(x, eqn.outvars[0].aval.shape)]


def _expand_dims(ctx: Context, eqn, x: Value) -> list[Value]:
    return [ctx.reshape(x, eqn.outvars[0].aval.shape)]


def _broadcast_in_dim(ctx: Context, eqn, x: Value, *dynamic: Value) -> list[Value]:
    if dynamic:
        raise ctx.fail("broadcast to a dynamic shape")
    shape = tuple(int(d) for d in eqn.params["shape"])
    dims = tuple(int(d) for d in eqn.params["broadcast_dimensions"])
    if x.shape == shape and dims == tuple(range(len(shape))):
        return [x]
    return [ctx.add("broadcast_in_dim", x, shape=shape, broadcast_dimensions=dims)]


def _transpose(ctx: Context, eqn, x: Value) -> list[Value]:
    return [ctx.transpose(x, eqn.params["permutation"])]


def _concatenate(ctx: Context, eqn, *xs: Value) -> list[Value]:
    return [ctx.add("concatenate", *xs, axis=int(eqn.params["dimension"]))]


def _stack(ctx: Context, eqn, *xs: Value) -> list[Value]:
    axis = int(eqn.params["axis"])
    parts = [ctx.reshape(x, x.shape[:axis] + (1,) + x.shape[axis:]) for x in xs]
    return [parts[0] if len(parts) == 1 else ctx.add("concatenate", *parts, axis=axis)]


def _slice(ctx: Context, eqn, x: Value) -> list[Value]:
    start = tuple(int(s) for s in eqn.params["start_indices"])
    limit = tuple(int(e) for e in eqn.params["limit_indices"])
    strides = tuple(int(s) for s in (eqn.params.get("strides") or (1,) * x.rank))
    if start == (0,) * x.rank and limit == x.shape and strides == (1,) * x.rank:
        return [x]
    return [ctx.add("slice", x, start=start, limit=limit, strides=strides)]


def _split(ctx: Context, eqn, x: Value) -> list[Value]:
    axis = int(eqn.params["axis"])
    outs, offset = [], 0
    for size in eqn.params["sizes"]:
        start = [0] * x.rank
        limit = list(x.shape)
        start[axis], limit[axis] = offset, offset + int(size)
        outs.append(ctx.add("slice", x, start=tuple(start), limit=tuple(limit), strides=(1,) * x.rank))
        offset += int(size)
    return outs


def _dynamic_slice(ctx: Context, eqn, x: Value, *starts: Value) -> list[Value]:
    """Constant starts become a static slice; a traced start becomes a take of start + iota.

    Like XLA, each start is clamped so that the slice stays inside the operand.
    """
    sizes = tuple(int(s) for s in eqn.params["slice_sizes"])
    if len(starts) != x.rank:
        raise ctx.fail("dynamic_slice with dynamic slice sizes")
    for axis, (start, size) in enumerate(zip(starts, sizes)):
        high = x.shape[axis] - size
        if start.is_const:
            first = min(max(int(ctx.scalar(start, "start")), 0), high)
            begin, end = [0] * x.rank, list(x.shape)
            begin[axis], end[axis] = first, first + size
            if size != x.shape[axis]:
                x = ctx.add("slice", x, start=tuple(begin), limit=tuple(end), strides=(1,) * x.rank)
            continue
        start = ctx.reshape(start, (1,))
        start = ctx.elementwise("min", ctx.elementwise("max", start, ctx.const(np.zeros(1), start.dtype)),
                                ctx.const(np.full(1, high), start.dtype))
        offsets = ctx.add("iota", shape=(size,), dtype=start.dtype, dimension=0)
        x = ctx.add("take", x, ctx.add("add", ctx.broadcast(start, (size,)), offsets), axis=axis, mode="clip")
    return [x]


def _rev(ctx: Context, eqn, x: Value) -> list[Value]:
    dims = tuple(int(d) for d in eqn.params["dimensions"])
    return [ctx.add("rev", x, dims=dims) if dims else x]


def _pad(ctx: Context, eqn, x: Value, value: Value) -> list[Value]:
    config = [tuple(int(c) for c in cfg) for cfg in eqn.params["padding_config"]]
    return [ctx.add("pad", x, lo=tuple(c[0] for c in config), hi=tuple(c[1] for c in config),
                    interior=tuple(c[2] for c in config), value=ctx.scalar(value, "the padding value"))]


def _iota(ctx: Context, eqn) -> list[Value]:
    shape = tuple(int(d) for d in eqn.params["shape"])
    return [ctx.add("iota", shape=shape, dtype=ctx.dtype(eqn.params["dtype"]), dimension=int(eqn.params["dimension"]))]


_REDUCTIONS = {"reduce_sum": "reduce_sum", "reduce_max": "reduce_max", "reduce_min": "reduce_min",
               "reduce_prod": "reduce_prod", "reduce_or": "reduce_max", "reduce_and": "reduce_min"}


def _reduction(op: str) -> Rule:
    def rule(ctx: Context, eqn, x: Value) -> list[Value]:
        axes = tuple(sorted(int(a) for a in eqn.params["axes"]))
        return [ctx.add(op, x, axes=axes) if axes else x]

    return rule


def _argreduce(op: str) -> Rule:
    def rule(ctx: Context, eqn, x: Value) -> list[Value]:
        (axis,) = eqn.params["axes"]
        return [ctx.add(op, x, axis=int(axis), index_dtype=ctx.dtype(eqn.params["index_dtype"]))]

    return rule


RULES: dict[str, Rule] = {
    "reshape": _reshape,
    "squeeze": _squeeze,
    "expand_dims": _expand_dims,
    "broadcast_in_dim": _broadcast_in_dim,
    "transpose": _transpose,
    "concatenate": _concatenate,
    "stack": _stack,
    "slice": _slice,
    "split": _split,
    "dynamic_slice": _dynamic_slice,
    "rev": _rev,
    "pad": _pad,
    "iota": _iota,
    "argmax": _argreduce("argmax"),
    "argmin": _argreduce("argmin"),
    **{prim: _reduction(op) for prim, op in _REDUCTIONS.items()},
}
