"""matmul_integer: u8/i8 @ u8/i8 -> i32 with zero points (ONNX MatMulInteger), a portable register tile.

Per batch entry and row block i0 (MR rows), for each column tile j0 (NV vectors of W i32 lanes,
codegen/matmul.py's tile_phases, so a narrow output is one short vector per row):
    acc[r][v] = 0 ; for k: acc[r][v] += (a[i0+r, k] - a_zero[i0+r]) * (b[k, j0+v*W : +W] - b_zero[...])
b is read as W bytes per vector and widened in registers (sext for i8, zext for u8), so a batch-1
layer streams a quarter of the bytes of its f32 form; both differences lie in [-255, 255], so each
product is exact in i32 and the sum wraps as the reference's. The multiply-adds are plain LLVM vector
i32 mul/add, which LLVM maps to the target's integer multiplies (vpmulld on AVX2, mla on NEON); the
dot-product instructions (vpdpbusd, vpmaddubsw, sdot) need the zero points folded out of the inner
loop, which this portable form does not do; it serves b given at run time. A call split into parts
takes a share of the batch x row blocks (codegen/partition.py): every part runs the same tile code, so
results never depend on parts.

With attrs["transpose_b"] (b given as [*B, N, K]: constant weights, transposed at import) each output is a
dot product along K, both operands contiguous: codegen/int_dot.py's core with the target's fastest exact
instruction (vpdpbusd, sdot, or vpmaddwd on bytes widened to i16), band_rows() rows of a sharing each
block of COLUMNS b rows, the zero points folded into one sum per row (and per column for the byte forms).

With attrs["pairs_b"] too (quantize="int8"'s weights of a product with 4 rows or more, K even, zero
points 0) b is stored as [K/2, N, 2]: the register tile of the portable form above, but per pair of K:
each row's (a[k], a[k+1]) - a_zero, widened once per row block to i16, is one broadcast i32, each vector
of W columns 2W weight bytes widened to i16, and their product summed in pairs (vpmaddwd on x86) adds
into the tile's accumulator. No horizontal sums, so on AVX2 a 128x128 @ 128x512 product runs at ~94% of
vpmaddwd's peak (the dot form: ~70%, its per-output reductions).
"""

from __future__ import annotations

import math

from llvmlite import ir

from cerebro.compiler.codegen.epilogue import apply_row
from cerebro.compiler.codegen.int_dot import DotForm, Side, band_rows, dot_block, dot_form, row_sums, widen
from cerebro.compiler.codegen.llvm_types import constant, element_type, index, load, splat, store
from cerebro.compiler.codegen.loops import fold_range, for_range, i64
from cerebro.compiler.codegen.matmul import tile_phases
from cerebro.compiler.codegen.partition import for_outer, for_phases, parts_of, share
from cerebro.compiler.codegen.registry import EmitContext, emitter
from cerebro.compiler.ir import IRError, Node
from cerebro.compiler.ir.dtypes import DType
from cerebro.compiler.targets import lanes, micro_tile

I32 = ir.IntType(32)
I16 = ir.IntType(16)
I8 = ir.IntType(8)
COLUMNS = 4  # b rows (outputs) per dot-product tile: each loaded row of a feeds this many products


def _row_blocks(node: Node, target: object) -> tuple[int, list[int]]:
    """(batch entries, [full row blocks, tail blocks]) of the output's register tiles."""
    rows = node.inputs[0].shape[-2]
    tile_rows, _ = micro_tile(target)
    return math.prod(node.inputs[0].shape[:-2]), [rows // tile_rows, int(rows % tile_rows > 0)]


def matmul_integer_units(node: Node, target: object, parts: int) -> int:
    batch, row_counts = _row_blocks(node, target)
    return batch * sum(row_counts)


@emitter("matmul_integer", units=matmul_integer_units)
def emit_matmul_integer(ctx: EmitContext, node: Node, fn: ir.Function) -> None:
    a, b = node.inputs[:2]
    rows, columns = a.shape[-2], b.shape[-2 if node.attrs.get("transpose_b") else -1]  # the output may be reshaped
    tile_rows, vectors = micro_tile(ctx.target)
    phases = tile_phases(columns, lanes(ctx.target, DType.i32), vectors)
    batch, row_counts = _row_blocks(node, ctx.target)
    builder = ir.IRBuilder(fn.append_basic_block("entry"))
    pairs = node.attrs.get("pairs_b")
    if pairs:
        _check_pairs(node)
    band = tile_rows if pairs else band_rows(ctx.target)
    scratch = _stack(builder, fn, I32, band * columns, "band") if "epilogue" in node.attrs else None
    widened = _stack(builder, fn, I16, tile_rows * a.shape[-1], "a16") if pairs else None
    part, parts = parts_of(builder, node, fn)
    lo, hi = share(builder, batch * sum(row_counts), part, parts)
    with for_outer(builder, batch, sum(row_counts), lo, hi, "batch") as (bi, first, end):
        bases = [builder.mul(bi, i64(math.prod(v.shape[-2:]))) for v in (a, node.inputs[1], node.outputs[0])]

        def row_block(phase: int, ib: ir.Value) -> None:
            count = tile_rows if phase == 0 else rows % tile_rows
            i0 = index(builder, 0, (ib, tile_rows)) if phase == 0 else i64(rows - count)
            if pairs:
                _widen_rows(builder, node, fn, bases[0], i0, count, widened)
                for widths, tiles, first_column in phases:
                    with for_range(builder, tiles, "jb") as jb:
                        j0 = index(builder, first_column, (jb, sum(widths)))
                        _pair_tile(builder, node, fn, bases, count, widths, i0, j0, widened, scratch)
                if scratch is not None:
                    _band_epilogue(builder, node, fn, bases[2], i0, count, scratch)
                return
            if node.attrs.get("transpose_b"):
                _dot_rows(ctx, builder, node, fn, bases, i0, count, scratch)
                return
            for widths, tiles, first_column in phases:
                with for_range(builder, tiles, "jb") as jb:
                    j0 = index(builder, first_column, (jb, sum(widths)))
                    _tile(builder, node, fn, bases, count, widths, i0, j0)

        for_phases(builder, first, end, row_counts, row_block, "ib")
    builder.ret_void()


def _tile(builder: ir.IRBuilder, node: Node, fn: ir.Function, bases: list[ir.Value], count: int,
          widths: list[int], i0: ir.Value, j0: ir.Value) -> None:
    """C[i0:i0+count, j0:j0+sum(widths)] of one batch entry, accumulated in registers over all of K."""
    a, b, a_zero, b_zero = node.inputs
    pa, pb, pa_zero, pb_zero = fn.args[:4]
    pc = fn.args[len(node.inputs)]
    depth, columns = a.shape[-1], b.shape[-1]
    a_base, b_base, c_base = bases
    a_elem, b_elem = element_type(a.dtype), element_type(b.dtype)
    offsets = [sum(widths[:c]) for c in range(len(widths))]
    a_zeros = [widen(builder, load(builder, pa_zero, index(builder, r, (i0, 1)), a_elem), a.dtype)
               for r in range(count)]
    b_zeros = [widen(builder, load(builder, pb_zero, index(builder, off, (j0, 1)), b_elem, w), b.dtype)
               for w, off in zip(widths, offsets)]
    a_rows = [index(builder, r * depth, (a_base, 1), (i0, depth)) for r in range(count)]
    inits = [constant(I32, 0, w) for _ in range(count) for w in widths]
    with fold_range(builder, depth, inits, "k") as (k, carry):
        b_row = index(builder, 0, (b_base, 1), (k, columns), (j0, 1))
        b_vals = [builder.sub(widen(builder, load(builder, pb, index(builder, off, (b_row, 1)), b_elem, w), b.dtype),
                              zero) for w, off, zero in zip(widths, offsets, b_zeros)]
        updated = []
        for r in range(count):
            a_raw = load(builder, pa, index(builder, 0, (a_rows[r], 1), (k, 1)), a_elem)
            a_val = builder.sub(widen(builder, a_raw, a.dtype), a_zeros[r])
            broadcast = {w: splat(builder, a_val, w) for w in set(widths)}
            for c, w in enumerate(widths):
                updated.append(builder.add(builder.mul(broadcast[w], b_vals[c]), carry.values[r * len(widths) + c]))
        carry.values = updated
    for r in range(count):
        c_row = index(builder, r * columns, (c_base, 1), (i0, columns), (j0, 1))
        for c, off in enumerate(offsets):
            store(builder, carry.values[r * len(widths) + c], pc, index(builder, off, (c_row, 1)), I32)




def _stack(builder: ir.IRBuilder, fn: ir.Function, elem: ir.Type, count: int, name: str) -> ir.Value:
    """A 32-byte aligned stack array (its pointer typed by the alloca: _cast_at reads or writes vectors)."""
    array = builder.alloca(elem, count, name)
    array.align = 32
    return array


def _cast_at(builder: ir.IRBuilder, base: ir.Value, at: ir.Value, ty: ir.Type) -> ir.Value:
    """A `ty` pointer to element `at` of a _stack array."""
    return builder.bitcast(builder.gep(base, [at], inbounds=True), ty.as_pointer())


def _check_pairs(node: Node) -> None:
    """The pairs form multiplies b's raw codes: its zero points must be constant zeros, K even."""
    b, b_zero = node.inputs[1], node.inputs[3]
    if not (node.attrs.get("transpose_b") and b_zero.is_const and not b_zero.data.any() and b.shape[-1] % 2 == 0):
        raise IRError(f"{node.where()}: pairs_b needs [N, K] weights, K even, with zero points all 0")


def _widen_rows(builder: ir.IRBuilder, node: Node, fn: ir.Function, a_base: ir.Value, i0: ir.Value, count: int,
                widened: ir.Value) -> None:
    """widened[r, k] = a[i0 + r, k] - a_zero[i0 + r] in i16 for the tile's rows: each (k, k + 1) pair is then
    one i32 the tile broadcasts."""
    a = node.inputs[0]
    depth, elem = a.shape[-1], element_type(a.dtype)
    for r in range(count):
        zero = builder.trunc(widen(builder, load(builder, fn.args[2], index(builder, r, (i0, 1)), elem), a.dtype), I16)
        row = index(builder, r * depth, (a_base, 1), (i0, depth))
        with for_range(builder, depth, "kw") as k:
            raw = load(builder, fn.args[0], builder.add(row, k), elem)
            value = builder.sub(builder.trunc(widen(builder, raw, a.dtype), I16), zero)
            store(builder, value, widened, index(builder, r * depth, (k, 1)), I16)


def _pair_tile(builder: ir.IRBuilder, node: Node, fn: ir.Function, bases: list[ir.Value], count: int,
               widths: list[int], i0: ir.Value, j0: ir.Value, widened: ir.Value, scratch: ir.Value | None) -> None:
    """C[i0:i0+count, j0:j0+sum(widths)] from b laid out as pairs ([K/2, N, 2]: pairs_b): per k pair, each
    vector of w columns is 2w weight bytes widened to i16, each row's (a[k], a[k+1]) one broadcast i32, and
    their pmaddwd product (pair sums in i32) adds into the accumulator; no horizontal sums."""
    b = node.inputs[1]
    depth, columns = b.shape[-1], b.shape[-2]
    _, b_base, c_base = bases
    offsets = [sum(widths[:c]) for c in range(len(widths))]
    forms = {w: DotForm("pmaddwd", 2 * w, w, None, None, None) for w in set(widths)}
    inits = [constant(I32, 0, w) for _ in range(count) for w in widths]
    with fold_range(builder, depth // 2, inits, "kp") as (kp, carry):
        b_row = index(builder, 0, (b_base, 1), (kp, 2 * columns), (j0, 2))
        b_vals = [widen(builder, load(builder, fn.args[1], index(builder, 2 * off, (b_row, 1)), I8, 2 * w), b.dtype,
                        I16) for w, off in zip(widths, offsets)]
        updated = []
        for r in range(count):
            pair = builder.load(_cast_at(builder, widened, index(builder, r * depth, (kp, 2)), I32), align=4)
            broadcast = {w: builder.bitcast(splat(builder, pair, w), ir.VectorType(I16, 2 * w)) for w in set(widths)}
            for c, w in enumerate(widths):
                updated.append(forms[w].step(builder, carry.values[r * len(widths) + c], broadcast[w], b_vals[c]))
        carry.values = updated
    for r in range(count):
        for c, off in enumerate(offsets):
            value = carry.values[r * len(widths) + c]
            if scratch is None:
                at = index(builder, r * columns + off, (c_base, 1), (i0, columns), (j0, 1))
                store(builder, value, fn.args[len(node.inputs)], at, I32)
            else:
                at = index(builder, r * columns + off, (j0, 1))
                builder.store(value, _cast_at(builder, scratch, at, value.type), align=4)


def _dot_rows(ctx: EmitContext, builder: ir.IRBuilder, node: Node, fn: ir.Function, bases: list[ir.Value],
              i0: ir.Value, count: int, scratch: ir.Value | None) -> None:
    """Rows [i0, i0 + count) of C (one batch entry) from a [M, K] and b given as [N, K], in bands of
    band_rows() rows: each band's row sums once, then COLUMNS outputs per dot block. With an epilogue the
    band's i32 sums go to scratch and each finished row runs the epilogue from there into C."""
    form = dot_form(ctx.target, node.inputs[0].shape[-1])
    height = band_rows(ctx.target)
    full, rest = divmod(count, height)
    for bands, rows, first in ((full, height, 0), (int(rest > 0), rest, full * height)):
        if bands and rows:
            with for_range(builder, bands, "band") as band:
                r0 = builder.add(i0, index(builder, first, (band, height)))
                _dot_band(builder, form, node, fn, bases, r0, rows, scratch)
                if scratch is not None:
                    _band_epilogue(builder, node, fn, bases[2], r0, rows, scratch)


def _band_epilogue(builder: ir.IRBuilder, node: Node, fn: ir.Function, c_base: ir.Value, r0: ir.Value, rows: int,
                   scratch: ir.Value) -> None:
    """C's rows [r0, r0 + rows) of one batch entry (starting at c_base) = the epilogue of scratch's rows."""
    columns = node.inputs[1].shape[-2]
    first_row = builder.add(builder.udiv(c_base, i64(columns)), r0)
    for r in range(rows):
        row = builder.add(first_row, i64(r))
        apply_row(builder, node, fn, row, builder.mul(row, i64(columns)), i64(0), columns,
                  source=(scratch, i64(r * columns)))


def _dot_band(builder: ir.IRBuilder, form: DotForm, node: Node, fn: ir.Function, bases: list[ir.Value],
              r0: ir.Value, rows: int, scratch: ir.Value | None) -> None:
    a, b = node.inputs[:2]
    pa, pb, pa_zero, pb_zero = fn.args[:4]
    depth, columns = a.shape[-1], b.shape[-2]
    a_base, b_base, c_base = bases
    a_side = Side(pa, a.dtype, [index(builder, r * depth, (a_base, 1), (r0, depth)) for r in range(rows)],
                  [load(builder, pa_zero, index(builder, r, (r0, 1)), I8) for r in range(rows)])
    a_sums = row_sums(builder, form, a_side, depth // form.width)
    full, rest = divmod(columns, COLUMNS)
    for tiles, width, first in ((full, COLUMNS, 0), (int(rest > 0), rest, full * COLUMNS)):
        if tiles and width:
            with for_range(builder, tiles, "jt") as jt:
                j0 = index(builder, first, (jt, COLUMNS))
                b_side = Side(pb, b.dtype, [index(builder, t * depth, (b_base, 1), (j0, depth)) for t in range(width)],
                              [load(builder, pb_zero, index(builder, t, (j0, 1)), I8) for t in range(width)])
                totals = dot_block(builder, form, a_side, b_side, depth, a_sums)
                for at, total in enumerate(totals):
                    r, t = divmod(at, width)
                    if scratch is None:
                        where = index(builder, t + r * columns, (c_base, 1), (r0, columns), (j0, 1))
                    else:
                        where = index(builder, t + r * columns, (j0, 1))
                    store(builder, total, fn.args[len(node.inputs)] if scratch is None else scratch, where, I32)

