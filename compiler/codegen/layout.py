"""Data movement ops: broadcast_in_dim, transpose, slice, rev, pad, concatenate, iota.

Each is one strided copy: a loop nest over a shape reading src at
src_offset + sum(i*src_stride) and writing dst at dst_offset + sum(i*dst_stride),
strides known at compile time (negative for rev, 0 for broadcast), with
neighbouring dims merged so the inner loop is as long as possible. A slice,
transpose or broadcast takes its sizes, strides and offsets as arguments
(copy_form), so the copies of one form share a function. Elements
are moved as integers of their size (bool is one byte). reshape has no code:
the memory plan makes its output a view of its input. A concatenation calls a
row copy shared by the module's concatenations (sizes as arguments).
Transpose, slice, broadcast_in_dim, concatenate and pad are parallel: the parts
of a call share the leading dims of the output (partition.leading_dims).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from llvmlite import ir

from cerebro.compiler.codegen.elementwise import merge_dims
from cerebro.compiler.codegen.epilogue import call_rows_from
from cerebro.compiler.codegen.llvm_types import byte_size, element_constant, element_type
from cerebro.compiler.codegen.llvm_types import index as affine
from cerebro.compiler.codegen.loops import for_nest, for_range, i64, size_value
from cerebro.compiler.codegen.partition import leading_dims, parts_of, share, unflatten
from cerebro.compiler.codegen.registry import EmitContext, SizeRules, emitter, sizes_as_arguments
from cerebro.compiler.ir import DType, Node
from cerebro.compiler.ir.hosts import operand_count
from cerebro.compiler.ir.strides import contiguous_strides

Number = int | ir.Value  # a size or stride: a constant, or an i64 argument of a shared copy's function


@dataclass(frozen=True)
class CopyForm:
    """What a strided copy's code depends on besides its numbers (copy_form): `lead` leading dims shared
    among the parts (0: not shared), then `rank` merged dims copied by `path` ("vector" or "tiled" along
    axis, or "plain"); `fixed`: per number, its value where the code keeps it constant (a 0 or 1 stride, a 0
    offset, a short inner run), else None. Copies of one form share one function taking the other numbers
    as arguments (size_arguments): swin_t's 58 slices had 36 functions."""

    lead: int
    rank: int
    path: tuple[str, int]
    fixed: tuple[int | None, ...]


# An inner run of at least this many elements may be a run-time count: LLVM then copies it with a call to
# memcpy, which pays for long runs only (a run-time width of short rows cost DenseNet121 2.7%, _row_copy).
RUNTIME_RUN = 256


def copy_form(shape: Sequence[int], src_strides: Sequence[int], src_offset: int, dst_strides: Sequence[int],
              dst_offset: int, item_bytes: int, shared: bool) -> tuple[CopyForm, list[int]] | None:
    """(form, numbers) of dst[dst_offset + i.dst_strides] = src[src_offset + i.src_strides] over shape;
    numbers: leading dims, their source and destination strides, merged dims, their source and destination
    strides, the two offsets. None: nothing to copy. shared: the parts share leading dims."""
    if any(d <= 0 for d in shape):
        return None
    count = leading_dims(shape, src_strides) if shared else 0
    dims, (s_strides, d_strides) = merge_dims(shape[count:], [list(src_strides[count:]), list(dst_strides[count:])])
    block = _block(item_bytes)
    rows = [k for k, st in enumerate(s_strides[:-1]) if st == 1 and dims[k] >= block]
    across = [k for k, st in enumerate(s_strides[:-1]) if abs(st) == 1 and dims[k] >= TILE]
    path = ("plain", 0)
    if dims and s_strides[-1] != 1 and d_strides[-1] == 1 and dims[-1] >= block and rows:
        path = ("vector", rows[-1])
    elif dims and abs(s_strides[-1]) > 1 and dims[-1] >= TILE and across:
        path = ("tiled", across[-1])
    elif _interleaves(dims, s_strides, d_strides, block):
        path = ("interleave", len(dims) - 2)  # XX
    numbers = [*shape[:count], *src_strides[:count], *dst_strides[:count], *dims, *s_strides, *d_strides,
               src_offset, dst_offset]
    sizes = set(range(count)) | set(range(3 * count, 3 * count + len(dims)))
    short = path[0] == "interleave" or (path[0] == "plain" and dims and dims[-1] < RUNTIME_RUN)
    inner = 3 * count + len(dims) - 1 if short else None
    fixed = tuple(n if k == inner or (k not in sizes and n in (0, 1)) else None for k, n in enumerate(numbers))
    return CopyForm(count, len(dims), path, fixed), numbers


def copy_strided(b: ir.IRBuilder, ty: ir.Type, shape: Sequence[int], src: ir.Value, src_strides: Sequence[int],
                 src_offset: int, dst: ir.Value, dst_strides: Sequence[int], dst_offset: int,
                 parts: tuple[ir.Value, ir.Value] | None = None) -> None:
    """dst[dst_offset + i.dst_strides] = src[src_offset + i.src_strides] for i over shape (element units);
    with parts=(part, parts) only part's share of the leading dims (partition.leading_dims). Strides
    must not be negative then (the share's base pointers move forward)."""
    found = copy_form(shape, src_strides, src_offset, dst_strides, dst_offset, byte_size(ty), parts is not None)
    if found is not None:
        emit_copy(b, ty, found[0], found[1], src, dst, parts)


def emit_copy(b: ir.IRBuilder, ty: ir.Type, form: CopyForm, numbers: Sequence[Number], src: ir.Value,
              dst: ir.Value, parts: tuple[ir.Value, ir.Value] | None) -> None:
    """The copy of copy_form's form with its numbers (constants, or run-time values where form.fixed has
    None)."""
    c, r = form.lead, form.rank
    lead, lead_src, lead_dst = numbers[:c], numbers[c:2 * c], numbers[2 * c:3 * c]
    dims, s_strides, d_strides = (list(numbers[3 * c + k * r:3 * c + (k + 1) * r]) for k in range(3))
    src_offset, dst_offset = numbers[-2:]
    if c:
        lo, hi = share(b, _product(b, lead), *parts)
        with for_range(b, hi, "unit", start=lo) as unit:
            outer = unflatten(b, unit, lead)
            src_at, dst_at = (b.gep(base, [affine_at(b, 0, zip(outer, strides))], inbounds=True, source_etype=ty)
                              for base, strides in ((src, lead_src), (dst, lead_dst)))
            _copy_merged(b, ty, form.path, dims, (src_at, s_strides, src_offset), (dst_at, d_strides, dst_offset))
        return
    _copy_merged(b, ty, form.path, dims, (src, s_strides, src_offset), (dst, d_strides, dst_offset))


Strided = tuple[ir.Value, Sequence[Number], Number]  # base pointer, strides per merged dim, offset (elements)


def _copy_merged(b: ir.IRBuilder, ty: ir.Type, path: tuple[str, int], dims: list[Number], src: Strided,
                 dst: Strided) -> None:
    def move(index: Sequence[ir.Value]) -> None:
        b.store(b.load(_pointer(b, ty, src, index), typ=ty), _pointer(b, ty, dst, index))

    kind, axis = path
    if kind == "vector":
        _vector_tiled(b, ty, dims, axis, _block(byte_size(ty)), src, dst, move)
    elif kind == "interleave":
        _interleaved(b, ty, dims, _block(byte_size(ty)), src, dst)
    elif kind == "tiled":
        _tiled(b, dims, axis, move)
    else:
        with for_nest(b, dims) as index:
            move(index)


def _pointer(b: ir.IRBuilder, ty: ir.Type, side: Strided, index: Sequence[ir.Value], extra: Number = 0
             ) -> ir.Value:
    base, strides, offset = side
    return b.gep(base, [affine_at(b, _add(b, offset, extra), zip(index, strides))], inbounds=True, source_etype=ty)


def affine_at(b: ir.IRBuilder, offset: Number, terms: Iterable[tuple[ir.Value, Number]], nonnegative: bool = False
              ) -> ir.Value:
    """offset + sum(index * stride) where strides and offset may be run-time values, the constant parts
    folded (llvm_types.index where all are constants; nonnegative as there)."""
    terms = list(terms)
    if isinstance(offset, int) and all(isinstance(stride, int) for _, stride in terms):
        return affine(b, offset, *terms, nonnegative=nonnegative)
    flags = ("nsw", "nuw") if nonnegative else ("nsw",)
    total: ir.Value | None = None
    for value, stride in terms:
        if isinstance(stride, int) and stride == 0:
            continue
        term = value if isinstance(stride, int) and stride == 1 else b.mul(value, size_value(stride), flags=flags)
        total = term if total is None else b.add(total, term, flags=flags)
    if total is None:
        return size_value(offset)
    return total if isinstance(offset, int) and offset == 0 else b.add(total, size_value(offset), flags=flags)


def _add(b: ir.IRBuilder, x: Number, y: Number) -> Number:
    if isinstance(x, int) and isinstance(y, int):
        return x + y
    return x if isinstance(y, int) and y == 0 else b.add(size_value(x), size_value(y), flags=("nsw",))


def _mul(b: ir.IRBuilder, x: Number, y: Number) -> Number:
    if isinstance(x, int) and isinstance(y, int):
        return x * y
    return b.mul(size_value(x), size_value(y), flags=("nsw",))


def _product(b: ir.IRBuilder, numbers: Sequence[Number]) -> Number:
    total: Number = 1
    for number in numbers:
        total = _mul(b, total, number)
    return total


def _floor_to(b: ir.IRBuilder, number: Number, step: int) -> Number:
    """number rounded down to a multiple of step."""
    return number // step * step if isinstance(number, int) else b.mul(b.udiv(number, i64(step)), i64(step))


def _blocks(b: ir.IRBuilder, number: Number, step: int) -> Number:
    """How many blocks of step cover number."""
    return -(-number // step) if isinstance(number, int) else b.udiv(b.add(number, i64(step - 1)), i64(step))


TILE = 16  # a TILE x TILE block of a transpose stays in L1 while it is read down and written across


def _tiled(b: ir.IRBuilder, dims: list[Number], axis: int, move: Callable[[Sequence[ir.Value]], None]) -> None:
    """Loop over dims in TILE x TILE blocks of (axis, last): the source is contiguous along axis and
    the destination along the last dim, so neither side strides through memory a row at a time."""
    last = len(dims) - 1
    others = [k for k in range(last) if k != axis]
    with for_nest(b, [dims[k] for k in others]) as outer:
        with for_range(b, _blocks(b, dims[axis], TILE), "ta") as ta, \
                for_range(b, _blocks(b, dims[last], TILE), "tl") as tl:
            starts = [b.mul(t, i64(TILE), flags=("nsw",)) for t in (ta, tl)]
            lefts = [b.sub(size_value(dims[k]), start) for k, start in zip((axis, last), starts)]
            counts = [b.select(b.icmp_signed("<", left, i64(TILE)), left, i64(TILE)) for left in lefts]
            with for_range(b, counts[0], "ia") as ia, for_range(b, counts[1], "il") as il:
                index: list[ir.Value] = [i64(0)] * len(dims)
                for k, value in zip(others, outer):
                    index[k] = value
                index[axis] = b.add(starts[0], ia, flags=("nsw",))
                index[last] = b.add(starts[1], il, flags=("nsw",))
                move(index)


def _block(item_bytes: int) -> int:
    """Side of the register-transposed block: 32-byte rows (8 f32), between 4 and 8 elements."""
    return max(4, min(8, 32 // item_bytes))


def transpose_vectors(b: ir.IRBuilder, rows: list[ir.Value]) -> list[ir.Value]:
    """The columns of a T x T block held as T vectors (T a power of two). A 32-byte vector (8 x 32 or 4 x 64
    bits) takes the AVX form: unpack low/high pairs, then (T = 8) pairs of pairs, within 128-bit halves, then
    halves; each shuffle is one instruction's pattern, which X86's lowering finds at once. The perfect
    shuffle's cross-lane interleaves were searched for a lowering each (vpermt2ps with an index vector on
    AVX-512): most of the machine-code time of the benchmark transformer's transpose. Narrower vectors (8 x 16
    or 8 x 8 bits) keep the perfect shuffle (log2(T) rounds of interleaving row i with row i + T/2): punpck
    on x86, where the AVX form would take pshufd too."""
    count = len(rows)
    if count in _TRANSPOSE_STAGES and count * byte_size(rows[0].type.element) == 32:
        for pairs, masks in _TRANSPOSE_STAGES[count]:
            rows = [b.shuffle_vector(rows[i], rows[j], ir.Constant(ir.VectorType(ir.IntType(32), count), mask))
                    for i, j in pairs for mask in masks]
        return [rows[k] for k in _TRANSPOSE_ORDER[count]]
    low = ir.Constant(ir.VectorType(ir.IntType(32), count), [x for i in range(count // 2) for x in (i, i + count)])
    high = ir.Constant(ir.VectorType(ir.IntType(32), count),
                       [x for i in range(count // 2, count) for x in (i, i + count)])
    for _ in range(count.bit_length() - 1):
        half = count // 2
        rows = [b.shuffle_vector(rows[i], rows[i + half], mask) for i in range(half) for mask in (low, high)]
    return rows


# T -> stages of (the pairs of vectors shuffled, in order, and the masks applied to each pair), then which of
# the last stage's vectors is column c. Element k of a result is element mask[k] of the pair (b's from T on).
_TRANSPOSE_STAGES: dict[int, list[tuple[list[tuple[int, int]], list[list[int]]]]] = {
    8: [([(0, 1), (2, 3), (4, 5), (6, 7)], [[0, 8, 1, 9, 4, 12, 5, 13], [2, 10, 3, 11, 6, 14, 7, 15]]),  # unpck
        ([(0, 2), (1, 3), (4, 6), (5, 7)], [[0, 1, 8, 9, 4, 5, 12, 13], [2, 3, 10, 11, 6, 7, 14, 15]]),  # shufps
        ([(0, 4), (1, 5), (2, 6), (3, 7)], [[0, 1, 2, 3, 8, 9, 10, 11], [4, 5, 6, 7, 12, 13, 14, 15]])],  # halves
    4: [([(0, 1), (2, 3)], [[0, 4, 2, 6], [1, 5, 3, 7]]),
        ([(0, 2), (1, 3)], [[0, 1, 4, 5], [2, 3, 6, 7]])],
}
_TRANSPOSE_ORDER = {8: [0, 2, 4, 6, 1, 3, 5, 7], 4: [0, 2, 1, 3]}


def _vector_tiled(b: ir.IRBuilder, ty: ir.Type, dims: list[Number], axis: int, block: int, src: Strided,
                  dst: Strided, move: Callable[[Sequence[ir.Value]], None]) -> None:
    """A transpose whose source is contiguous along `axis` and destination along the last dim:
    full block x block squares are `block` vector loads along axis, transpose_vectors, `block` vector
    stores along the last dim; the edges that do not fill a square are copied one element at a time."""
    last = len(dims) - 1
    others = [k for k in range(last) if k != axis]
    vector = ir.VectorType(ty, block)
    align = byte_size(ty)
    full = [_floor_to(b, dims[axis], block), _floor_to(b, dims[last], block)]

    def place(index: list[ir.Value], outer: list[ir.Value]) -> list[ir.Value]:
        for k, value in zip(others, outer):
            index[k] = value
        return index

    with for_nest(b, [dims[k] for k in others]) as outer:
        with for_range(b, _blocks(b, full[0], block), "ta") as ta, \
                for_range(b, _blocks(b, full[1], block), "tl") as tl:
            index = [i64(0)] * len(dims)
            index[axis] = b.mul(ta, i64(block), flags=("nsw",))
            index[last] = b.mul(tl, i64(block), flags=("nsw",))
            index = place(index, outer)
            rows = [b.load(_pointer(b, ty, src, index, _mul(b, r, src[1][last])), typ=vector, align=align)
                    for r in range(block)]
            for c, column in enumerate(transpose_vectors(b, rows)):
                b.store(column, _pointer(b, ty, dst, index, _mul(b, c, dst[1][axis])), align=align)
        for (first, count), lasts in (((full[0], dims[axis]), (0, dims[last])), ((0, full[0]), (full[1], dims[last]))):
            with for_range(b, count, "ea", start=first) as ia, for_range(b, lasts[1], "el", start=lasts[0]) as il:
                index = [i64(0)] * len(dims)
                index[axis], index[last] = ia, il
                move(place(index, outer))


def _interleaves(dims: Sequence[int], s_strides: Sequence[int], d_strides: Sequence[int], block: int) -> bool:
    """Whether a copy interleaves a few source rows (_interleaved): its last dim short (2 to block - 1, too
    short for the transposed blocks) and strided in the source, the one before it contiguous in the source
    and at least a block long, the destination contiguous over both (NHWC channel shuffles, the 3-channel
    NCHW -> NHWC input transpose)."""
    return (len(dims) >= 2 and 1 < dims[-1] < block and s_strides[-1] != 1 and d_strides[-1] == 1
            and s_strides[-2] == 1 and d_strides[-2] == dims[-1] and dims[-2] >= block)


def _interleaved(b: ir.IRBuilder, ty: ir.Type, dims: list[Number], block: int, src: Strided, dst: Strided) -> None:
    """dst[..., i, g] = src row g [..., i] for a short last dim of G rows (a constant): per block of `block`
    along the second last dim, G vector loads (one per row), one interleaving shuffle and one store of
    G x block elements; the last block ends at the dim's end, overlapping the one before (a copy writes
    the same values twice) instead of a tail element by element. Element by element, shufflenet's
    28x28x116 shuffle took 25.6 us, now 7.1 (its 3x224x224 input transpose 78 -> 34 us; 16-element
    blocks: 7.5 and 55 us)."""
    group = dims[-1]
    assert isinstance(group, int), "an interleaved copy keeps its row count constant (copy_form)"
    along = len(dims) - 2
    with for_nest(b, dims[:along]) as outer:
        def at(start: ir.Value) -> None:
            index = [*outer, start, i64(0)]
            _interleave_block(b, ty, block, [_pointer(b, ty, src, index, _mul(b, g, src[1][-1]))
                                             for g in range(group)], _pointer(b, ty, dst, index))

        _overlapping_blocks(b, size_value(dims[along]), block, at)


def _overlapping_blocks(b: ir.IRBuilder, count: ir.Value, block: int, at: Callable[[ir.Value], None]) -> None:
    """at(start) for blocks of `block` covering 0..count-1 (count >= block), the last one ending at count."""
    last = b.sub(count, i64(block), flags=("nsw",))
    with for_range(b, _blocks(b, count, block), "tb") as tb:
        start = b.mul(tb, i64(block), flags=("nsw",))
        at(b.select(b.icmp_signed(">", start, last), last, start))


def _interleave_block(b: ir.IRBuilder, ty: ir.Type, block: int, rows: list[ir.Value], dst: ir.Value) -> None:
    """dst[i * G + g] = rows[g][i] for i < block: G vector loads, one shuffle, one store."""
    group, align = len(rows), byte_size(ty)
    mask = [k % group * block + k // group for k in range(group * block)]  # row k % G's lane k // G
    wide = _concatenated(b, [b.load(row, typ=ir.VectorType(ty, block), align=align) for row in rows])
    picked = ir.Constant(ir.VectorType(ir.IntType(32), len(mask)), mask)
    b.store(b.shuffle_vector(wide, ir.Constant(wide.type, None), picked), dst, align=align)


def _concatenated(b: ir.IRBuilder, vectors: list[ir.Value]) -> ir.Value:
    """One vector of the vectors' elements in order, then zeros up to a power-of-two count of vectors."""
    zero = ir.Constant(vectors[0].type, None)
    while len(vectors) > 1:
        if len(vectors) % 2:
            vectors = [*vectors, zero]
        size = vectors[0].type.count
        both = ir.Constant(ir.VectorType(ir.IntType(32), 2 * size), list(range(2 * size)))
        vectors = [b.shuffle_vector(x, y, both) for x, y in zip(vectors[::2], vectors[1::2])]
        zero = ir.Constant(vectors[0].type, None)
    return vectors[0]


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


def _gather_form(node: Node) -> tuple[CopyForm, list[int]] | None:
    (x,), (out,) = node.inputs, node.outputs
    src, offset = _SOURCES[node.op](node)
    return copy_form(out.shape, src, offset, contiguous_strides(out.shape), 0, byte_size(element_type(x.dtype)),
                     True)


def size_arguments(node: Node) -> list[int]:
    """The numbers a gather copy's function takes as trailing i64 arguments: those its form does not fix."""
    found = _gather_form(node)
    return [] if found is None else [n for n, fixed in zip(found[1], found[0].fixed) if fixed is None]


# op -> the attrs that only give a gather copy its numbers (its form and size_arguments hold what they say)
_NUMBER_ATTRS = {"broadcast_in_dim": ("broadcast_dimensions", "shape"), "transpose": ("perm",),
                 "slice": ("start", "limit", "strides")}


def runtime_shapes(node: Node, target: object) -> tuple[dict[int, tuple], tuple, dict[str, object]] | None:
    """For kernel_key: the shapes left out, the form as the emitter's choice and the number attrs as one
    key; None (nothing to copy): every size a constant."""
    found = _gather_form(node)
    if found is None:
        return None
    shapes = {v.id: (None,) for v in (*node.inputs, *node.outputs)}
    return shapes, ("copy", found[0]), {name: ("copy",) for name in _NUMBER_ATTRS[node.op] if name in node.attrs}


@emitter(*_SOURCES, units=copy_units)
def emit_gather_copy(ctx: EmitContext, node: Node, fn: ir.Function) -> None:
    """broadcast_in_dim, transpose, slice: one strided read of the input per output element. With size
    arguments (module.py passes them) the numbers the form does not fix are those arguments."""
    found = _gather_form(node)
    b = _finish(fn)
    if found is not None:
        form, numbers = found
        sizes = iter(fn.args[len(node.inputs) + len(node.outputs) + 2:])
        if len(fn.args) > len(node.inputs) + len(node.outputs) + 2:
            numbers = [next(sizes) if fixed is None else fixed for fixed in form.fixed]
        emit_copy(b, element_type(node.inputs[0].dtype), form, numbers, fn.args[0], fn.args[1],
                  parts_of(b, node, fn))
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
    58 concatenations, 5 run lengths). With an epilogue (ir/hosts.py) each run goes through the chain as
    it is copied (_copy_through_chain)."""
    out = node.outputs[0]
    axis = node.attrs["axis"]
    rows, pitch, inner = math.prod(out.shape[:axis]), math.prod(out.shape[axis:]), math.prod(out.shape[axis + 1:])
    b = _finish(fn)
    lo, hi = share(b, rows, *parts_of(b, node, fn))
    dst = b.gep(fn.args[len(node.inputs)], [b.mul(lo, i64(pitch))], inbounds=True, source_etype=element_type(out.dtype))
    if _interleaving(node):
        _interleave_rows(b, node, fn, lo, b.sub(hi, lo), dst)
        b.ret_void()
        return
    position = 0
    for k, x in enumerate(node.inputs[:operand_count(node)]):
        if x.size > 0:
            ty, width = element_type(x.dtype), x.size // rows
            src = b.gep(fn.args[k], [b.mul(lo, i64(width))], inbounds=True, source_etype=ty)
            if "epilogue" in node.attrs:
                _copy_through_chain(b, node, fn, src, width, lo, b.sub(hi, lo), pitch, position * inner)
            else:
                copy = _row_copy(ctx.module, ty, width)
                b.call(copy, [src, dst, b.sub(hi, lo), i64(pitch), i64(position * inner)])
        position += x.shape[axis]
    b.ret_void()


CHAIN_COLUMNS = 64  # columns per call of a concatenation's chain: one vector of each value, 4 zmm (f32)


def _copy_through_chain(b: ir.IRBuilder, node: Node, fn: ir.Function, src: ir.Value, width: int, lo: ir.Value,
                        count: ir.Value, pitch: int, col: int) -> None:
    """Rows lo .. lo+count-1 of one input (`width` elements each, from src) through the node's epilogue into
    the output's columns col .. col+width-1: in runs of CHAIN_COLUMNS columns, each a call of the chain's
    rows function, shared by every concatenation and conv of the module with that chain and run; the whole
    runs in a loop (ViT's class token before 196 x 768 patch columns: 2352 runs, once 724 KB of IR)."""
    ty = element_type(node.outputs[0].dtype)

    def run_at(first: ir.Value, run: int) -> None:
        at = affine(b, col, (lo, pitch), (first, 1))
        call_rows_from(b, node, fn, b.gep(src, [first], inbounds=True, source_etype=ty), i64(width), lo, at,
                       i64(pitch), affine(b, col, (first, 1)), run, count)

    whole, rest = divmod(width, CHAIN_COLUMNS)
    if whole == 1:
        run_at(i64(0), CHAIN_COLUMNS)
    elif whole:
        with for_range(b, whole, "run") as k:
            run_at(b.mul(k, i64(CHAIN_COLUMNS)), CHAIN_COLUMNS)
    if rest:
        run_at(i64(whole * CHAIN_COLUMNS), rest)


def _interleaving(node: Node) -> bool:
    """Whether a concatenation takes one element per row from each of its 2 to block - 1 inputs (a channel
    shuffle, passes/shuffle.py): it interleaves them as vectors."""
    out, axis = node.outputs[0], node.attrs["axis"]
    count = operand_count(node)
    return (math.prod(out.shape[axis + 1:]) == 1 and all(x.shape[axis] == 1 for x in node.inputs[:count])
            and 1 < count < _block(byte_size(element_type(out.dtype))))


def _interleave_rows(b: ir.IRBuilder, node: Node, fn: ir.Function, lo: ir.Value, count: ir.Value,
                     dst: ir.Value) -> None:
    """Rows lo .. lo+count-1 of an interleaving concatenation (_interleaving): blocks of rows as
    _interleave_block, the last one overlapping the one before; a share of fewer rows than a block
    element by element."""
    ty = element_type(node.outputs[0].dtype)
    block, group = _block(byte_size(ty)), len(node.inputs)
    sources = [b.gep(fn.args[k], [lo], inbounds=True, source_etype=ty) for k in range(group)]

    def at(start: ir.Value) -> None:
        _interleave_block(b, ty, block, [b.gep(x, [start], inbounds=True, source_etype=ty) for x in sources],
                          b.gep(dst, [b.mul(start, i64(group))], inbounds=True, source_etype=ty))

    enough = b.icmp_signed(">=", count, i64(block))
    with b.if_else(enough) as (vectors, elements):
        with vectors:
            _overlapping_blocks(b, count, block, at)
        with elements:
            with for_range(b, count, "r") as r, for_range(b, group, "g") as g:
                value = b.load(b.gep(_pick_source(b, sources, g), [r], inbounds=True, source_etype=ty), typ=ty)
                b.store(value, b.gep(dst, [affine(b, 0, (r, group), (g, 1), nonnegative=True)], inbounds=True,
                                     source_etype=ty))


def _pick_source(b: ir.IRBuilder, sources: list[ir.Value], g: ir.Value) -> ir.Value:
    """sources[g] for a run-time g (selects)."""
    picked = sources[-1]
    for k in range(len(sources) - 2, -1, -1):
        picked = b.select(b.icmp_unsigned("==", g, i64(k)), sources[k], picked)
    return picked


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


sizes_as_arguments(SizeRules(size_arguments, runtime_shapes), *_SOURCES)
