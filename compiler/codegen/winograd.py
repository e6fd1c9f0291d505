"""winograd_conv (compiler/ir/winograd.py): F(m x m, 3 x 3) in three steps per unit of `block` tiles.

  for each unit, a block of tiles and a group of column blocks (the parts share the units; each tile's
  values do not depend on which part or slice computes it, so any thread count or stage slicing gives
  the same bits):
    1. inputs:   V[p][t][ci] = (B^T d_t B)[p] for the unit's tiles t, vectorised over ci;
    2. for each of the group's blocks of `columns` output channels:
       products: M[p][t][c] = sum_ci V[p][t][ci] * U[p][ci][c], the a^2 GEMMs with the conv's register
                 tile (rows of tiles x vectors of channels), U streamed in the order it is stored;
       outputs:  Y_t = A^T M_t A, each output pixel inside the image stored, then the chain (a conv's
                 epilogue) run on its row of the block as codegen/conv.py does: as vector code where
                 epilogue.vectorises (bias, ReLU: no loop for LLVM's vectoriser, whose run-time alias
                 checks and remainders were a third of a kernel's IR), else as a loop.
V and the block's M live in the node's scratch output, which has one region per unit; a part works
in the region of its first unit for all its units (the parts' units are disjoint, so no other part
uses it), so V stays in L2 while every column block reads it, M in L1, and neither is written back to
memory between units (batch 8 ResNet50's 56x56 convs would write 25 MB of V per call). A part makes
a block's V once, at the first of its units in that block: the units of a block (its column groups)
are consecutive, so a part or a stage slice that starts within a block makes V there and reuses it. A tile past
the last one of the last unit computes tile 0's values again and stores nothing.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from functools import reduce

import numpy as np
from llvmlite import ir

from cerebro.compiler.codegen import epilogue
from cerebro.compiler.codegen.llvm_types import constant, load, multiply_add, splat, store
from cerebro.compiler.codegen.llvm_types import index as affine
from cerebro.compiler.codegen.loops import fold_range, for_range, i64
from cerebro.compiler.codegen.partition import parts_of, share, unflatten
from cerebro.compiler.codegen.registry import EmitContext, emitter
from cerebro.compiler.ir import Node
from cerebro.compiler.ir.dtypes import DType
from cerebro.compiler.ir.winograd import TRANSFORMS, Geometry, geometry
from cerebro.compiler.targets import lanes, micro_tile

F32 = ir.FloatType()


def _combine(builder: ir.IRBuilder, coefficients: np.ndarray, values: list[ir.Value]) -> ir.Value:
    """sum(c * v) over the nonzero coefficients: adds and subtracts for +-1, a multiply-add otherwise."""
    total: ir.Value | None = None
    for c, v in zip(coefficients, values):
        if c == 0:
            continue
        width = v.type.count
        if total is None:
            total = v if c == 1 else builder.fmul(v, constant(F32, float(c), width))
        elif c == 1:
            total = builder.fadd(total, v)
        elif c == -1:
            total = builder.fsub(total, v)
        else:
            total = multiply_add(builder, v, constant(F32, float(c), width), total)
    return total


def _transform(builder: ir.IRBuilder, left: np.ndarray, block: list[list[ir.Value]], right: np.ndarray
               ) -> list[list[ir.Value]]:
    """left @ block @ right^T on a block of vectors: columns first, then rows."""
    half = [[_combine(builder, row, [block[i][j] for i in range(len(block))]) for j in range(len(block[0]))]
            for row in left]
    return [[_combine(builder, row, half[a]) for row in right] for a in range(len(half))]


def _tile_origin(builder: ir.IRBuilder, g: Geometry, tile: ir.Value) -> tuple[ir.Value, ir.Value, ir.Value]:
    """(image, first output row, first output column) of a tile (numbered over N x tiles_h x tiles_w)."""
    n, ty, tx = unflatten(builder, tile, [g.batch, g.tiles_h, g.tiles_w])
    return n, affine(builder, 0, (ty, g.tile)), affine(builder, 0, (tx, g.tile))


def _within(builder: ir.IRBuilder, position: ir.Value, size: int) -> ir.Value:
    return builder.and_(builder.icmp_signed(">=", position, i64(0)), builder.icmp_signed("<", position, i64(size)))


def _inputs(builder: ir.IRBuilder, g: Geometry, px: ir.Value, ps: ir.Value, first: ir.Value, v_base: ir.Value,
            width: int) -> None:
    bt, _, _ = TRANSFORMS[g.tile]
    zero = constant(F32, 0.0, width)
    with for_range(builder, g.block, "t") as t:
        tile = affine(builder, 0, (first, 1), (t, 1))
        tile = builder.select(builder.icmp_signed("<", tile, i64(g.tiles)), tile, i64(0))
        n, oy, ox = _tile_origin(builder, g, tile)
        rows, cols = [], []
        for i in range(g.alpha):
            y = affine(builder, i - g.top, (oy, 1))
            x = affine(builder, i - g.left, (ox, 1))
            rows.append((y, _within(builder, y, g.height)))
            cols.append((x, _within(builder, x, g.width)))
        pixels = []
        for y, y_ok in rows:
            for x, x_ok in cols:
                valid = builder.and_(y_ok, x_ok)
                pixel = affine(builder, 0, (n, g.height * g.width), (y, g.width), (x, 1))
                pixels.append((valid, builder.select(valid, pixel, i64(0))))
        with for_range(builder, g.cin // width, "cv") as cv:
            d = [builder.select(valid, load(builder, px, affine(builder, 0, (pixel, g.cin), (cv, width)), F32, width),
                                zero) for valid, pixel in pixels]
            v = _transform(builder, bt, [d[i * g.alpha:(i + 1) * g.alpha] for i in range(g.alpha)], bt)
            for p in range(g.alpha ** 2):
                at = affine(builder, 0, (v_base, 1), (t, g.cin), (cv, width))
                store(builder, v[p // g.alpha][p % g.alpha], ps, affine(builder, p * g.block * g.cin, (at, 1)), F32)


def _products(builder: ir.IRBuilder, g: Geometry, pu: ir.Value, ps: ir.Value, v_base: ir.Value, m_base: ir.Value,
              cb: ir.Value, rows: int, width: int, vectors: int) -> None:
    with for_range(builder, g.alpha ** 2, "p") as p:
        u_row = affine(builder, 0, (cb, g.alpha ** 2 * g.cin * g.columns), (p, g.cin * g.columns))
        v_rows = affine(builder, 0, (v_base, 1), (p, g.block * g.cin))
        with for_range(builder, g.block // rows, "tr") as tr:
            first = affine(builder, 0, (v_rows, 1), (tr, rows * g.cin))
            zeros = [constant(F32, 0.0, width)] * (rows * vectors)
            with fold_range(builder, g.cin, zeros, "ci") as (ci, carry):
                b_at = affine(builder, 0, (u_row, 1), (ci, g.columns))
                bs = [load(builder, pu, affine(builder, v * width, (b_at, 1)), F32, width) for v in range(vectors)]
                updated = []
                for r in range(rows):
                    a = splat(builder, load(builder, ps, affine(builder, r * g.cin, (first, 1), (ci, 1)), F32), width)
                    updated += [multiply_add(builder, a, b, carry.values[r * vectors + v]) for v, b in enumerate(bs)]
                carry.values = updated
            m_rows = affine(builder, 0, (m_base, 1), (p, g.block * g.columns), (tr, rows * g.columns))
            for r in range(rows):
                for v in range(vectors):
                    store(builder, carry.values[r * vectors + v], ps,
                          affine(builder, r * g.columns + v * width, (m_rows, 1)), F32)


def _outputs(builder: ir.IRBuilder, g: Geometry, node: Node, fn: ir.Function, po: ir.Value, ps: ir.Value,
             first: ir.Value, m_base: ir.Value, cb: ir.Value, width: int, vectors: int) -> None:
    _, _, at = TRANSFORMS[g.tile]
    chain = node.attrs.get("chain")
    host = Node("conv", node.inputs, node.outputs, {"epilogue": chain}) if chain is not None else None
    c0 = affine(builder, 0, (cb, g.columns))
    with for_range(builder, g.block, "t") as t:
        tile = affine(builder, 0, (first, 1), (t, 1))
        with builder.if_then(builder.icmp_signed("<", tile, i64(g.tiles))):
            n, oy, ox = _tile_origin(builder, g, tile)
            ys = []
            for v in range(vectors):
                m_at = affine(builder, v * width, (m_base, 1), (t, g.columns))
                m = [load(builder, ps, affine(builder, p * g.block * g.columns, (m_at, 1)), F32, width)
                     for p in range(g.alpha ** 2)]
                ys.append(_transform(builder, at, [m[i * g.alpha:(i + 1) * g.alpha] for i in range(g.alpha)], at))
            for i in range(g.tile):
                for j in range(g.tile):
                    y, x = affine(builder, i, (oy, 1)), affine(builder, j, (ox, 1))
                    inside = [builder.icmp_signed("<", y, i64(g.out_h))] if g.out_h % g.tile else []
                    inside += [builder.icmp_signed("<", x, i64(g.out_w))] if g.out_w % g.tile else []
                    with _when(builder, inside):
                        pixel = affine(builder, 0, (n, g.out_h * g.out_w), (y, g.out_w), (x, 1))
                        base = affine(builder, 0, (pixel, g.cout), (c0, 1))
                        for v in range(vectors):
                            store(builder, ys[v][i][j], po, affine(builder, v * width, (base, 1)), F32)
                        if host is not None and epilogue.vectorises(host):
                            epilogue.apply_rows_vector(builder, host, fn, [(pixel, base)], c0, g.columns)
                        elif host is not None:
                            epilogue.apply_row(builder, host, fn, pixel, base, c0, g.columns)


def _when(builder: ir.IRBuilder, checks: list[ir.Value]) -> AbstractContextManager:
    """builder.if_then on the conjunction of checks, or straight-line code when there are none."""
    return builder.if_then(reduce(builder.and_, checks)) if checks else nullcontext()


def winograd_units(node: Node, target: object, parts: int) -> int:
    return geometry(node).units


@emitter("winograd_conv", units=winograd_units)
def emit_winograd_conv(ctx: EmitContext, node: Node, fn: ir.Function) -> None:
    g = geometry(node)
    width = lanes(ctx.target, DType.f32)
    rows, vectors = micro_tile(ctx.target)
    if g.columns != width * vectors or g.block % rows or g.cin % width or g.cout % g.columns:
        raise NotImplementedError(f"{node.where()}: winograd_conv laid out for another target")
    builder = ir.IRBuilder(fn.append_basic_block("entry"))
    px, pu = fn.args[0], fn.args[1]
    po, ps = fn.args[len(node.inputs)], fn.args[len(node.inputs) + 1]
    part, parts = parts_of(builder, node, fn)
    lo, hi = share(builder, g.units, part, parts)
    # the region of the part's first unit serves all its units: no other part uses it, and it stays in cache
    v_base = affine(builder, 0, (lo, g.scratch_per_unit))
    m_base = affine(builder, g.inputs_per_unit, (v_base, 1))
    with for_range(builder, hi, "unit", start=lo) as unit:
        tiles, group = builder.udiv(unit, i64(g.groups)), builder.urem(unit, i64(g.groups))
        first = affine(builder, 0, (tiles, g.block))
        # the part's units of one block follow each other: V is made at its first one (or the part's)
        fresh = builder.or_(builder.icmp_signed("==", unit, lo), builder.icmp_signed("==", group, i64(0)))
        with builder.if_then(fresh):
            _inputs(builder, g, px, ps, first, v_base, width)
        with for_range(builder, g.blocks_per_group, "cb") as run:
            cb = affine(builder, 0, (group, g.blocks_per_group), (run, 1))
            _products(builder, g, pu, ps, v_base, m_base, cb, rows, width, vectors)
            _outputs(builder, g, node, fn, po, ps, first, m_base, cb, width, vectors)
    builder.ret_void()
