"""winograd_conv (compiler/ir/winograd.py): F(m x m, 3 x 3) in three steps per unit of `block` tiles.

  for each unit, a block of tiles and a group of column blocks (the parts share the units; each tile's
  values do not depend on which part or slice computes it, so any thread count or stage slicing gives
  the same bits):
    1. inputs:   V[p][t][ci] = (B^T d_t B)[p] for the unit's tiles t, vectorised over ci;
    2. for each of the group's blocks of `columns` output channels:
       products: M[p][t][c] = sum_ci V[p][t][ci] * U[p][ci][c], the a^2 GEMMs with the conv's register
                 tile (rows of tiles x vectors of channels), U streamed in the order it is stored (and,
                 where it comes from memory, walked a panel ahead by the row tiles);
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
The sizes (image, channels, tile block, column groups) are the function's arguments (size_arguments), so a
ResNet's stages share one function per chain; a tile's coordinates are stepped, not divided out, and a
residual is read at the store's own index, so the run-time sizes cost the loops no registers.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import astuple, dataclass, replace
from functools import reduce

import numpy as np
from llvmlite import ir

from cerebro.compiler.codegen import epilogue
from cerebro.compiler.codegen.llvm_types import constant, load, multiply_add, splat, store
from cerebro.compiler.codegen.loops import fold_range, for_range, i64, size_value
from cerebro.compiler.codegen.matmul import STREAMED_B_BYTES, prefetch_walk, stream_fetches
from cerebro.compiler.codegen.partition import parts_of, share, unflatten
from cerebro.compiler.codegen.registry import EmitContext, SizeRules, emitter, sizes_as_arguments
from cerebro.compiler.ir import Node
from cerebro.compiler.ir.dtypes import DType
from cerebro.compiler.ir.fused import Epilogue
from cerebro.compiler.ir.winograd import TRANSFORMS, Geometry, geometry
from cerebro.compiler.targets import lanes, micro_tile, streams_conv_weights

F32 = ir.FloatType()
Size = int | ir.Value  # a constant, or one of the function's i64 arguments (or made from them)


@dataclass(frozen=True)
class Sizes:
    """The sizes the code reads, in the order the function takes them as arguments (size_arguments);
    constants where it takes none."""

    batch: Size
    height: Size
    width: Size
    cin: Size
    cout: Size
    out_h: Size
    out_w: Size
    tiles_h: Size
    tiles_w: Size
    tiles: Size
    units: Size
    block: Size
    groups: Size


def _constant_sizes(g: Geometry) -> Sizes:
    return Sizes(g.batch, g.height, g.width, g.cin, g.cout, g.out_h, g.out_w, g.tiles_h, g.tiles_w, g.tiles,
                 g.units, g.block, g.groups)


def _mul(builder: ir.IRBuilder, *factors: Size) -> Size:
    """The product, its constant factors folded in Python."""
    scale = math.prod(f for f in factors if isinstance(f, int))
    values = [f for f in factors if not isinstance(f, int)]
    if scale == 0 or not values:
        return scale
    product = reduce(lambda a, b: builder.mul(a, b, flags=("nsw",)), values)
    return product if scale == 1 else builder.mul(product, i64(scale), flags=("nsw",))


def _sum(builder: ir.IRBuilder, *terms: Size) -> ir.Value:
    """The sum as an i64 index, its constant terms folded in Python and added last."""
    offset = sum(t for t in terms if isinstance(t, int))
    values = [t for t in terms if not isinstance(t, int)]
    if not values:
        return i64(offset)
    total = reduce(lambda a, b: builder.add(a, b, flags=("nsw",)), values)
    return total if offset == 0 else builder.add(total, i64(offset), flags=("nsw",))


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


@contextmanager
def _walk_tiles(builder: ir.IRBuilder, g: Geometry, s: Sizes, first: ir.Value, start: list[ir.Value], name: str
                ) -> Iterator[tuple[ir.Value, ir.Value, list[ir.Value]]]:
    """for t in the block: (t, tile, [image, first output row, first output column]) of the unit's tile t,
    its coordinates stepped on from start (those of tile `first`) instead of divided out of the tile number
    (with run-time sizes each tile took three divisions in each phase)."""
    with fold_range(builder, size_value(s.block), start, name) as (t, carry):
        n, ty, tx = carry.values
        yield t, _sum(builder, first, t), [n, _sum(builder, _mul(builder, ty, g.tile)),
                                           _sum(builder, _mul(builder, tx, g.tile))]
        x_next = _sum(builder, tx, 1)
        row_done = builder.icmp_signed("==", x_next, size_value(s.tiles_w))
        y_next = builder.add(ty, builder.zext(row_done, i64(0).type))
        image_done = builder.icmp_signed("==", y_next, size_value(s.tiles_h))
        carry.values = [builder.add(n, builder.zext(image_done, i64(0).type)),
                        builder.select(image_done, i64(0), y_next), builder.select(row_done, i64(0), x_next)]


def _within(builder: ir.IRBuilder, position: ir.Value, size: Size) -> ir.Value:
    return builder.and_(builder.icmp_signed(">=", position, i64(0)),
                        builder.icmp_signed("<", position, size_value(size)))


def _inputs(builder: ir.IRBuilder, g: Geometry, s: Sizes, window: list[Size], px: ir.Value, ps: ir.Value,
            first: ir.Value, start: list[ir.Value], v_base: ir.Value, width: int) -> None:
    """window: the offsets of the a x a input pixels from a tile's first one (row-major), made once per
    function: with run-time sizes, made per tile they spilled the transform's registers."""
    bt, _, _ = TRANSFORMS[g.tile]
    zero = constant(F32, 0.0, width)
    v_stride = _mul(builder, s.block, s.cin)  # between V's positions p
    with _walk_tiles(builder, g, s, first, start, "t") as (t, tile, origin):
        real = builder.icmp_signed("<", tile, size_value(s.tiles))  # else tile 0's values again
        n, oy, ox = (builder.select(real, value, i64(0)) for value in origin)
        y0, x0 = _sum(builder, oy, -g.top), _sum(builder, ox, -g.left)
        corner = _mul(builder, _sum(builder, _mul(builder, _sum(builder, _mul(builder, n, s.height), y0), s.width),
                                    x0), s.cin)
        ys = [_within(builder, _sum(builder, y0, i), s.height) for i in range(g.alpha)]
        xs = [_within(builder, _sum(builder, x0, j), s.width) for j in range(g.alpha)]
        pixels = []
        for i, y_ok in enumerate(ys):
            for j, x_ok in enumerate(xs):
                valid = builder.and_(y_ok, x_ok)
                pixels.append((valid, builder.select(valid, _sum(builder, corner, window[i * g.alpha + j]), i64(0))))
        v_at = _sum(builder, v_base, _mul(builder, t, s.cin))
        with for_range(builder, _cin_vectors(builder, s, width), "cv") as cv:
            lane = _mul(builder, cv, width)
            d = [builder.select(valid, load(builder, px, _sum(builder, pixel, lane), F32, width), zero)
                 for valid, pixel in pixels]
            v = _transform(builder, bt, [d[i * g.alpha:(i + 1) * g.alpha] for i in range(g.alpha)], bt)
            at = _element(builder, ps, _sum(builder, v_at, lane))
            for p in range(g.alpha ** 2):  # a step of a run-time stride each, not 16 products kept in registers
                store(builder, v[p // g.alpha][p % g.alpha], at, i64(0), F32)
                at = _element(builder, at, v_stride)


def _element(builder: ir.IRBuilder, base: ir.Value, at: Size) -> ir.Value:
    """&base[at] (f32 elements)."""
    return builder.gep(base, [size_value(at)], inbounds=True, source_etype=F32)


def _cin_vectors(builder: ir.IRBuilder, s: Sizes, width: int) -> Size:
    return s.cin // width if isinstance(s.cin, int) else builder.udiv(s.cin, i64(width))


def _products(builder: ir.IRBuilder, g: Geometry, s: Sizes, pu: ir.Value, ps: ir.Value, v_base: ir.Value,
              m_base: ir.Value, cb: ir.Value, rows: int, width: int, vectors: int, walk: ir.Value | None) -> None:
    """M[p][t] = V[p][t] @ U[p] (M[p]'s rows one column block apart: as M[t][p], 4 KiB apart, the
    stores of the register tile aliased the next loads, 2-4% slower). With walk (U streams: an i1, whether
    this is the part's first column block), the row tiles of each position walk the next position's panel
    of U, which follows it in memory (matmul.stream_fetches), so memory delivers it under their FMAs."""
    block_rows = s.block // rows if isinstance(s.block, int) else builder.udiv(s.block, i64(rows))
    panel = _mul(builder, g.columns, s.cin)
    with for_range(builder, g.alpha ** 2, "p") as p:
        u_row = _sum(builder, _mul(builder, cb, g.alpha ** 2 * g.columns, s.cin), _mul(builder, p, g.columns, s.cin))
        v_rows = _sum(builder, v_base, _mul(builder, p, s.block, s.cin))
        with for_range(builder, block_rows, "tr") as tr:
            fetches = None
            if walk is not None:
                first_panel = builder.and_(walk, builder.icmp_signed("==", p, i64(0)))
                fetches = stream_fetches(builder, (tr, size_value(block_rows), first_panel), u_row,
                                         _sum(builder, u_row, panel), s.cin, i64(0), g.columns, F32)
            first = _sum(builder, v_rows, _mul(builder, tr, rows, s.cin))
            # pointers stepped per ci and the rows as offsets from one of them: with a run-time Cin, indices
            # made LLVM recompute the rows' addresses every step
            row_offsets = [size_value(_mul(builder, r, s.cin)) for r in range(1, rows)]
            zeros = [constant(F32, 0.0, width)] * (rows * vectors)
            pointers = [_element(builder, ps, first), _element(builder, pu, u_row)]
            with fold_range(builder, size_value(s.cin), zeros + pointers, "ci") as (ci, carry):
                a_row, b_at = carry.values[-2:]
                if fetches is not None:
                    prefetch_walk(builder, pu, fetches, ci, F32)
                bs = [load(builder, b_at, i64(v * width), F32, width) for v in range(vectors)]
                updated = []
                for r, at in enumerate([i64(0), *row_offsets]):
                    a = splat(builder, load(builder, a_row, at, F32), width)
                    updated += [multiply_add(builder, a, b, carry.values[r * vectors + v]) for v, b in enumerate(bs)]
                carry.values = [*updated, _element(builder, a_row, i64(1)), _element(builder, b_at, i64(g.columns))]
            m_rows = _element(builder, ps, _sum(builder, m_base, _mul(builder, p, s.block, g.columns),
                                                _mul(builder, tr, rows * g.columns)))
            for r in range(rows):
                for v in range(vectors):
                    store(builder, carry.values[r * vectors + v], m_rows, i64(r * g.columns + v * width), F32)


def _residual_chain(chain: Epilogue, cout: int) -> Epilogue:
    """chain with its loads of the output's own layout (row stride Cout, column stride 1) at row stride 1:
    with run-time sizes the outputs pass each pixel's row as pixel * Cout, so a residual is read at the
    store's own index (no product with a run-time Cout, and no Cout in the function's key)."""
    return replace(chain, loads=tuple((vid, arg, 1 if (row, col) == (cout, 1) else row, col)
                                      for vid, arg, row, col in chain.loads))


def _host(node: Node, g: Geometry, sized: bool) -> Node | None:
    """node's chain as a conv's epilogue (what epilogue.apply_row reads), or None where it has none."""
    chain = node.attrs.get("chain")
    if chain is not None and sized:
        chain = _residual_chain(chain, g.cout)
    return Node("conv", node.inputs, node.outputs, {"epilogue": chain}) if chain is not None else None


def _outputs(builder: ir.IRBuilder, g: Geometry, s: Sizes, chains: list[tuple[ir.Value | None, Node, object]],
             po: ir.Value, ps: ir.Value, first: ir.Value, start: list[ir.Value], m_base: ir.Value, cb: ir.Value,
             width: int, vectors: int, sized: bool) -> None:
    """chains: (condition or None: always, the node whose chain it is, the function-like its slots index); a
    residual-sharing core has two, whose conditions exclude each other."""
    _, _, at = TRANSFORMS[g.tile]
    hosts = [(when, _host(node, g, sized), fn) for when, node, fn in chains]
    c0 = _mul(builder, cb, g.columns)
    row_step = _mul(builder, s.out_w, s.cout)  # between output rows
    m_offsets = [_mul(builder, p, s.block, g.columns) for p in range(g.alpha ** 2)]
    with _walk_tiles(builder, g, s, first, start, "t") as (t, tile, (n, oy, ox)):
        with builder.if_then(builder.icmp_signed("<", tile, size_value(s.tiles))):
            m_tile = _sum(builder, m_base, _mul(builder, t, g.columns))
            corner = _sum(builder, _mul(builder, _sum(builder, _mul(builder, n, s.out_h), oy), s.out_w), ox)
            corner_at = _mul(builder, corner, s.cout)
            # `step` vectors of columns at a time, their epilogue on those columns (the chain is per element):
            # one vector in a loop where every tile is whole; written out per vector, the transforms and the
            # block-wide epilogues were a sixth of the kernel's LLVM time. Where tiles are cut at the edge the
            # loop would check each pixel once per vector (squeezenet1_1's 13x13 convs 1% slower per call), so
            # there the block stays one step, as before
            partial = bool(g.out_h % g.tile or g.out_w % g.tile)
            step = vectors if partial else 1
            with for_range(builder, vectors // step, "v") as v:
                offsets = [_mul(builder, _sum(builder, _mul(builder, v, step), u), width) for u in range(step)]
                ys = []
                for lane in offsets:
                    m = [load(builder, ps, _sum(builder, m_tile, m_offsets[p], lane), F32, width)
                         for p in range(g.alpha ** 2)]
                    ys.append(_transform(builder, at, [m[i * g.alpha:(i + 1) * g.alpha] for i in range(g.alpha)], at))
                column = _sum(builder, c0, offsets[0])
                for i in range(g.tile):
                    for j in range(g.tile):
                        oy_i, ox_j = _sum(builder, oy, i), _sum(builder, ox, j)
                        inside = [builder.icmp_signed("<", oy_i, size_value(s.out_h))] if g.out_h % g.tile else []
                        inside += [builder.icmp_signed("<", ox_j, size_value(s.out_w))] if g.out_w % g.tile else []
                        with _when(builder, inside):
                            pixel_at = _sum(builder, corner_at, _mul(builder, i, row_step), _mul(builder, j, s.cout))
                            base = _sum(builder, pixel_at, column)
                            for u, y in enumerate(ys):
                                store(builder, y[i][j], po, _sum(builder, base, u * width), F32)
                            row = pixel_at if sized else _sum(builder, corner, _mul(builder, i, s.out_w), j)
                            _apply_chains(builder, hosts, row, base, column, step * width)


def _apply_chains(builder: ir.IRBuilder, hosts: list[tuple[ir.Value | None, Node | None, object]], row: ir.Value,
                  base: ir.Value, column: ir.Value, count: int) -> None:
    """Each host's chain on the row's columns where its condition holds (a core's two forms: one branch)."""
    def apply(host: Node | None, fn: object) -> None:
        if host is not None and epilogue.vectorises(host):
            epilogue.apply_rows_vector(builder, host, fn, [(row, base)], column, count)
        elif host is not None:
            epilogue.apply_row(builder, host, fn, row, base, column, count)

    epilogue.by_form(builder, hosts, apply)


def _when(builder: ir.IRBuilder, checks: list[ir.Value]) -> AbstractContextManager:
    """builder.if_then on the conjunction of checks, or straight-line code when there are none."""
    return builder.if_then(reduce(builder.and_, checks)) if checks else nullcontext()


def winograd_units(node: Node, target: object, parts: int) -> int:
    return geometry(node).units


@emitter("winograd_conv", units=winograd_units)
def emit_winograd_conv(ctx: EmitContext, node: Node, fn: ir.Function) -> None:
    """A Winograd conv with a residual add and the same conv without it call one function
    (epilogue.share_residual): ResNet18's two Winograd functions (ReLU; residual + ReLU) are one core."""
    forms = epilogue.residual_forms(node, ctx.target, 2, attr="chain")
    epilogue.share_residual(node, fn, forms, lambda *args: _emit_winograd_conv(ctx, *args))


def _emit_winograd_conv(ctx: EmitContext, fn: ir.Function, node: Node, plain: Node | None = None,
                        forms: epilogue.Residual | None = None) -> None:
    """node's code in fn; with plain (a residual-sharing core), each output row's chain is node's where the
    residual pointer is not null, else plain's."""
    g = geometry(node)
    width = lanes(ctx.target, DType.f32)
    rows, vectors = micro_tile(ctx.target)
    if g.columns != width * vectors or g.block % rows or g.cin % width or g.cout % g.columns:
        raise NotImplementedError(f"{node.where()}: winograd_conv laid out for another target")
    builder = ir.IRBuilder(fn.append_basic_block("entry"))
    px, pu = fn.args[0], fn.args[1]
    po, ps = fn.args[len(node.inputs)], fn.args[len(node.inputs) + 1]
    arguments = len(size_arguments(node))
    sized = bool(arguments) and fn.args[-1].type == i64(0).type  # module.py passes size_arguments
    s = Sizes(*fn.args[-arguments:]) if sized else _constant_sizes(g)
    window = [_mul(builder, _sum(builder, _mul(builder, i, s.width), j), s.cin) if sized else
              (i * g.width + j) * g.cin for i in range(g.alpha) for j in range(g.alpha)]
    chains: list[tuple[ir.Value | None, Node, object]] = [(None, node, fn)]
    if plain is not None:
        present = epilogue.residual_present(builder, fn, forms)
        chains = [(present, node, fn), (builder.not_(present), plain, epilogue.plain_arguments(fn, forms))]
    part, parts = parts_of(builder, node, fn)
    lo, hi = share(builder, s.units, part, parts)
    # the region of the part's first unit serves all its units: no other part uses it, and it stays in cache
    scratch_per_unit = _mul(builder, g.alpha ** 2, s.block, _sum(builder, s.cin, g.columns) if sized else
                            g.cin + g.columns)
    v_base = _sum(builder, _mul(builder, lo, scratch_per_unit))
    m_base = _sum(builder, v_base, _mul(builder, g.alpha ** 2, s.block, s.cin))
    tile_blocks = size_value(s.units) if isinstance(s.groups, int) and s.groups == 1 else builder.udiv(
        size_value(s.units), size_value(s.groups))
    streams = kernel_streams(g, ctx.target)  # then the units go column group by column group
    with for_range(builder, hi, "unit", start=lo) as unit:
        tiles, group = ((builder.urem(unit, tile_blocks), builder.udiv(unit, tile_blocks)) if streams else
                        (builder.udiv(unit, size_value(s.groups)), builder.urem(unit, size_value(s.groups))))
        first = _sum(builder, _mul(builder, tiles, s.block))
        start = unflatten(builder, first, [s.batch, s.tiles_h, s.tiles_w])
        # a block's units follow each other, V made at the first (or the part's), else every unit makes its own
        fresh = builder.or_(builder.icmp_signed("==", unit, lo), builder.icmp_unsigned("!=", tile_blocks, i64(1))
                            if streams else builder.icmp_signed("==", group, i64(0)))
        with builder.if_then(fresh):
            _inputs(builder, g, s, window, px, ps, first, start, v_base, width)
        with for_range(builder, g.blocks_per_group, "cb") as run:
            cb = _sum(builder, _mul(builder, group, g.blocks_per_group), run)
            walk = builder.and_(builder.icmp_signed("==", unit, lo), builder.icmp_signed("==", run, i64(0))
                                ) if streams else None
            _products(builder, g, s, pu, ps, v_base, m_base, cb, rows, width, vectors, walk)
            _outputs(builder, g, s, chains, po, ps, first, start, m_base, cb, width, vectors, sized)
    builder.ret_void()


def kernel_streams(g: Geometry, target: object) -> bool:
    """Whether the transformed kernel (a^2 x Cin x Cout f32) is matmul.STREAMED_B_BYTES or more, which come
    from L3 or memory: then the units go column group by column group (each group's kernel read once from
    there, then from L2 by every tile block, whose inputs each unit transforms again) rather than tile
    block by tile block (each block's inputs transformed once, every group's kernel read again: ResNet18's
    256 x 256 at 14 x 14, 4.2 MB in 9 tile blocks, read 9 times from a Xeon core's L3 at 29 GB/s), and
    the products walk the kernel ahead of themselves, on targets.streams_conv_weights' targets. A choice of
    the kernel key."""
    return streams_conv_weights(target) and g.alpha ** 2 * g.cin * g.cout * 4 >= STREAMED_B_BYTES


def _sized(node: Node) -> bool:
    """Whether node's function takes its sizes as arguments: where its chain reads nothing but per-channel
    operands and ones of the output's layout (a residual), which the outputs read at the store's index."""
    chain = node.attrs.get("chain")
    cout = geometry(node).cout
    return chain is None or all((row, col) in ((0, 0), (0, 1), (cout, 1)) for _, _, row, col in chain.loads)


def size_arguments(node: Node) -> list[int]:
    """The sizes (Sizes' order) the node function takes as trailing i64 arguments, so that the Winograd convs
    of a ResNet's stages (each its image size and channel count) share one function per chain: ResNet18's 6
    -> 2. The tile blocks and column groups are arguments too; the loops they bound are outside the products."""
    return list(astuple(_constant_sizes(geometry(node)))) if _sized(node) else []


def runtime_shapes(node: Node, target: object) -> tuple[dict[int, tuple], tuple, dict[str, object]] | None:
    """For kernel_key: every shape as None (one-element constants keep theirs: literals), the compile-time
    choices (column blocks per group, whether the output has a partial tile row or column), block and groups
    as arguments, and the chain as the emitter reads it (_residual_chain)."""
    if not _sized(node):
        return None
    g = geometry(node)
    chain = node.attrs.get("chain")
    inner = [v for n in (chain.nodes if chain else ()) for v in (*n.inputs, *n.outputs)]
    shapes = {v.id: (None,) * v.rank for v in (*node.inputs, *node.outputs, *inner) if not (v.is_const and v.size == 1)}
    choices = ("winograd sizes", g.blocks_per_group, g.out_h % g.tile != 0, g.out_w % g.tile != 0,
               kernel_streams(g, target))
    sized: dict[str, object] = {"block": "argument", "groups": "argument"}
    if chain is not None:
        sized["chain"] = _residual_chain(chain, g.cout)
    return shapes, choices, sized


sizes_as_arguments(SizeRules(size_arguments, runtime_shapes), "winograd_conv")
