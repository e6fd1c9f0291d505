"""Data movement: reshapes, transposes, slices, gathers, concatenation, padding.

Shape-valued inputs (Reshape's shape, Slice's starts, ...) must be constants:
the importer folds shape subgraphs, so on a static-shape model they are.
"""

from __future__ import annotations

import numpy as np

from cerebro.compiler.ir import DType, Value
from cerebro.frontends.onnx import build as b
from cerebro.frontends.onnx.table import Ctx, rule
from cerebro.frontends.onnx.types import elem_dtype


@rule("Shape")
def shape(ctx: Ctx, x: Value) -> Value:
    dims = np.array(x.shape, np.int64)
    start, end = ctx.attr("start", 0), ctx.attr("end", None)
    return ctx.const(dims[start:end] if (start or end is not None) else dims)


@rule("Size")
def size(ctx: Ctx, x: Value) -> Value:
    return ctx.const(np.array(x.size, np.int64))


@rule("Reshape", since=5)
def reshape(ctx: Ctx, x: Value, target: Value) -> Value:
    dims = b.ints(ctx, target, "Reshape's shape")
    allowzero = ctx.attr("allowzero", 0)
    out = [x.shape[i] if d == 0 and not allowzero else d for i, d in enumerate(dims)]
    if out.count(-1) > 1:
        raise ctx.error(f"shape {dims} has more than one -1")
    if -1 in out:
        known = int(np.prod([d for d in out if d != -1]))
        if known == 0 or x.size % known:
            raise ctx.error(f"cannot reshape {x.shape} into {dims}")
        out[out.index(-1)] = x.size // known
    if int(np.prod(out)) != x.size:
        raise ctx.error(f"cannot reshape {x.shape} into {dims}")
    return b.reshape(ctx, x, tuple(out))


@rule("Flatten")
def flatten(ctx: Ctx, x: Value) -> Value:
    ax = ctx.attr("axis", 1)
    ax = ax + x.rank if ax < 0 else ax
    outer = int(np.prod(x.shape[:ax]))
    return b.reshape(ctx, x, (outer, int(np.prod(x.shape[ax:]))))


@rule("Transpose")
def transpose(ctx: Ctx, x: Value) -> Value:
    perm = ctx.attr("perm") or list(reversed(range(x.rank)))
    return b.transpose(ctx, x, tuple(b.axes(ctx, perm, x.rank)))


def _squeeze(ctx: Ctx, x: Value, axes: list[int] | None) -> Value:
    if axes is None:
        axes = [i for i, d in enumerate(x.shape) if d == 1]
    axes = b.axes(ctx, axes, x.rank)
    if any(x.shape[a] != 1 for a in axes):
        raise ctx.error(f"cannot squeeze axes {axes} of shape {x.shape}")
    return b.reshape(ctx, x, tuple(d for i, d in enumerate(x.shape) if i not in axes))


def _unsqueeze(ctx: Ctx, x: Value, axes: list[int]) -> Value:
    rank = x.rank + len(axes)
    axes = sorted(b.axes(ctx, axes, rank))
    dims = iter(x.shape)
    return b.reshape(ctx, x, tuple(1 if i in axes else next(dims) for i in range(rank)))


@rule("Squeeze")
def squeeze_attr(ctx: Ctx, x: Value) -> Value:
    return _squeeze(ctx, x, ctx.attr("axes"))


@rule("Squeeze", since=13)
def squeeze(ctx: Ctx, x: Value, axes: Value | None = None) -> Value:
    return _squeeze(ctx, x, b.ints(ctx, axes, "Squeeze's axes"))


@rule("Unsqueeze")
def unsqueeze_attr(ctx: Ctx, x: Value) -> Value:
    return _unsqueeze(ctx, x, ctx.attr("axes"))


@rule("Unsqueeze", since=13)
def unsqueeze(ctx: Ctx, x: Value, axes: Value) -> Value:
    return _unsqueeze(ctx, x, b.ints(ctx, axes, "Unsqueeze's axes"))


@rule("Concat")
def concat(ctx: Ctx, *xs: Value) -> Value:
    ax = b.axis(ctx, ctx.attr("axis"), xs[0].rank)
    parts = [x for x in xs if x.shape[ax] != 0] or [xs[0]]
    if len(parts) == 1:
        return parts[0]
    return ctx.add("concatenate", *parts, axis=ax)


def _split(ctx: Ctx, x: Value, sizes: list[int] | None) -> list[Value]:
    ax = b.axis(ctx, ctx.attr("axis", 0), x.rank)
    n = ctx.attr("num_outputs") or ctx.n_outputs
    if sizes is None:
        chunk = -(-x.shape[ax] // n)
        sizes = [min(chunk, x.shape[ax] - i * chunk) for i in range(n)]
    if sum(sizes) != x.shape[ax]:
        raise ctx.error(f"split sizes {sizes} do not add up to dim {x.shape[ax]}")
    outs, start = [], 0
    for s in sizes:
        outs.append(b.slice_axis(ctx, x, ax, start, start + s))
        start += s
    return outs


@rule("Split")
def split_attr(ctx: Ctx, x: Value, sizes: Value | None = None) -> list[Value]:
    return _split(ctx, x, ctx.attr("split") or b.ints(ctx, sizes, "Split's split"))


@rule("Split", since=13)
def split(ctx: Ctx, x: Value, sizes: Value | None = None) -> list[Value]:
    return _split(ctx, x, b.ints(ctx, sizes, "Split's split"))


def _slice(ctx: Ctx, x: Value, starts: list[int], ends: list[int], axes: list[int] | None,
           steps: list[int] | None) -> Value:
    axes = b.axes(ctx, axes if axes is not None else list(range(len(starts))), x.rank)
    steps = steps or [1] * len(starts)
    begin, limit, stride = [0] * x.rank, list(x.shape), [1] * x.rank
    flip = []
    for a, s, e, st in zip(axes, starts, ends, steps):
        if st == 0:
            raise ctx.error("slice step 0")
        idx = range(x.shape[a])[slice(s, e, st)]
        if len(idx) == 0:
            begin[a], limit[a] = 0, 0
            continue
        if st < 0:
            flip.append(a)
            first = x.shape[a] - 1 - idx[0]
            begin[a], limit[a], stride[a] = first, first + (len(idx) - 1) * -st + 1, -st
        else:
            begin[a], limit[a], stride[a] = idx[0], idx[-1] + 1, st
    if flip:
        x = ctx.add("rev", x, dims=tuple(sorted(flip)))
    if (begin, limit, stride) == ([0] * x.rank, list(x.shape), [1] * x.rank):
        return x
    return ctx.add("slice", x, start=tuple(begin), limit=tuple(limit), strides=tuple(stride))


@rule("Slice")
def slice_attr(ctx: Ctx, x: Value) -> Value:
    return _slice(ctx, x, ctx.attr("starts"), ctx.attr("ends"), ctx.attr("axes"), None)


@rule("Slice", since=10)
def slice_(ctx: Ctx, x: Value, starts: Value, ends: Value, axes: Value | None = None,
           steps: Value | None = None) -> Value:
    return _slice(ctx, x, b.ints(ctx, starts, "starts"), b.ints(ctx, ends, "ends"),
                  b.ints(ctx, axes, "axes"), b.ints(ctx, steps, "steps"))


@rule("Gather")
def gather(ctx: Ctx, x: Value, idx: Value) -> Value:
    ax = b.axis(ctx, ctx.attr("axis", 0), x.rank)
    if idx.is_const:
        data = np.where(idx.data < 0, idx.data + x.shape[ax], idx.data)
        if np.any(data < 0) or np.any(data >= x.shape[ax]):
            raise ctx.error(f"index out of range for dim {x.shape[ax]}")
        idx = ctx.const(data.astype(np.int64))
    return ctx.add("take", x, idx, axis=ax, mode="wrap")


@rule("GatherElements")
def gather_elements(ctx: Ctx, x: Value, idx: Value) -> Value:
    """Flatten x and gather at the linear index built from idx and iotas on the other axes."""
    ax = b.axis(ctx, ctx.attr("axis", 0), x.rank)
    idx = b.cast(ctx, idx, DType.i64)
    idx = b.select(ctx, b.binary(ctx, "lt", idx, ctx.const(np.int64(0))),
                   b.add(ctx, idx, ctx.const(np.int64(x.shape[ax]))), idx)
    positions = b.flat_positions(ctx, idx, x.shape, ax)
    return ctx.add("take", b.reshape(ctx, x, (x.size,)), positions, axis=0, mode="clip")


@rule("Expand", since=8)
def expand(ctx: Ctx, x: Value, target: Value) -> Value:
    dims = b.ints(ctx, target, "Expand's shape")
    return b.expand(ctx, x, b.broadcast_shape(x.shape, tuple(dims)))


@rule("Tile", since=6)
def tile(ctx: Ctx, x: Value, repeats: Value) -> Value:
    reps = b.ints(ctx, repeats, "Tile's repeats")
    # [d] -> [1, d] -> broadcast [r, d] -> reshape [r*d]
    inter = tuple(v for d in x.shape for v in (1, d))
    target = tuple(v for r, d in zip(reps, x.shape) for v in (r, d))
    y = b.expand(ctx, b.reshape(ctx, x, inter), target)
    return b.reshape(ctx, y, tuple(r * d for r, d in zip(reps, x.shape)))


def _pad(ctx: Ctx, x: Value, pads: list[int], value: float, axes: list[int] | None) -> Value:
    mode = ctx.attr("mode", "constant")
    axes = b.axes(ctx, axes, x.rank) if axes is not None else list(range(x.rank))
    lo, hi = [0] * x.rank, [0] * x.rank
    for i, a in enumerate(axes):
        lo[a], hi[a] = pads[i], pads[i + len(axes)]
    if mode == "constant":
        return b.pad(ctx, x, lo, hi, value)
    if mode not in ("reflect", "edge", "wrap"):
        raise ctx.error(f"pad mode {mode!r} is not supported")
    for a in range(x.rank):
        n = x.shape[a]
        left = [_source(mode, -i - 1, n) for i in range(lo[a])][::-1] if lo[a] > 0 else []
        right = [_source(mode, n + i, n) for i in range(hi[a])] if hi[a] > 0 else []
        if not left and not right:
            if lo[a] < 0 or hi[a] < 0:
                x = b.slice_axis(ctx, x, a, max(-lo[a], 0), n - max(-hi[a], 0))
            continue
        idx = ctx.const(np.array(left + list(range(n)) + right, np.int64))
        x = ctx.add("take", x, idx, axis=a, mode="clip")
    return x


def _source(mode: str, i: int, n: int) -> int:
    """Which input index a padded position reads in reflect/edge/wrap modes."""
    if mode == "edge":
        return min(max(i, 0), n - 1)
    if mode == "wrap":
        return i % n
    period = 2 * (n - 1) if n > 1 else 1
    i = abs(i) % period
    return i if i < n else period - i


@rule("Pad", since=2)
def pad_attr(ctx: Ctx, x: Value) -> Value:
    return _pad(ctx, x, ctx.attr("pads"), ctx.attr("value", 0.0), None)


@rule("Pad", since=11)
def pad(ctx: Ctx, x: Value, pads: Value, value: Value | None = None, axes: Value | None = None) -> Value:
    fill = 0 if value is None else b.floats(ctx, value, "Pad's constant_value")[0] if value.size else 0
    return _pad(ctx, x, b.ints(ctx, pads, "pads"), fill, b.ints(ctx, axes, "axes"))


@rule("DepthToSpace")
def depth_to_space(ctx: Ctx, x: Value) -> Value:
    n, c, h, w = x.shape
    s = ctx.attr("blocksize")
    if ctx.attr("mode", "DCR") == "DCR":
        y = b.transpose(ctx, b.reshape(ctx, x, (n, s, s, c // (s * s), h, w)), (0, 3, 4, 1, 5, 2))
    else:
        y = b.transpose(ctx, b.reshape(ctx, x, (n, c // (s * s), s, s, h, w)), (0, 1, 4, 2, 5, 3))
    return b.reshape(ctx, y, (n, c // (s * s), h * s, w * s))


@rule("SpaceToDepth")
def space_to_depth(ctx: Ctx, x: Value) -> Value:
    n, c, h, w = x.shape
    s = ctx.attr("blocksize")
    perm = (0, 3, 5, 1, 2, 4) if ctx.attr("mode", "DCR") == "DCR" else (0, 1, 3, 5, 2, 4)
    y = b.transpose(ctx, b.reshape(ctx, x, (n, c, h // s, s, w // s, s)), perm)
    return b.reshape(ctx, y, (n, c * s * s, h // s, w // s))


@rule("Dropout")
def dropout(ctx: Ctx, x: Value, ratio: Value | None = None, training: Value | None = None) -> list[Value]:
    """Inference: identity, and an all-true mask."""
    if training is not None and (not training.is_const or bool(training.data)):
        raise ctx.error("Dropout in training mode is not supported (it is random)")
    if ctx.attr("is_test", 1) == 0 and ctx.version < 7:
        raise ctx.error("Dropout in training mode is not supported (it is random)")
    return [x, ctx.const(np.ones(x.shape, bool))]


@rule("Trilu")
def trilu(ctx: Ctx, x: Value, k: Value | None = None) -> Value:
    offset = b.ints(ctx, k, "Trilu's k")[0] if k is not None else 0
    rows, cols = x.shape[-2:]
    r, c = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    keep = (c - r >= offset) if ctx.attr("upper", 1) else (c - r <= offset)
    return b.select(ctx, ctx.const(keep), x, b.scalar(ctx, 0, x))



@rule("OneHot", since=9)
def one_hot(ctx: Ctx, indices: Value, depth: Value, values: Value) -> Value:
    n = int(b.floats(ctx, depth, "OneHot's depth")[0])
    ax = b.axis(ctx, ctx.attr("axis", -1), indices.rank + 1)
    idx = b.cast(ctx, indices, DType.i64)
    idx = b.select(ctx, b.binary(ctx, "lt", idx, ctx.const(np.int64(0))), b.add(ctx, idx, ctx.const(np.int64(n))), idx)
    shape = indices.shape[:ax] + (n,) + indices.shape[ax:]
    idx = b.expand(ctx, b.reshape(ctx, idx, indices.shape[:ax] + (1,) + indices.shape[ax:]), shape)
    hot = ctx.add("eq", idx, ctx.add("iota", shape=shape, dtype=DType.i64, dimension=ax))
    off = b.reshape(ctx, b.slice_axis(ctx, values, 0, 0, 1), ())
    on = b.reshape(ctx, b.slice_axis(ctx, values, 0, 1, 2), ())
    return b.select(ctx, hot, b.expand(ctx, on, shape), b.expand(ctx, off, shape))


@rule("Constant")
def constant(ctx: Ctx) -> Value:
    """The one value attribute given, as ONNX types it (value_float is float32, value_ints int64)."""
    given = sorted(name for name, value in ctx.attrs.items() if value is not None)
    if len(given) != 1 or given[0] not in CONSTANT_ATTRS:
        raise ctx.error(f"needs exactly one of the value attributes {sorted(CONSTANT_ATTRS)}, got {given}")
    (name,) = given
    return ctx.const(np.asarray(ctx.attrs[name], CONSTANT_ATTRS[name]))


CONSTANT_ATTRS = {"value": None, "value_float": np.float32, "value_floats": np.float32,
                  "value_int": np.int64, "value_ints": np.int64}


@rule("ConstantOfShape")
def constant_of_shape(ctx: Ctx, shape: Value) -> Value:
    value = ctx.attr("value", np.zeros(1, np.float32))
    return ctx.const(np.full(b.ints(ctx, shape, "ConstantOfShape's shape"), value.reshape(-1)[0], value.dtype))


@rule("Range")
def range_(ctx: Ctx, start: Value, limit: Value, delta: Value) -> Value:
    """ONNX's count, max(ceil((limit - start) / delta), 0), and start + i * delta in the inputs' type."""
    for name, value in (("start", start), ("limit", limit), ("delta", delta)):
        if not value.is_const:
            raise ctx.dynamic(f"Range's {name}", value)
    first, last, step = (v.data.reshape(()) for v in (start, limit, delta))
    count = max(int(np.ceil((float(last) - float(first)) / float(step))), 0)
    return ctx.const((first + np.arange(count, dtype=start.dtype.numpy) * step).astype(start.dtype.numpy), start.dtype)


@rule("EyeLike")
def eye_like(ctx: Ctx, x: Value) -> Value:
    k = ctx.attr("k", 0)
    dtype = elem_dtype(ctx.attr("dtype"), ctx.loc) if ctx.attr("dtype") is not None else x.dtype
    return ctx.const(np.eye(x.shape[0], x.shape[1], k, dtype.numpy), dtype)


@rule("CumSum", since=11)
def cumsum(ctx: Ctx, x: Value, axis: Value) -> Value:
    """The IR's running sum (in order, O(n)); reverse runs it on the reversed axis, exclusive shifts
    the input one step in by a zero."""
    ax = b.axis(ctx, b.ints(ctx, axis, "CumSum's axis")[0], x.rank)
    n = x.shape[ax]
    exclusive, reverse = ctx.attr("exclusive", 0), ctx.attr("reverse", 0)
    if exclusive and n:
        x = b.pad(ctx, b.slice_axis(ctx, x, ax, 1, n) if reverse else b.slice_axis(ctx, x, ax, 0, n - 1),
                  [0 if reverse or d != ax else 1 for d in range(x.rank)],
                  [1 if reverse and d == ax else 0 for d in range(x.rank)])
    if reverse:
        x = ctx.add("rev", x, dims=(ax,))
    total = ctx.add("cumulative", x, kind="sum", axis=ax)
    return ctx.add("rev", total, dims=(ax,)) if reverse else total


# What a rule does not cover (docs/coverage.md shows these as "supported with limits").
LIMITS = {
    "Dropout": "inference mode only (training mode is random)",
}
