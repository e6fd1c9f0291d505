"""Data movement ops: broadcast_in_dim, transpose, slice, rev, pad, concatenate, iota.

Each is one strided copy: a loop nest over a shape reading src at
src_offset + sum(i*src_stride) and writing dst at dst_offset + sum(i*dst_stride),
strides known at compile time (negative for rev, 0 for broadcast), with
neighbouring dims merged so the inner loop is as long as possible. Elements
are moved as integers of their size (bool is one byte). reshape has no code:
the memory plan makes its output a view of its input. A concatenation calls a
row copy shared by the module's concatenations (sizes as arguments).
Transpose, slice, broadcast_in_dim, concatenate and pad are parallel: the parts
of a call share the leading dims of the output (partition.leading_dims).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from llvmlite import ir

from cerebro.compiler.codegen.elementwise import merge_dims
from cerebro.compiler.codegen.llvm_types import byte_size, element_constant, element_type
from cerebro.compiler.codegen.llvm_types import index as affine
from cerebro.compiler.codegen.loops import for_nest, for_range, i64
from cerebro.compiler.codegen.partition import leading_dims, parts_of, share, unflatten
from cerebro.compiler.codegen.registry import EmitContext, emitter
from cerebro.compiler.ir import DType, Node
from cerebro.compiler.ir.strides import contiguous_strides


def copy_strided(b: ir.IRBuilder, ty: ir.Type, shape: Sequence[int], src: ir.Value, src_strides: Sequence[int],
                 src_offset: int, dst: ir.Value, dst_strides: Sequence[int], dst_offset: int,
                 parts: tuple[ir.Value, ir.Value] | None = None) -> None:
    """dst[dst_offset + i.dst_strides] = src[src_offset + i.src_strides] for i over shape (element units);
    with parts=(part, parts) only part's share of the leading dims (partition.leading_dims). Strides
    must not be negative then (the share's base pointers move forward)."""
    if any(d <= 0 for d in shape):
        return
    count = leading_dims(shape, src_strides) if parts is not None else 0
    if count:
        lo, hi = share(b, math.prod(shape[:count]), *parts)
        with for_range(b, hi, "unit", start=lo) as unit:
            outer = unflatten(b, unit, shape[:count])
            src_at, dst_at = (b.gep(base, [affine(b, 0, *zip(outer, strides[:count]))], inbounds=True, source_etype=ty)
                              for base, strides in ((src, src_strides), (dst, dst_strides)))
            copy_strided(b, ty, shape[count:], src_at, src_strides[count:], src_offset,
                         dst_at, dst_strides[count:], dst_offset)
        return
    dims, (s_strides, d_strides) = merge_dims(shape, [list(src_strides), list(dst_strides)])

    def move(index: Sequence[ir.Value]) -> None:
        source = b.gep(src, [affine(b, src_offset, *zip(index, s_strides))], inbounds=True, source_etype=ty)
        target = b.gep(dst, [affine(b, dst_offset, *zip(index, d_strides))], inbounds=True, source_etype=ty)
        b.store(b.load(source, typ=ty), target)

    block = _block(ty)
    rows = [k for k, st in enumerate(s_strides[:-1]) if st == 1 and dims[k] >= block]
    if dims and s_strides[-1] != 1 and d_strides[-1] == 1 and dims[-1] >= block and rows:
        _vector_tiled(b, ty, dims, rows[-1], block, (src, s_strides, src_offset), (dst, d_strides, dst_offset), move)
        return
    across = [k for k, st in enumerate(s_strides[:-1]) if abs(st) == 1 and dims[k] >= TILE]
    if dims and abs(s_strides[-1]) > 1 and dims[-1] >= TILE and across:
        _tiled(b, dims, across[-1], move)
        return
    with for_nest(b, dims) as index:
        move(index)


TILE = 16  # a TILE x TILE block of a transpose stays in L1 while it is read down and written across


def _tiled(b: ir.IRBuilder, dims: list[int], axis: int, move: Callable[[Sequence[ir.Value]], None]) -> None:
    """Loop over dims in TILE x TILE blocks of (axis, last): the source is contiguous along axis and
    the destination along the last dim, so neither side strides through memory a row at a time."""
    last = len(dims) - 1
    others = [k for k in range(last) if k != axis]
    with for_nest(b, [dims[k] for k in others]) as outer:
        with for_range(b, -(-dims[axis] // TILE), "ta") as ta, for_range(b, -(-dims[last] // TILE), "tl") as tl:
            starts = [b.mul(t, i64(TILE), flags=("nsw",)) for t in (ta, tl)]
            counts = [b.select(b.icmp_signed("<", b.sub(i64(dims[k]), start), i64(TILE)),
                               b.sub(i64(dims[k]), start), i64(TILE)) for k, start in zip((axis, last), starts)]
            with for_range(b, counts[0], "ia") as ia, for_range(b, counts[1], "il") as il:
                index: list[ir.Value] = [i64(0)] * len(dims)
                for k, value in zip(others, outer):
                    index[k] = value
                index[axis] = b.add(starts[0], ia, flags=("nsw",))
                index[last] = b.add(starts[1], il, flags=("nsw",))
                move(index)


def _block(ty: ir.Type) -> int:
    """Side of the register-transposed block: 32-byte rows (8 f32), between 4 and 8 elements."""
    return max(4, min(8, 32 // byte_size(ty)))


def transpose_vectors(b: ir.IRBuilder, rows: list[ir.Value]) -> list[ir.Value]:
    """The columns of a T x T block held as T vectors (T a power of two): log2(T) rounds of
    interleaving row i with row i + T/2 (the perfect shuffle), all in shufflevectors."""
    count = len(rows)
    low = ir.Constant(ir.VectorType(ir.IntType(32), count), [x for i in range(count // 2) for x in (i, i + count)])
    high = ir.Constant(ir.VectorType(ir.IntType(32), count),
                       [x for i in range(count // 2, count) for x in (i, i + count)])
    for _ in range(count.bit_length() - 1):
        half = count // 2
        rows = [b.shuffle_vector(rows[i], rows[i + half], mask) for i in range(half) for mask in (low, high)]
    return rows


Strided = tuple[ir.Value, Sequence[int], int]  # base pointer, strides per merged dim, offset (elements)


def _vector_tiled(b: ir.IRBuilder, ty: ir.Type, dims: list[int], axis: int, block: int, src: Strided,
                  dst: Strided, move: Callable[[Sequence[ir.Value]], None]) -> None:
    """A transpose whose source is contiguous along `axis` and destination along the last dim:
    full block x block squares are `block` vector loads along axis, transpose_vectors, `block` vector
    stores along the last dim; the edges that do not fill a square are copied one element at a time."""
    last = len(dims) - 1
    others = [k for k in range(last) if k != axis]
    vector = ir.VectorType(ty, block)
    align = byte_size(ty)
    full = [dims[axis] // block * block, dims[last] // block * block]

    def place(index: list[ir.Value], outer: list[ir.Value]) -> list[ir.Value]:
        for k, value in zip(others, outer):
            index[k] = value
        return index

    def pointer(side: Strided, index: list[ir.Value], extra: int) -> ir.Value:
        base, strides, offset = side
        return b.gep(base, [affine(b, offset + extra, *zip(index, strides))], inbounds=True, source_etype=ty)

    with for_nest(b, [dims[k] for k in others]) as outer:
        with for_range(b, full[0] // block, "ta") as ta, for_range(b, full[1] // block, "tl") as tl:
            index = [i64(0)] * len(dims)
            index[axis] = b.mul(ta, i64(block), flags=("nsw",))
            index[last] = b.mul(tl, i64(block), flags=("nsw",))
            index = place(index, outer)
            rows = [b.load(pointer(src, index, r * src[1][last]), typ=vector, align=align) for r in range(block)]
            for c, column in enumerate(transpose_vectors(b, rows)):
                b.store(column, pointer(dst, index, c * dst[1][axis]), align=align)
        for (first, count), lasts in (((full[0], dims[axis]), (0, dims[last])), ((0, full[0]), (full[1], dims[last]))):
            with for_range(b, count, "ea", start=first) as ia, for_range(b, lasts[1], "el", start=lasts[0]) as il:
                index = [i64(0)] * len(dims)
                index[axis], index[last] = ia, il
                move(place(index, outer))


def _finish(fn: ir.Function) -> ir.IRBuilder:
    return ir.IRBuilder(fn.append_basic_block("entry"))


def _broadcast_source(node: Node) -> tuple[list[int], int]:
    """(source strides along the output's dims, source offset) of a broadcast_in_dim."""
    x = node.inputs[0]
    in_strides = contiguous_strides(x.shape)
    src = [0] * node.outputs[0].rank
    for axis, dim in enumerate(node.attrs["broadcast_dimensions"]):
        src[dim] = 0 if x.shape[axis] == 1 else in_strides[axis]
    return src, 0


def _transpose_source(node: Node) -> tuple[list[int], int]:
    in_strides = contiguous_strides(node.inputs[0].shape)
    return [in_strides[p] for p in node.attrs["perm"]], 0


def _slice_source(node: Node) -> tuple[list[int], int]:
    x = node.inputs[0]
    in_strides = contiguous_strides(x.shape)
    steps = node.attrs.get("strides") or (1,) * x.rank
    offset = sum(s * start for s, start in zip(in_strides, node.attrs["start"]))
    return [s * st for s, st in zip(in_strides, steps)], offset


_SOURCES: dict[str, Callable[[Node], tuple[list[int], int]]] = {
    "broadcast_in_dim": _broadcast_source, "transpose": _transpose_source, "slice": _slice_source}


def copy_units(node: Node, target: object, parts: int) -> int:
    """The units a gather's parts share: its output's leading dims (as copy_strided splits them)."""
    shape = node.outputs[0].shape
    return math.prod(shape[:leading_dims(shape, _SOURCES[node.op](node)[0])])


@emitter(*_SOURCES, units=copy_units)
def emit_gather_copy(ctx: EmitContext, node: Node, fn: ir.Function) -> None:
    """broadcast_in_dim, transpose, slice: one strided read of the input per output element."""
    (x,), (out,) = node.inputs, node.outputs
    src, offset = _SOURCES[node.op](node)
    b = _finish(fn)
    copy_strided(b, element_type(x.dtype), out.shape, fn.args[0], src, offset, fn.args[1],
                 contiguous_strides(out.shape), 0, parts_of(b, node, fn))
    b.ret_void()


@emitter("rev")
def emit_rev(ctx: EmitContext, node: Node, fn: ir.Function) -> None:
    (x,), (out,) = node.inputs, node.outputs
    strides = contiguous_strides(x.shape)
    dims = set(node.attrs["dims"])
    src = [-s if axis in dims else s for axis, s in enumerate(strides)]
    offset = sum(s * (x.shape[axis] - 1) for axis, s in enumerate(strides) if axis in dims)
    b = _finish(fn)
    copy_strided(b, element_type(x.dtype), out.shape, fn.args[0], src, offset, fn.args[1], strides, 0)
    b.ret_void()


def concatenate_units(node: Node, target: object, parts: int) -> int:
    """The output's rows (its dims before the axis): the parts share them."""
    return math.prod(node.outputs[0].shape[:node.attrs["axis"]])


@emitter("concatenate", units=concatenate_units)
def emit_concatenate(ctx: EmitContext, node: Node, fn: ir.Function) -> None:
    """Each input is rows of one contiguous run (its dims from the axis on) written at its position in the
    output's rows: a call to the module's row copy for that run's length, with the other sizes as
    arguments, so concatenations differing in them or in their input count share the loops (DenseNet121:
    58 concatenations, 5 run lengths)."""
    out = node.outputs[0]
    axis = node.attrs["axis"]
    rows, pitch, inner = math.prod(out.shape[:axis]), math.prod(out.shape[axis:]), math.prod(out.shape[axis + 1:])
    b = _finish(fn)
    lo, hi = share(b, rows, *parts_of(b, node, fn))
    dst = b.gep(fn.args[len(node.inputs)], [b.mul(lo, i64(pitch))], inbounds=True, source_etype=element_type(out.dtype))
    position = 0
    for k, x in enumerate(node.inputs):
        if x.size > 0:
            ty, width = element_type(x.dtype), x.size // rows
            copy = _row_copy(ctx.module, ty, width)
            src = b.gep(fn.args[k], [b.mul(lo, i64(width))], inbounds=True, source_etype=ty)
            b.call(copy, [src, dst, b.sub(hi, lo), i64(pitch), i64(position * inner)])
        position += x.shape[axis]
    b.ret_void()


def _row_copy(module: ir.Module, ty: ir.Type, width: int) -> ir.Function:
    """copy_rows(src, dst, rows, pitch, offset): dst[offset + r*pitch + c] = src[r*width + c] for r < rows,
    c < width; one per element type and width in the module, kept out of line (inlined it would be a copy
    per call again). The width stays a constant: LLVM copies a short row in a few vector moves, where a
    run-time width made each row a call to memcpy (DenseNet121 2.7% slower)."""
    name = f"copy_rows_{ty}_{width}"
    if name in module.globals:
        return module.globals[name]
    fn = ir.Function(module, ir.FunctionType(ir.VoidType(), [ir.PointerType()] * 2 + [ir.IntType(64)] * 3), name)
    fn.linkage = "internal"
    fn.attributes.add("noinline")
    src, dst, rows, pitch, offset = fn.args
    for pointer in (src, dst):
        pointer.add_attribute("noalias")
    b = _finish(fn)
    with for_range(b, rows, "r") as r:
        dst_row = b.add(b.mul(r, pitch, flags=("nsw", "nuw")), offset, flags=("nsw", "nuw"))
        with for_range(b, width, "c") as c:
            source = b.gep(src, [affine(b, 0, (r, width), (c, 1), nonnegative=True)], inbounds=True, source_etype=ty)
            target = b.gep(dst, [b.add(dst_row, c, flags=("nsw", "nuw"))], inbounds=True, source_etype=ty)
            b.store(b.load(source, typ=ty), target)
    b.ret_void()
    return fn


def _pad_leading(node: Node) -> int:
    """Leading output dims a pad's parts share, as a copy's (0 with interior padding: not shared)."""
    if any(node.attrs.get("interior") or ()):
        return 0
    return leading_dims(node.outputs[0].shape, contiguous_strides(node.inputs[0].shape))


def pad_units(node: Node, target: object, parts: int) -> int:
    return math.prod(node.outputs[0].shape[:_pad_leading(node)])


@emitter("pad", units=pad_units)
def emit_pad(ctx: EmitContext, node: Node, fn: ir.Function) -> None:
    """Fill with the pad value, then copy the input cells that land inside (negative lo/hi crop). The
    parts share the output's leading dims (none with interior padding): each unit fills its block
    and, where its leading indices fall inside the input, copies the input's block into it."""
    (x,), (out,) = node.inputs, node.outputs
    ty = element_type(x.dtype)
    b = _finish(fn)
    count = _pad_leading(node)
    out_strides, in_strides = contiguous_strides(out.shape), contiguous_strides(x.shape)
    lo, hi = share(b, math.prod(out.shape[:count]), *parts_of(b, node, fn))
    with for_range(b, hi, "unit", start=lo) as unit:
        outer = unflatten(b, unit, out.shape[:count])
        dst = b.gep(fn.args[1], [affine(b, 0, *zip(outer, out_strides[:count]))], inbounds=True, source_etype=ty)
        rows = [b.sub(o, i64(edge)) for o, edge in zip(outer, node.attrs["lo"])]  # the input's, if inside
        inside = ir.Constant(ir.IntType(1), 1)
        for row, size in zip(rows, x.shape):
            inside = b.and_(inside, b.icmp_unsigned("<", row, i64(size)))
        src = b.gep(fn.args[0], [affine(b, 0, *zip(rows, in_strides[:count]))], source_etype=ty)
        _pad_block(b, node, count, src, dst, inside)
    b.ret_void()


def _pad_block(b: ir.IRBuilder, node: Node, count: int, src: ir.Value, dst: ir.Value, inside: ir.Value) -> None:
    """The output's dims from `count` on at dst: filled, then (if `inside`) the input's cells from src."""
    (x,), (out,) = node.inputs, node.outputs
    ty = element_type(x.dtype)
    interior = node.attrs.get("interior") or (0,) * x.rank
    fill = element_constant(x.dtype, node.attrs["value"])
    size = math.prod(out.shape[count:])
    if size > 0:
        with for_nest(b, [size]) as (i,):
            b.store(fill, b.gep(dst, [i], inbounds=True, source_etype=ty))
    first, counts, strides, offset = [], [], [], 0
    for d, lo, step, size, stride in list(zip(x.shape, node.attrs["lo"], interior, out.shape,
                                              contiguous_strides(out.shape)))[count:]:
        pitch = step + 1
        start = max(0, -(lo // pitch) if lo < 0 else 0)  # first i with lo + i*pitch >= 0
        stop = min(d, max(0, -((lo - size) // pitch)))  # i < ceil((size - lo) / pitch)
        first.append(start)
        counts.append(max(0, stop - start))
        strides.append(stride * pitch)
        offset += stride * (lo + start * pitch)
    in_strides = contiguous_strides(x.shape)[count:]
    src_offset = sum(s * f for s, f in zip(in_strides, first))
    if all(c > 0 for c in counts):
        with b.if_then(inside):
            copy_strided(b, ty, counts, src, in_strides, src_offset, dst, strides, offset)


@emitter("iota")
def emit_iota(ctx: EmitContext, node: Node, fn: ir.Function) -> None:
    (out,) = node.outputs
    ty = element_type(out.dtype)
    axis = node.attrs["dimension"]
    b = _finish(fn)
    if out.size > 0:
        with for_nest(b, out.shape) as index:
            count = index[axis]
            if out.dtype.is_float:
                value = b.sitofp(count, ty)
            elif out.dtype is DType.bool:  # x != 0, as convert to bool (a byte of 2 is no bool)
                value = b.zext(b.icmp_unsigned("!=", count, i64(0)), ty)
            elif ty.width < 64:
                value = b.trunc(count, ty)
            else:
                value = count
            b.store(value, b.gep(fn.args[0], [affine(b, 0, *zip(index, contiguous_strides(out.shape)))],
                                 inbounds=True, source_etype=ty))
    b.ret_void()
