"""reduce_window (sum/max/min pooling): vectors over the trailing un-windowed dims, window loops around them.

Trailing dims with window 1, stride 1 and no padding (the channels of an
NHWC pooling) are merged into one contiguous block C. Loop structure:
    for each output position of the windowed dims
      for a block of C (U vectors of W lanes, then tails)
        acc = identity ; for each window position: if inside: acc = op(acc, x[pixel, c0 : c0+U*W])
Padding is a bounds check per window position (only for dims that are
padded on that side); an outside cell leaves acc unchanged, i.e. it holds
the identity, and the load reads a clamped valid address. That per-pixel path
is the fallback; three rows paths go first, each over one output row at a time:
  - the last dim itself windowed (NCHW pooling): vectors along the output row,
    from an identity-padded stack scratch row (_emit_rows);
  - max/min over pixels of C (NHWC pooling) whose neighbouring windows share
    at most 2 columns (3x3/2, 3x3/1): pixel by pixel, the shared column maxima
    kept in a small stack scratch (_emit_pixel_carry);
  - other max/min over pixels of C (SPP 13x13/1): vectors along C, from an
    identity-padded scratch row (_emit_pixel_rows).
max/min are separable there: taps + window combines per output, not taps * window.
The per-pixel and carry paths go over output rows too (a row's pixels in an inner loop) and take their
sizes (the windowed dims' input and output sizes, the block) as run-time arguments (size_arguments), so
pools differing only in them share one function: the benchmark cnn's 28x28x32 and 14x14x64 2x2/2 pools,
SqueezeNet's three 3x3/2 pools, DenseNet's three 2x2/2 average pools. Window, strides, padding, the path
and the plan of the block's vectors (_plan) stay constants (runtime_shapes keys them).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

from llvmlite import ir

from cerebro.compiler.codegen.layout import affine_at
from cerebro.compiler.codegen.llvm_types import (
    STACK_ARRAY_BYTES,
    byte_size,
    constant,
    element_type,
    index,
    load,
    stack_array,
    store,
)
from cerebro.compiler.codegen.loops import fold_nest, for_range, i64, size_value
from cerebro.compiler.codegen.matmul import column_phases
from cerebro.compiler.codegen.partition import parts_of, share, unflatten
from cerebro.compiler.codegen.reduce import combiner, identity
from cerebro.compiler.codegen.registry import EmitContext, SizeRules, emitter, sizes_as_arguments, unsupported
from cerebro.compiler.ir import Node
from cerebro.compiler.ir.dtypes import DType
from cerebro.compiler.targets import lanes

_VECTORS = 2  # column vectors per block: pooling windows are short, so few accumulators suffice
_SCRATCH_BYTES = STACK_ARRAY_BYTES // 2  # stack scratch of the rows paths (2 KiB): code also runs on kernel stacks
_PIXEL_BYTES = 64  # one vector of a pixel's channels in the rows-of-pixels scratch, at most (AVX-512)
_MAX_CARRIED = 2  # window columns shared by neighbouring outputs the carry path keeps (3x3/1); SPP's 12 go by rows
_MAX_TAPS = 16  # leading-dim taps the carry path unrolls
_CARRY_VECTORS = 4  # vectors of channels per pass of the carry path
_SIZED_VECTORS = 2  # at most, per pass of a block of run-time size (_plan)

Number = int | ir.Value  # a size: a constant, or an i64 argument of a shared pool's function
Plan = tuple[int, int]  # a run-time block's vectors per pass and scalar tail (_plan)


@dataclass(frozen=True)
class _Axis:
    size: Number
    window: int
    stride: int
    lo: int
    hi: int
    out: Number


def _inner_start(node: Node) -> int:
    """The first of the trailing dims the window neither spans nor strides: one contiguous block."""
    x = node.inputs[0]
    window, strides, padding = node.attrs["window"], node.attrs["strides"], node.attrs["padding"]
    start = x.rank
    while start > 0 and window[start - 1] == 1 and strides[start - 1] == 1 and tuple(padding[start - 1]) == (0, 0):
        start -= 1
    return start


def _axes(node: Node, count: int) -> list[_Axis]:
    x, out = node.inputs[0], node.outputs[0]
    window, strides, padding = node.attrs["window"], node.attrs["strides"], node.attrs["padding"]
    return [_Axis(x.shape[i], window[i], strides[i], padding[i][0], padding[i][1], out.shape[i])
            for i in range(count)]


def _by_rows(node: Node) -> bool:
    """The last dim is windowed (no contiguous block), not cropped, and its padded rows fit the stack scratch."""
    x = node.inputs[0]
    if x.rank == 0 or _inner_start(node) != x.rank:
        return False
    axes = _axes(node, x.rank)
    col = axes[-1]
    scratch_rows = 1 if node.attrs["kind"] in ("max", "min") else math.prod(a.window for a in axes[:-1])
    scratch = (scratch_rows * (col.lo + col.size + col.hi) + col.stride) * x.dtype.itemsize
    return min(col.lo, col.hi) >= 0 and scratch <= _SCRATCH_BYTES


def _carried(node: Node) -> int:
    """Window columns an output pixel shares with the next one along the row (k - s, or 0)."""
    col = _axes(node, _inner_start(node))[-1]
    return max(col.window - col.stride, 0)


def _by_pixel_carry(node: Node) -> bool:
    """max/min windows over pixels of a contiguous block (NHWC pooling) overlapping their neighbours along
    the row by at most MAX_CARRIED columns (3x3/2, 3x3/1), whose shared column maxima fit the stack scratch."""
    x, start = node.inputs[0], _inner_start(node)
    if start in (0, x.rank) or node.attrs["kind"] not in ("max", "min") or math.prod(node.attrs["window"]) == 1:
        return False
    axes = _axes(node, start)
    block = math.prod(x.shape[start:])
    taps = math.prod(a.window for a in axes[:-1])
    return (min(axes[-1].lo, axes[-1].hi) >= 0 and _carried(node) <= _MAX_CARRIED and taps <= _MAX_TAPS
            and _carried(node) * block * x.dtype.itemsize <= _SCRATCH_BYTES)


def _by_pixel_rows(node: Node) -> bool:
    """max/min windows over pixels of a contiguous block (NHWC pooling) whose row is not cropped and fits."""
    x, start = node.inputs[0], _inner_start(node)
    if start in (0, x.rank) or node.attrs["kind"] not in ("max", "min"):
        return False
    col = _axes(node, start)[-1]
    span = col.lo + col.size + col.hi
    return math.prod(node.attrs["window"]) > 1 and min(col.lo, col.hi) >= 0 and span * _PIXEL_BYTES <= _SCRATCH_BYTES


def window_units(node: Node, target: object, parts: int) -> int:
    """Output rows: of the rows path (all dims but the last), or of pixels (the dims before the block's
    last windowed one)."""
    shape = node.outputs[0].shape
    if _by_rows(node):
        return math.prod(shape[:-1])
    return math.prod(shape[:max(_inner_start(node) - 1, 0)])


def _sized_path(node: Node) -> str | None:
    """The path of a pool over pixels of a contiguous block that takes its sizes as arguments ("carry" or
    "pixels"); None: every size a constant (the rows paths, no block, nothing to pool, or a block that is not
    whole 64-byte vectors: a run-time block's scalar tail made ShuffleNet's 24-channel pool 9% slower)."""
    x, start = node.inputs[0], _inner_start(node)
    if (start in (0, x.rank) or x.size == 0 or node.outputs[0].size == 0 or _by_rows(node)
            or math.prod(x.shape[start:]) * x.dtype.itemsize % _PIXEL_BYTES):
        return None
    if _by_pixel_carry(node):
        return "carry"
    return None if _by_pixel_rows(node) else "pixels"


def size_arguments(node: Node) -> list[int]:
    """The windowed dims' input sizes, their output sizes, then the block (a sized path), else none."""
    if _sized_path(node) is None:
        return []
    start = _inner_start(node)
    axes = _axes(node, start)
    return [*(a.size for a in axes), *(a.out for a in axes), math.prod(node.inputs[0].shape[start:])]


def runtime_shapes(node: Node, target: object) -> tuple[dict[int, tuple], tuple, dict[str, object]] | None:
    """For kernel_key: every size of the input and output left out; the path and the block's plan
    (what the code keeps of the sizes) as the choices; window, strides and padding stay in the attrs."""
    path = _sized_path(node)
    if path is None:
        return None
    x, out = node.inputs[0], node.outputs[0]
    plan = _plan(math.prod(x.shape[_inner_start(node):]), lanes(target, x.dtype))
    return {x.id: (None,) * x.rank, out.id: (None,) * out.rank}, ("sizes", path, plan), {}


def _take_sizes(node: Node, fn: ir.Function, axes: list[_Axis], block: int) -> tuple[list[_Axis], Number]:
    """axes and block with fn's size arguments (size_arguments' order) in place of the node's constants,
    where module.py passes them."""
    count = len(size_arguments(node))
    if not count or len(fn.args) != len(node.inputs) + len(node.outputs) + 2 + count:
        return axes, block
    sizes = fn.args[len(fn.args) - count:]
    rank = len(axes)
    return [replace(a, size=sizes[k], out=sizes[rank + k]) for k, a in enumerate(axes)], sizes[-1]


def _times(builder: ir.IRBuilder, *numbers: Number) -> Number:
    """The product of numbers (folded where all are constants)."""
    constant_part = math.prod(n for n in numbers if isinstance(n, int))
    total: Number = constant_part
    for n in numbers:
        if not isinstance(n, int):
            total = n if isinstance(total, int) and total == 1 else builder.mul(
                i64(total) if isinstance(total, int) else total, n, flags=("nsw",))
    return total


def _plan(block: int, width: int) -> Plan:
    """(vectors per pass, scalar tail) of a run-time block, from the node's own: passes of 2 vectors where
    the block's whole vectors are even (the cnn's 32 and 64 channels, SqueezeNet's 64 to 256: one code),
    else of 1; then block % width scalars."""
    return (1 if block // width % 2 else _SIZED_VECTORS), block % width


def _phases(builder: ir.IRBuilder, block: Number, width: int, vectors: int, plan: Plan
            ) -> list[tuple[list[int], Number, Number]]:
    """column_phases of a constant block; a run-time block's as its plan (_plan) says, the count of passes
    and the tail's start computed from it."""
    if isinstance(block, int):
        return column_phases(block, width, vectors)
    count, tail = plan
    phases: list[tuple[list[int], Number, Number]] = [([width] * count, builder.udiv(block, i64(width * count)), 0)]
    return phases + [([1], tail, builder.sub(block, i64(tail)))] * (tail > 0)


@emitter("reduce_window", units=window_units)
def emit_reduce_window(ctx: EmitContext, node: Node, fn: ir.Function) -> None:
    (x,) = node.inputs
    out = node.outputs[0]
    dtype = x.dtype
    if dtype not in (DType.f32, DType.f64, DType.i8, DType.i16, DType.i32, DType.i64, DType.u8, DType.u16, DType.u32):
        raise unsupported(node, f"reduce_window on {dtype.name}")
    for name in ("window_dilation", "base_dilation"):
        if any(d != 1 for d in node.attrs.get(name) or ()):
            raise unsupported(node, f"reduce_window with {name} {node.attrs[name]}")
    strides = node.attrs["strides"]
    if any(s < 1 for s in strides):
        raise unsupported(node, f"reduce_window strides {strides}")
    inner_start = _inner_start(node)
    block = math.prod(x.shape[inner_start:])
    axes = _axes(node, inner_start) or [_Axis(1, 1, 1, 0, 0, 1)]  # no windowed dim: one pixel
    px, po = fn.args[:2]
    builder = ir.IRBuilder(fn.append_basic_block("entry"))
    if out.size == 0:
        builder.ret_void()
        return
    part, parts = parts_of(builder, node, fn)
    if _by_rows(node):
        _emit_rows(ctx, builder, node, axes, (px, po), share(builder, window_units(node, ctx.target, 1), part, parts))
        builder.ret_void()
        return
    axes, block = _take_sizes(node, fn, axes, block)
    rows = share(builder, _times(builder, *(a.out for a in axes[:-1])), part, parts)
    plan = _plan(math.prod(x.shape[inner_start:]), lanes(ctx.target, dtype))
    emit = (_emit_pixel_carry if _by_pixel_carry(node) else _emit_pixel_rows if _by_pixel_rows(node)
            else _emit_pixels)
    emit(ctx, builder, node, axes, block, plan, (px, po), rows)
    builder.ret_void()


def _folding(node: Node) -> tuple[DType, str, Callable, object, ir.Type]:
    """(element dtype, reduce op, its combiner, its identity, LLVM element type) of a pooling node."""
    dtype = node.inputs[0].dtype
    op = f"reduce_{node.attrs['kind']}"
    return dtype, op, combiner(op, dtype), identity(op, dtype), element_type(dtype)


def _emit_pixels(ctx: EmitContext, builder: ir.IRBuilder, node: Node, axes: list[_Axis], block: Number,
                 plan: Plan, buffers: tuple[ir.Value, ir.Value], rows: tuple[ir.Value, ir.Value]) -> None:
    """Any window over pixels of `block` contiguous elements, output pixel by output pixel along each row:
    for each block of U vectors of the pixel's elements, acc = identity, then for each window cell inside
    the input, acc = op(acc, cell) (the fallback: taps * window combines, a bounds check per cell)."""
    px, po = buffers
    dtype, op, combine, start, elem = _folding(node)
    leading, col = axes[:-1], axes[-1]
    lo, hi = rows
    with for_range(builder, hi, "row", start=lo) as flat:
        positions = unflatten(builder, flat, [a.out for a in leading])
        with for_range(builder, col.out, "ow") as ow:
            out_pixel = affine_at(builder, 0, [(flat, col.out), (ow, 1)])
            for widths, count, first in _phases(builder, block, lanes(ctx.target, dtype), _VECTORS, plan):
                offsets = [sum(widths[:c]) for c in range(len(widths))]
                with for_range(builder, count, "cb") as cb:
                    c0 = affine_at(builder, first, [(cb, sum(widths))])

                    def per_cell(cell: list[ir.Value], accs: list[ir.Value], c0: ir.Value = c0,
                                 widths: list[int] = widths, offsets: list[int] = offsets) -> list[ir.Value]:
                        valid, pixel = _input_pixel(builder, axes, [*positions, ow], cell)
                        at = affine_at(builder, 0, [(pixel, block), (c0, 1)])
                        updated = []
                        for acc, w, off in zip(accs, widths, offsets):
                            value = combine(builder, acc, load(builder, px, index(builder, off, (at, 1)), elem, w))
                            updated.append(value if valid is None else builder.select(valid, value, acc))
                        return updated

                    accs = fold_nest(builder, [a.window for a in axes], [constant(elem, start, w) for w in widths],
                                     per_cell, "w")
                    at = affine_at(builder, 0, [(out_pixel, block), (c0, 1)])
                    for acc, off in zip(accs, offsets):
                        store(builder, acc, po, index(builder, off, (at, 1)), elem)


def _input_pixel(builder: ir.IRBuilder, axes: list[_Axis], positions: list[ir.Value],
                 cell: list[ir.Value]) -> tuple[ir.Value | None, ir.Value]:
    """(inside or None when always inside, linear input pixel clamped to 0 when outside)."""
    valid: ir.Value | None = None
    pixel: ir.Value = i64(0)
    for axis, o, k in zip(axes, positions, cell):
        p = index(builder, -axis.lo, (o, axis.stride), (k, 1))
        checks = []
        if axis.lo > 0:
            checks.append(builder.icmp_signed(">=", p, i64(0)))
        if axis.hi > 0:
            checks.append(builder.icmp_signed("<", p, size_value(axis.size)))
        for check in checks:
            valid = check if valid is None else builder.and_(valid, check)
        pixel = affine_at(builder, 0, [(pixel, axis.size), (p, 1)])
    if valid is not None:
        pixel = builder.select(valid, pixel, i64(0))
    return valid, pixel


def _emit_rows(ctx: EmitContext, builder: ir.IRBuilder, node: Node, axes: list[_Axis],
               buffers: tuple[ir.Value, ir.Value], rows: tuple[ir.Value, ir.Value]) -> None:
    """Windows along the last dim, vectorised along the output row (NCHW pooling: W is windowed).

    For each output row, the input rows its windows cover (one per tap of the leading dims) go into a
    stack scratch padded with the identity on both sides (a tap outside the input gives an identity
    row): the window loops then need no bounds checks, and W outputs take one vector load per tap (a
    stride-s window loads W*s elements and keeps every s-th). max/min are separable: the taps'
    rows are combined column-wise into one scratch row first, so an output costs taps + window
    combines instead of taps * window (exact: maximum/minimum are associative and commutative,
    NaN and -0 < +0 included). A sum copies each tap's row and combines every output's taps in the
    reference's row-major order from the identity, so it stays bit-identical.
    """
    px, po = buffers
    dtype, op, combine, start, elem = _folding(node)
    leading, col = axes[:-1], axes[-1]
    taps = math.prod(a.window for a in leading)
    separable = op in ("reduce_max", "reduce_min")
    scratch_rows = 1 if separable else taps
    span = col.lo + col.size + col.hi
    vector = lanes(ctx.target, dtype)
    width = min(vector, col.out)
    load_span = width * col.stride if width > 1 else 1  # whole vectors: past the row's end reads the slack
    slack = load_span - ((width - 1) * col.stride + 1)
    scratch = stack_array(builder, elem, scratch_rows * span + slack, "rows")
    with for_range(builder, scratch_rows * span + slack, "fill") as i:
        store(builder, constant(elem, start), scratch, i, elem)
    keep = ir.Constant(ir.VectorType(ir.IntType(32), width), [j * col.stride for j in range(width)])
    lo, hi = rows
    with for_range(builder, hi, "row", start=lo) as flat:
        positions = unflatten(builder, flat, [a.out for a in leading])

        def tap_row(tap: ir.Value) -> tuple[ir.Value | None, ir.Value]:
            """(inside or None, offset of the input row) of one tap of the leading dims."""
            valid, pixel = _input_pixel(builder, leading, positions, unflatten(builder, tap,
                                                                                [a.window for a in leading]))
            return valid, index(builder, 0, (pixel, col.size))

        if separable:
            row_width = min(vector, col.size)
            with _chunk_starts(builder, col.size, row_width) as c0:
                def per_tap(cell: list[ir.Value], accs: list[ir.Value], c0: ir.Value = c0) -> list[ir.Value]:
                    valid, source = tap_row(cell[0])
                    value = combine(builder, accs[0], load(builder, px, index(builder, 0, (source, 1), (c0, 1)),
                                                           elem, row_width))
                    return [value if valid is None else builder.select(valid, value, accs[0])]

                (column,) = fold_nest(builder, [taps], [constant(elem, start, row_width)], per_tap, "t")
                _store_scratch(builder, column, scratch, index(builder, col.lo, (c0, 1)))
        else:
            with for_range(builder, taps, "tap") as tap:
                valid, source = tap_row(tap)
                target = index(builder, col.lo, (tap, span))
                with for_range(builder, col.size, "copy") as c:
                    value = load(builder, px, index(builder, 0, (source, 1), (c, 1)), elem)
                    if valid is not None:
                        value = builder.select(valid, value, constant(elem, start))
                    store(builder, value, scratch, index(builder, 0, (target, 1), (c, 1)), elem)
        with _chunk_starts(builder, col.out, width) as first:
            def per_cell(cell: list[ir.Value], accs: list[ir.Value], first: ir.Value = first) -> list[ir.Value]:
                at = index(builder, 0, (cell[0], span), (first, col.stride), (cell[1], 1))
                value = load(builder, scratch, at, elem, load_span)
                if col.stride > 1 and width > 1:
                    value = builder.shuffle_vector(value, ir.Constant(value.type, None), keep)
                return [combine(builder, accs[0], value)]

            (acc,) = fold_nest(builder, [scratch_rows, col.window], [constant(elem, start, width)], per_cell, "w")
            store(builder, acc, po, index(builder, 0, (flat, col.out), (first, 1)), elem)


def _emit_pixel_carry(ctx: EmitContext, builder: ir.IRBuilder, node: Node, axes: list[_Axis], block: Number,
                      plan: Plan, buffers: tuple[ir.Value, ir.Value], rows: tuple[ir.Value, ir.Value]) -> None:
    """Separable max/min over pixels of `block` contiguous elements (NHWC pooling), output pixel by output
    pixel along a row, every vector of a pixel's channels in turn (whole pixels read in order: the
    hardware prefetcher follows them when the input is in memory).

    A window's column maxima (the leading dims' taps combined) are combined along the row; the last
    k - s of them are the next output's first ones, so they are kept in a stack scratch of k - s pixels
    instead of recomputed: ResNet's 3x3/2 pool loads 6 input vectors per output vector instead of 9.
    Padding columns hold the identity (a compare per column, not per tap); the leading taps' bounds
    are checked once per row. Exact, as in _emit_rows. A run-time block gets the scratch's largest
    size (_by_pixel_carry checked the node's block fits).
    """
    px, po = buffers
    dtype, op, combine, start, elem = _folding(node)
    leading, col = axes[:-1], axes[-1]
    carried = max(col.window - col.stride, 0)
    vector = lanes(ctx.target, dtype)
    capacity = max(carried, 1) * block if isinstance(block, int) else _SCRATCH_BYTES // dtype.itemsize
    scratch = stack_array(builder, elem, capacity, "columns")
    row_pitch, out_pitch = _times(builder, col.size, block), _times(builder, col.out, block)
    kept_at = [_times(builder, j, block) for j in range(carried)]  # each kept column's place in the scratch
    lo, hi = rows
    with for_range(builder, hi, "row", start=lo) as flat:
        positions = unflatten(builder, flat, [a.out for a in leading])
        taps = [_input_pixel(builder, leading, positions, [i64(k) for k in cell])
                for cell in itertools.product(*(range(a.window) for a in leading))]
        taps = [(valid, affine_at(builder, 0, [(pixel, row_pitch)])) for valid, pixel in taps]

        def column_max(w: ir.Value, c0: ir.Value, width: int) -> ir.Value:
            """The leading taps combined at input column w (the identity outside the row), channels c0.."""
            inside = [builder.icmp_signed(">=", w, i64(0))] if col.lo else []
            inside += [builder.icmp_signed("<", w, size_value(col.size))] if col.hi else []
            valid_w = builder.and_(*inside) if len(inside) == 2 else inside[0] if inside else None
            w = w if valid_w is None else builder.select(valid_w, w, i64(0))
            acc = constant(elem, start, width)
            for valid, row in taps:
                at = affine_at(builder, 0, [(row, 1), (w, block), (c0, 1)])
                value = combine(builder, acc, load(builder, px, at, elem, width))
                acc = value if valid is None else builder.select(valid, value, acc)
            return acc if valid_w is None else builder.select(valid_w, acc, constant(elem, start, width))

        def each_vector(body: Callable[[ir.Value, int], None]) -> None:
            for widths, count, first in _phases(builder, block, vector, _CARRY_VECTORS, plan):
                with for_range(builder, count, "cb") as cb:
                    c0 = affine_at(builder, first, [(cb, sum(widths))])
                    for offset in itertools.accumulate([0, *widths[:-1]]):
                        body(index(builder, offset, (c0, 1)), widths[0])

        def first_columns(c0: ir.Value, width: int) -> None:
            for j in range(carried):
                _store_scratch(builder, column_max(i64(j - col.lo), c0, width), scratch,
                               affine_at(builder, kept_at[j], [(c0, 1)]))

        each_vector(first_columns)
        with for_range(builder, col.out, "ow") as ow:
            left = index(builder, -col.lo, (ow, col.stride))

            def output(c0: ir.Value, width: int) -> None:
                columns = [load(builder, scratch, affine_at(builder, kept_at[j], [(c0, 1)]), elem, width)
                           for j in range(carried)]
                columns += [column_max(index(builder, j, (left, 1)), c0, width) for j in range(carried, col.window)]
                for j, kept in enumerate(columns[col.window - carried:]):
                    _store_scratch(builder, kept, scratch, affine_at(builder, kept_at[j], [(c0, 1)]))
                acc = columns[0]
                for value in columns[1:]:
                    acc = combine(builder, acc, value)
                store(builder, acc, po, affine_at(builder, 0, [(flat, out_pitch), (ow, block), (c0, 1)]), elem)

            each_vector(output)


def _emit_pixel_rows(ctx: EmitContext, builder: ir.IRBuilder, node: Node, axes: list[_Axis], block: int,
                     plan: Plan, buffers: tuple[ir.Value, ir.Value], rows: tuple[ir.Value, ir.Value]) -> None:
    """Separable max/min over pixels of `block` contiguous elements (NHWC pooling), one vector of the block
    at a time.

    For each output row and vector of channels, the leading dims' taps are combined pixel by pixel into
    a scratch row of that vector (padded with the identity), then each output pixel combines its window
    along it: taps + window combines per output instead of taps * window, and no bounds checks along
    the row (exact, as in _emit_rows).
    """
    px, po = buffers
    dtype, op, combine, start, elem = _folding(node)
    leading, col = axes[:-1], axes[-1]
    span = col.lo + col.size + col.hi
    vector = lanes(ctx.target, dtype)
    scratch = stack_array(builder, elem, span * vector, "pixels")
    with for_range(builder, span * vector, "fill") as i:
        store(builder, constant(elem, start), scratch, i, elem)
    lo, hi = rows
    with for_range(builder, hi, "row", start=lo) as flat:
        positions = unflatten(builder, flat, [a.out for a in leading])
        for (width,), count, first in column_phases(block, vector, 1):
            with for_range(builder, count, "cb") as cb:
                c0 = index(builder, first, (cb, width))
                with for_range(builder, col.size, "col") as w:
                    def per_tap(cell: list[ir.Value], accs: list[ir.Value], c0: ir.Value = c0, w: ir.Value = w,
                                width: int = width) -> list[ir.Value]:
                        valid, pixel = _input_pixel(builder, leading, positions,
                                                    unflatten(builder, cell[0], [a.window for a in leading]))
                        at = index(builder, 0, (pixel, col.size * block), (w, block), (c0, 1))
                        value = combine(builder, accs[0], load(builder, px, at, elem, width))
                        return [value if valid is None else builder.select(valid, value, accs[0])]

                    (acc,) = fold_nest(builder, [math.prod(a.window for a in leading)],
                                       [constant(elem, start, width)], per_tap, "t")
                    _store_scratch(builder, acc, scratch, index(builder, col.lo * vector, (w, vector)))
                with for_range(builder, col.out, "ow") as ow:
                    def per_cell(cell: list[ir.Value], accs: list[ir.Value], ow: ir.Value = ow,
                                 width: int = width) -> list[ir.Value]:
                        at = index(builder, 0, (ow, col.stride * vector), (cell[0], vector))
                        return [combine(builder, accs[0], load(builder, scratch, at, elem, width))]

                    (acc,) = fold_nest(builder, [col.window], [constant(elem, start, width)], per_cell, "w")
                    store(builder, acc, po, index(builder, 0, (flat, col.out * block), (ow, block), (c0, 1)), elem)


def _store_scratch(builder: ir.IRBuilder, value: ir.Value, scratch: ir.Value, at: ir.Value) -> None:
    """store() into a stack scratch: its pointer is typed by the alloca, so a vector needs a cast."""
    pointer = builder.gep(scratch, [at], inbounds=True)
    elem = value.type.element if isinstance(value.type, ir.VectorType) else value.type
    builder.store(value, builder.bitcast(pointer, value.type.as_pointer()), align=byte_size(elem))


@contextmanager
def _chunk_starts(builder: ir.IRBuilder, count: int, width: int) -> Iterator[ir.Value]:
    """A loop over vectors of `width` covering [0, count); the last starts at count - width, overlapping the
    one before it when width does not divide count (its elements are written twice, with the same values),
    so there is no scalar tail."""
    with for_range(builder, -(-count // width), "chunk") as chunk:
        first = index(builder, 0, (chunk, width))
        yield builder.select(builder.icmp_signed("<", first, i64(count - width)), first, i64(count - width))


sizes_as_arguments(SizeRules(size_arguments, runtime_shapes), "reduce_window")
