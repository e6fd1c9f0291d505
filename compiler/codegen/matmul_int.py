"""matmul_integer: u8/i8 @ u8/i8 -> i32 with zero points (ONNX MatMulInteger), a portable register tile.

Per batch entry and row block i0 (MR rows), for each column tile j0 (NV vectors of W i32 lanes,
codegen/matmul.py's tile_phases, so a narrow output is one short vector per row):
    acc[r][v] = 0 ; for k: acc[r][v] += (a[i0+r, k] - a_zero[i0+r]) * (b[k, j0+v*W : +W] - b_zero[...])
b is read as W bytes per vector and widened in registers (sext for i8, zext for u8), so a batch-1
layer streams a quarter of the bytes of its f32 form; both differences lie in [-255, 255], so each
product is exact in i32 and the sum wraps as the reference's. The multiply-adds are plain LLVM vector
i32 mul/add, which LLVM maps to the target's integer multiplies (vpmulld on AVX2, mla on NEON); the
dot-product instructions (vpdpbusd, vpmaddubsw, sdot) need the zero points folded out of the inner
loop, which this portable form does not do. A call split into parts takes a share of the batch x row
blocks (codegen/partition.py): every part runs the same tile code, so results never depend on parts.

With attrs["transpose_b"] (b given as [*B, N, K]: constant weights, transposed at import) each output
is a dot product along K, both operands contiguous: 2W bytes of a row and of COLUMNS b rows per step,
widened to i16 and multiplied into i32 pairs that are summed (the even plus the odd lanes), which is
x86's vpmaddwd pattern (16 products per instruction on AVX2, against 8 for vpmulld); the lanes are
summed once per output at the end, and the K % 2W tail is a scalar loop. i32 sums wrap, so any order
gives the reference's bits.
"""

from __future__ import annotations

import math

from llvmlite import ir

from cerebro.compiler.codegen.llvm_types import constant, element_type, index, load, splat, store
from cerebro.compiler.codegen.loops import fold_range, for_range, i64
from cerebro.compiler.codegen.matmul import tile_phases
from cerebro.compiler.codegen.partition import for_outer, for_phases, parts_of, share
from cerebro.compiler.codegen.registry import EmitContext, emitter
from cerebro.compiler.ir import Node
from cerebro.compiler.ir.dtypes import DType
from cerebro.compiler.targets import lanes, micro_tile

I32 = ir.IntType(32)
I16 = ir.IntType(16)
COLUMNS = 4  # b rows (outputs) per dot-product tile: each loaded row of a feeds this many products


def _row_blocks(node: Node, target: object) -> tuple[int, list[int]]:
    """(batch entries, [full row blocks, tail blocks]) of the output's register tiles."""
    rows = node.inputs[0].shape[-2]
    tile_rows, _ = micro_tile(target)
    return math.prod(node.inputs[0].shape[:-2]), [rows // tile_rows, int(rows % tile_rows > 0)]


def matmul_integer_units(node: Node, target: object, parts: int) -> int:
    batch, row_counts = _row_blocks(node, target)
    return batch * sum(row_counts)


def _widen(builder: ir.IRBuilder, value: ir.Value, dtype: DType, width: int, to: ir.IntType = I32) -> ir.Value:
    """u8/i8 lanes as i32 (or i16) lanes: zero- or sign-extended."""
    wide = to if width == 1 else ir.VectorType(to, width)
    return builder.sext(value, wide) if dtype.is_signed else builder.zext(value, wide)


@emitter("matmul_integer", units=matmul_integer_units)
def emit_matmul_integer(ctx: EmitContext, node: Node, fn: ir.Function) -> None:
    a = node.inputs[0]
    rows, columns = a.shape[-2], node.outputs[0].shape[-1]
    tile_rows, vectors = micro_tile(ctx.target)
    phases = tile_phases(columns, lanes(ctx.target, DType.i32), vectors)
    batch, row_counts = _row_blocks(node, ctx.target)
    builder = ir.IRBuilder(fn.append_basic_block("entry"))
    part, parts = parts_of(builder, node, fn)
    lo, hi = share(builder, batch * sum(row_counts), part, parts)
    with for_outer(builder, batch, sum(row_counts), lo, hi, "batch") as (bi, first, end):
        bases = [builder.mul(bi, i64(math.prod(v.shape[-2:]))) for v in (a, node.inputs[1], node.outputs[0])]

        def row_block(phase: int, ib: ir.Value) -> None:
            count = tile_rows if phase == 0 else rows % tile_rows
            i0 = index(builder, 0, (ib, tile_rows)) if phase == 0 else i64(rows - count)
            if node.attrs.get("transpose_b"):
                with for_range(builder, count, "r") as r:
                    _dot_row(ctx, builder, node, fn, bases, builder.add(i0, r))
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
    pa, pb, pa_zero, pb_zero, pc = fn.args[:5]
    depth, columns = a.shape[-1], b.shape[-1]
    a_base, b_base, c_base = bases
    a_elem, b_elem = element_type(a.dtype), element_type(b.dtype)
    offsets = [sum(widths[:c]) for c in range(len(widths))]
    a_zeros = [_widen(builder, load(builder, pa_zero, index(builder, r, (i0, 1)), a_elem), a.dtype, 1)
               for r in range(count)]
    b_zeros = [_widen(builder, load(builder, pb_zero, index(builder, off, (j0, 1)), b_elem, w), b.dtype, w)
               for w, off in zip(widths, offsets)]
    a_rows = [index(builder, r * depth, (a_base, 1), (i0, depth)) for r in range(count)]
    inits = [constant(I32, 0, w) for _ in range(count) for w in widths]
    with fold_range(builder, depth, inits, "k") as (k, carry):
        b_row = index(builder, 0, (b_base, 1), (k, columns), (j0, 1))
        b_vals = [builder.sub(_widen(builder, load(builder, pb, index(builder, off, (b_row, 1)), b_elem, w),
                                     b.dtype, w), zero) for w, off, zero in zip(widths, offsets, b_zeros)]
        updated = []
        for r in range(count):
            a_raw = load(builder, pa, index(builder, 0, (a_rows[r], 1), (k, 1)), a_elem)
            a_val = builder.sub(_widen(builder, a_raw, a.dtype, 1), a_zeros[r])
            broadcast = {w: splat(builder, a_val, w) for w in set(widths)}
            for c, w in enumerate(widths):
                updated.append(builder.add(builder.mul(broadcast[w], b_vals[c]), carry.values[r * len(widths) + c]))
        carry.values = updated
    for r in range(count):
        c_row = index(builder, r * columns, (c_base, 1), (i0, columns), (j0, 1))
        for c, off in enumerate(offsets):
            store(builder, carry.values[r * len(widths) + c], pc, index(builder, off, (c_row, 1)), I32)


def _dot_row(ctx: EmitContext, builder: ir.IRBuilder, node: Node, fn: ir.Function, bases: list[ir.Value],
             i: ir.Value) -> None:
    """Row i of C (one batch entry) from a [M, K] and b given as [N, K]: COLUMNS outputs per tile."""
    a, b = node.inputs[:2]
    pa, pb, pa_zero, pb_zero, pc = fn.args[:5]
    depth, columns = a.shape[-1], b.shape[-2]
    a_base, b_base, c_base = bases
    step = 2 * lanes(ctx.target, DType.i32)
    a_row = index(builder, 0, (a_base, 1), (i, depth))
    a_zero = load(builder, pa_zero, i, element_type(a.dtype))
    full, rest = divmod(columns, COLUMNS)
    for tiles, width, first in ((full, COLUMNS, 0), (int(rest > 0), rest, full * COLUMNS)):
        if tiles and width:
            with for_range(builder, tiles, "jt") as jt:
                j0 = index(builder, first, (jt, COLUMNS))
                sums = _dot_tile(builder, node, (pa, pb, pa_zero, pb_zero), (a_row, b_base), a_zero, j0, width,
                                 depth, step)
                for t, total in enumerate(sums):
                    store(builder, total, pc, index(builder, t, (c_base, 1), (i, columns), (j0, 1)), I32)


def _dot_tile(builder: ir.IRBuilder, node: Node, pointers: tuple, bases: tuple, a_zero_raw: ir.Value,
              j0: ir.Value, width: int, depth: int, step: int) -> list[ir.Value]:
    """sum_k (a[k] - a_zero) * (b[j0+t, k] - b_zero[j0+t]) for t < width, in i32."""
    a, b = node.inputs[:2]
    pa, pb, _, pb_zero = pointers
    a_row, b_base = bases
    a_elem, b_elem = element_type(a.dtype), element_type(b.dtype)
    pairs = ir.VectorType(I32, step // 2)
    b_zeros_raw = [load(builder, pb_zero, index(builder, t, (j0, 1)), b_elem) for t in range(width)]
    a_zero = splat(builder, _widen(builder, a_zero_raw, a.dtype, 1, I16), step)
    b_zeros = [splat(builder, _widen(builder, z, b.dtype, 1, I16), step) for z in b_zeros_raw]
    b_rows = [index(builder, t * depth, (b_base, 1), (j0, depth)) for t in range(width)]
    even = ir.Constant(ir.VectorType(I32, step // 2), list(range(0, step, 2)))
    odd = ir.Constant(ir.VectorType(I32, step // 2), list(range(1, step, 2)))
    wide = ir.VectorType(I32, step)
    with fold_range(builder, depth // step, [constant(I32, 0, step // 2)] * width, "kb") as (kb, carry):
        k = builder.mul(kb, i64(step))
        a_vec = builder.sub(_widen(builder, load(builder, pa, builder.add(a_row, k), a_elem, step), a.dtype, step,
                                   I16), a_zero)
        a_wide = builder.sext(a_vec, wide)
        updated = []
        for t in range(width):
            b_vec = builder.sub(_widen(builder, load(builder, pb, builder.add(b_rows[t], k), b_elem, step), b.dtype,
                                       step, I16), b_zeros[t])
            product = builder.mul(a_wide, builder.sext(b_vec, wide))
            pair = builder.add(builder.shuffle_vector(product, product, even),
                               builder.shuffle_vector(product, product, odd))
            updated.append(builder.add(carry.values[t], pair))
        carry.values = updated
    reduce_add = _reduce_add(builder.module, pairs)
    totals = [builder.call(reduce_add, [v]) for v in carry.values]
    a_zero32 = _widen(builder, a_zero_raw, a.dtype, 1)
    with fold_range(builder, depth, totals, "kt", start=depth - depth % step) as (k, carry):
        a_val = builder.sub(_widen(builder, load(builder, pa, builder.add(a_row, k), a_elem), a.dtype, 1), a_zero32)
        carry.values = [builder.add(total, builder.mul(a_val, builder.sub(
            _widen(builder, load(builder, pb, builder.add(b_rows[t], k), b_elem), b.dtype, 1),
            _widen(builder, b_zeros_raw[t], b.dtype, 1)))) for t, total in enumerate(carry.values)]
    return carry.values


def _reduce_add(module: ir.Module, ty: ir.VectorType) -> ir.Function:
    name = f"llvm.vector.reduce.add.v{ty.count}i32"
    existing = module.globals.get(name)
    return existing if existing is not None else ir.Function(module, ir.FunctionType(I32, [ty]), name=name)
