"""Lowering of lax.gather: row lookups become one IR take, every other gather a take of flat indices.

XLA's gather semantics: each start index is clamped so its slice fits in the
operand (modes clip and promise_in_bounds); fill_or_drop instead yields the
fill value (NaN for floats, as JAX does) wherever a start is out of range.
"""

from __future__ import annotations

import numpy as np

from cerebro.compiler.ir import DType, Value
from cerebro.frontends.jax.context import Context


def _fill_value(eqn, dtype: DType) -> object:
    fill = eqn.params.get("fill_value")
    if fill is not None:
        return fill
    if dtype.is_float:
        return np.nan
    if dtype is DType.bool:
        return True
    info = np.iinfo(dtype.numpy)
    return info.min if dtype.is_signed else info.max


def _components(ctx: Context, indices: Value, index_dtype: DType) -> list[Value]:
    """The index vector's entries, each shaped like the batch dims indices.shape[:-1]."""
    batch, count = indices.shape[:-1], indices.shape[-1]
    indices = ctx.convert(indices, index_dtype)
    parts = []
    for k in range(count):
        start, limit = [0] * indices.rank, list(indices.shape)
        start[-1], limit[-1] = k, k + 1
        part = indices if count == 1 else ctx.add("slice", indices, start=tuple(start), limit=tuple(limit),
                                                   strides=(1,) * indices.rank)
        parts.append(ctx.reshape(part, batch))
    return parts


def _scalar(ctx: Context, value: int, like: Value) -> Value:
    return ctx.const(np.array(value), like.dtype)


def _is_row_take(dn, sizes: tuple[int, ...], x: Value) -> bool:
    """jnp.take / x[idx]: one indexed axis, collapsed, whole slices of every other axis."""
    if dn.operand_batching_dims or len(dn.start_index_map) != 1:
        return False
    (axis,) = dn.start_index_map
    return tuple(dn.collapsed_slice_dims) == (axis,) and sizes == tuple(
        1 if i == axis else d for i, d in enumerate(x.shape))


def _row_take(ctx: Context, dn, x: Value, index: Value, out_rank: int) -> Value:
    (axis,) = dn.start_index_map
    batch = index.shape
    taken = ctx.add("take", x, index, axis=int(axis), mode="clip")
    # take's layout is x[:axis] + batch + x[axis+1:]; the gather puts operand dims at offset_dims.
    offset_dims = tuple(int(d) for d in dn.offset_dims)
    batch_slots = [d for d in range(out_rank) if d not in offset_dims]
    operand_pos = [i if i < axis else i - 1 + len(batch) for i in range(x.rank) if i != axis]
    perm = [0] * out_rank
    for slot, pos in zip(offset_dims, operand_pos):
        perm[slot] = pos
    for slot, j in zip(batch_slots, range(len(batch))):
        perm[slot] = axis + j
    return ctx.transpose(taken, tuple(perm))


def _flat_take(ctx: Context, eqn, x: Value, comps: list[Value], out_shape: tuple[int, ...], dtype: DType) -> Value:
    """Any gather: the flat operand position of every output element, then one take from x.ravel()."""
    dn = eqn.params["dimension_numbers"]
    sizes = tuple(int(s) for s in eqn.params["slice_sizes"])
    rank = len(out_shape)
    offset_dims = [int(d) for d in dn.offset_dims]
    batch_slots = [p for p in range(rank) if p not in offset_dims]
    batch = comps[0].shape if comps else tuple(out_shape[p] for p in batch_slots)
    start_map = [int(d) for d in dn.start_index_map]
    collapsed = {int(d) for d in dn.collapsed_slice_dims}
    operand_batching = [int(d) for d in dn.operand_batching_dims]
    indices_batching = [int(d) for d in dn.start_indices_batching_dims]
    windowed = [d for d in range(x.rank) if d not in collapsed and d not in operand_batching]

    def along(slot: int, size: int) -> Value:
        shape = [1] * rank
        shape[slot] = size
        return ctx.add("iota", shape=tuple(shape), dtype=dtype, dimension=slot)

    def place(value: Value) -> Value:
        shape = [1] * rank
        for slot, size in zip(batch_slots, value.shape):
            shape[slot] = size
        return ctx.reshape(value, tuple(shape))

    flat = None
    stride = 1
    for d in reversed(range(x.rank)):
        position = None
        if d in operand_batching:
            j = indices_batching[operand_batching.index(d)]
            position = along(batch_slots[j], batch[j])
        else:
            if d in start_map:
                start = comps[start_map.index(d)]
                start = ctx.elementwise("max", start, _scalar(ctx, 0, start))
                start = ctx.elementwise("min", start, _scalar(ctx, x.shape[d] - sizes[d], start))
                position = place(start)
            if d in windowed:
                offset = along(offset_dims[windowed.index(d)], sizes[d])
                position = offset if position is None else ctx.elementwise("add", position, offset)
        if position is not None:
            if stride != 1:
                position = ctx.elementwise("mul", position, ctx.const(np.array(stride), dtype))
            flat = position if flat is None else ctx.elementwise("add", flat, position)
        stride *= x.shape[d]
    if flat is None:
        flat = ctx.const(np.zeros((1,) * rank), dtype)
    flat = ctx.broadcast(flat, out_shape)
    return ctx.add("take", ctx.reshape(x, (x.size,)), flat, axis=0, mode="clip")


def _gather(ctx: Context, eqn, x: Value, indices: Value) -> list[Value]:
    dn = eqn.params["dimension_numbers"]
    sizes = tuple(int(s) for s in eqn.params["slice_sizes"])
    out_shape = tuple(int(d) for d in eqn.outvars[0].aval.shape)
    if not indices.dtype.is_int:
        raise ctx.fail(f"gather with {indices.dtype.name} indices")
    index_dtype = DType.i32 if x.size < 2**31 else DType.i64
    comps = _components(ctx, indices, index_dtype)
    if _is_row_take(dn, sizes, x):
        out = _row_take(ctx, dn, x, comps[0], len(out_shape))
    else:
        out = _flat_take(ctx, eqn, x, comps, out_shape, index_dtype)
    if "FILL_OR_DROP" not in str(eqn.params["mode"]) or not comps:
        return [out]
    inside = None
    for d, comp in zip(dn.start_index_map, comps):
        ok = ctx.add("and", ctx.elementwise("ge", comp, _scalar(ctx, 0, comp)),
                     ctx.elementwise("le", comp, _scalar(ctx, x.shape[d] - sizes[d], comp)))
        inside = ok if inside is None else ctx.add("and", inside, ok)
    batch_slots = [p for p in range(len(out_shape)) if p not in dn.offset_dims]
    mask_shape = [1] * len(out_shape)
    for slot, size in zip(batch_slots, inside.shape):
        mask_shape[slot] = size
    mask = ctx.reshape(inside, tuple(mask_shape))
    return [ctx.elementwise("select", mask, out, ctx.const(np.array(_fill_value(eqn, out.dtype)), out.dtype))]


RULES = {"gather": _gather}
