"""matmul: a register-blocked micro-kernel with explicit vectors and fused multiply-add.

Loop structure, per batch:  for K panel k0 (KC rows of b: one column block of it fits L1)
                              for column block j0 (NV vectors of W lanes)
                                for row block i0 (MR rows)
                                  acc[MR][NV] = (k0 ? C : 0) ; for k in panel:
                                    acc[r][v] += a[i0+r, k] * b[k, j0+v*W : +W]
The inner k loop keeps MR*NV accumulators in vector registers (SSA phis),
loads NV vectors of b (contiguous in N) and broadcasts one a per row, so
each loaded value feeds several fmas. A deep matmul's K panels are one run-time loop over one copy of
the tiles (the first panel starts from zeros, the last runs the epilogue: LLVM's time grows with the copies
of the tiles, not with their trip counts). Column tails use one-vector tiles,
then scalar tiles; the row tail is one tile with M % MR rows (shapes are
compile-time constants). In a call split into parts (codegen/partition.py)
each part takes a share of the batch x row blocks, or, when there are fewer
of those than parts, a share of all tiles numbered column-major, so each
part streams its own share of b (partition.for_rectangles). `llvm.fmuladd` fuses where the target has fma and never
becomes a libm call where it has not.

Columns after the last full block form one tile whose last chunk is a short
vector (see tile_phases). A constant `b` packed by passes/prepack.py
(attrs["packed_b"]) is read as one contiguous stream per tile; when it is large enough to come from L3
or memory (STREAMED_B_BYTES), the part's first tile prefetches PREFETCH_K rows ahead in that stream and
every other tile a share of the next column block's panel (stream_fetches), so memory delivers the next
panel while the row blocks compute on this one: with only the first tile fetching, its column block's panel
came in at memory speed and the FMAs of the other row blocks waited for none of it (Xeon, one core,
every node whole: 12 GPT-2 MLPs at 32 rows 48 -> 42 ms; BERT 1.19x, GPT-2 1.18x). Where b
does not stream, each k step of a tile prefetches `rows` elements of the next row block's a (contiguous a:
that block whole by the tile's end; A_LOCALITY): the hardware prefetcher left a's 6 row streams from L3 or
memory to stall the broadcasts (Zen 4, one core: 18816 x 96 x 64 ran at 78 GFLOP/s against 106 with a in L2;
prefetched 98; convnext_tiny batch 8 1.07x). A fused
epilogue (attrs["epilogue"], passes/epilogue.py) runs on each tile of the
last K panel right after its store, while the tile is in L1. A bf16 or f16 b
(passes/half_weights.py: a batch-1 layer's weights) is loaded as 16-bit
elements and widened in registers (halfconv), half the bytes streamed; an
int8 b (passes/int8_weights.py, quantize="int8-weights") is loaded as bytes
and converted to f32 (sitofp), its per-column scale applied by the epilogue. An unpacked b whose rows
do not start on a vector boundary (attention scores: b = K^T [64, 197]) is read from an aligned stack
copy of each full column block, made once per rectangle for all its row blocks (aligned_copy).

A batch-free f32 matmul on contiguous operands with packed b (every dense layer of more than 8 rows) takes
M, K and N as i64 arguments (runtime_sizes), so layers differing only in them share one function
(kernel_key): trip counts, the K panels (one or more, a loop either way; a tile loads C only in a later
panel, behind a branch), the packed panel's offset j0*K, the row strides K (a) and N (c, a residual's),
and whether the parts split rows or columns (N <= M) come from the arguments. The tiles, the column
tail's chunks, the row tail's height (M % MR) and whether b streams (prefetch) stay constants of the key
(runtime_shapes), so the k loops are the same instructions: each a row's own pointer, made opaque before
the loop (LLVM rebuilt six rows K apart from one pointer with 5 more integer ops per k step). swin_t's 29
matmul functions become 19 (batch 8: 17), GPT-2's 6 become 3; same bits.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace

from llvmlite import ir

from cerebro.compiler.codegen import epilogue, halfconv
from cerebro.compiler.codegen.llvm_types import (
    byte_size,
    constant,
    element_type,
    index,
    load,
    multiply_add,
    opaque,
    splat,
    stack_array,
    store,
    vector_type,
)
from cerebro.compiler.codegen.loops import fold_range, for_range, i64, size_value
from cerebro.compiler.codegen.partition import (
    first_wins,
    for_outer,
    for_phases,
    for_rectangles,
    grid_units,
    parts_of,
    smax,
    smin,
)
from cerebro.compiler.codegen.registry import EmitContext, SizeRules, emitter, sizes_as_arguments, unsupported
from cerebro.compiler.ir import Node
from cerebro.compiler.ir.dtypes import DType
from cerebro.compiler.ir.matmul_view import MatmulView, matmul_view
from cerebro.compiler.ir.strides import contiguous_strides
from cerebro.compiler.targets import lanes, matmul_tile, widens_f16


def column_phases(columns: int, width: int, vectors: int) -> list[tuple[list[int], int, int]]:
    """Split columns into (chunk widths of one tile, tile count, first column) phases."""
    block = width * vectors
    full = columns // block
    rest = columns - full * block
    singles = rest // width if width > 1 else 0
    scalars = rest - singles * width
    phases = [([width] * vectors, full, 0), ([width], singles, full * block), ([1], scalars, columns - scalars)]
    return [phase for phase in phases if phase[1] > 0]


def tile_phases(columns: int, width: int, vectors: int) -> list[tuple[list[int], int, int]]:
    """column_phases for register tiles: the columns after the full blocks form one tile whose last
    chunk is a short vector (<rest x T>: LLVM splits its loads and stores to that many elements, never
    past the end), so a narrow output (N=10) is one vector chain per row, not N latency-bound scalar ones."""
    if width == 1:
        return column_phases(columns, width, vectors)
    block = width * vectors
    full, rest = divmod(columns, block)
    chunks = [width] * (rest // width) + ([rest % width] if rest % width else [])
    return [phase for phase in [([width] * vectors, full, 0), (chunks, 1, full * block)] if phase[1] and phase[0]]


def runtime_tile_phases(builder: ir.IRBuilder, columns: int, runtime: int | ir.Value, width: int, vectors: int
                        ) -> list[tuple[list[int], int | ir.Value, int | ir.Value]]:
    """tile_phases of `columns` as (widths, count, first column); where the column count is an argument
    (`runtime`), the full blocks' count and what follows them computed from it: every count with the same
    tile_plan has the same tail."""
    phases = tile_phases(columns, width, vectors)
    if isinstance(runtime, int):
        return phases
    block = width * vectors
    full = builder.udiv(runtime, i64(block))
    start = builder.mul(full, i64(block))
    return [(widths, full, 0) if _full_blocks(widths, first, width, vectors) else
            (widths, count, builder.add(start, i64(first - columns // block * block)))
            for widths, count, first in phases]


def tile_plan(columns: int, width: int, vectors: int) -> tuple:
    """What the code of runtime_tile_phases depends on: each phase's widths and, but for the full blocks,
    its count."""
    return tuple((tuple(widths), None if _full_blocks(widths, first, width, vectors) else count)
                 for widths, count, first in tile_phases(columns, width, vectors))


def _full_blocks(widths: list[int], first: int, width: int, vectors: int) -> bool:
    return first == 0 and widths == [width] * vectors and width > 1


def _times(builder: ir.IRBuilder, a: int | ir.Value, b: int | ir.Value) -> int | ir.Value:
    """a * b of sizes that are ints (folded here) or i64 arguments."""
    if isinstance(a, int) and isinstance(b, int):
        return a * b
    return builder.mul(i64(a) if isinstance(a, int) else a, i64(b) if isinstance(b, int) else b, flags=("nsw",))


def _term(builder: ir.IRBuilder, value: ir.Value, stride: int | ir.Value) -> tuple[ir.Value, int]:
    """value * stride as an index term (llvm_types.index), the stride a constant or an argument."""
    return (value, stride) if isinstance(stride, int) else (_times(builder, value, stride), 1)


_MATMUL_TYPES = (DType.f32, DType.f64, DType.i32, DType.i64)
K_CHAINS = 4  # independent partial sums of a one-row int8-weights tile (see _tile)
PREFETCH_K = 16  # b rows the panel's first tile fetches ahead, every cache line of each (a packed AVX2 row: 1)
CACHE_LINE = 64  # bytes
STREAMED_B_BYTES = 2 << 20  # a packed b this big comes from L3 or memory, not L2: its first tiles prefetch
ALIGNED_COPY_BYTES = 4096  # the largest column block of b (all of K) copied to the stack for aligned loads
MAX_TILE_ROWS = 12  # matmul_tile's rows on any target
A_LOCALITY = 2  # the next row block's a into L2 and out (prefetcht1; Zen 4: as fast as prefetcht0)
MIN_DEPTH_BLOCK = 512  # K rows per pass at least (depth_block): AVX2's L1-sized panel, AVX-512's from L2


def balanced_rows(length: int, rows: int) -> int:
    """Tile rows for `length` rows in tiles of at most `rows`: rows, but where the last tile would keep
    under a third of them (too few accumulators to cover the multiply-add latency: a 1-row tail of a 12 x 2
    tile runs its 2 FMAs a k step at a quarter of the rate), the fewest rows that make as many tiles, all
    within one row of each other (49 = 4 x 10 + 9, not 4 x 12 + 1). One Xeon core: 49 x 2048 x 512 670 ->
    626 us (48 rows: 615), ResNet's 7 x 7 3x3 512 -> 512 conv 1.53 -> 1.34-1.40 ms, resnet50 b1 1.01x."""
    rest = length % rows
    if rest == 0 or 3 * rest >= rows:
        return rows
    tiles = -(-length // rows)
    return -(-length // tiles)


def tile(node: Node, target: object) -> tuple[int, int]:
    """(rows, vectors) of node's register tile: targets.matmul_tile for its rows in all batches, its rows
    balanced over one batch entry's."""
    view = matmul_view(node)
    rows, vectors = matmul_tile(target, view.all_rows)
    return balanced_rows(view.rows, rows), vectors


def _unit_counts(node: Node, target: object) -> tuple[int, int]:
    """(batch x row blocks, column blocks) of the output's register tiles."""
    view = matmul_view(node)
    tile_rows, vectors = tile(node, target)
    phases = tile_phases(view.columns, lanes(target, node.outputs[0].dtype), vectors)
    return math.prod(view.batch) * -(-view.rows // tile_rows), sum(count for _, count, _ in phases)


def _rows_first(node: Node) -> bool:
    """Whether the parts split the rows (a batched matmul's batches, each with its own b) or, where b
    outweighs a, the columns (each part streams its share of b)."""
    return math.prod(matmul_view(node).batch) > 1 or first_wins(node.inputs[0].nbytes, node.inputs[1].nbytes)


def aligned_copy(node: Node, target: object) -> bool:
    """Whether the tiles read b's full column blocks from an aligned copy on the stack: an unpacked b whose
    rows do not all start on a vector boundary (loads split across cache lines: attention scores with 197
    keys, b = K^T [64, 197], ran 1.5x slower than with 192 or 200), of at most ALIGNED_COPY_BYTES per
    column block, and more than one row block to read each copy."""
    view, out = matmul_view(node), node.outputs[0]
    tile_rows, vectors = tile(node, target)
    width = lanes(target, out.dtype)
    vector_bytes = width * out.dtype.itemsize
    return ("packed_b" not in node.attrs and node.inputs[1].dtype is out.dtype and width > 1
            and view.rows > tile_rows and view.columns >= width * vectors
            and view.depth * vectors * vector_bytes <= ALIGNED_COPY_BYTES
            and any(stride * out.dtype.itemsize % vector_bytes for stride in view.b[:-1]))


def runtime_sizes(node: Node) -> bool:
    """Whether M, K and N are arguments of the node function (size_arguments): a batch-free f32 matmul
    with packed f32 b (no aligned copy, no half or int8 widening) on contiguous a and c, of more rows than
    any target's tile (a classifier's one row keeps its sizes: its code then has no full row tiles)."""
    view, out = matmul_view(node), node.outputs[0]
    return (not view.batch and out.dtype is DType.f32 and node.inputs[1].dtype is DType.f32
            and "packed_b" in node.attrs and view.depth > 0 and view.rows > MAX_TILE_ROWS
            and view == _contiguous(view))


def _contiguous(view: MatmulView) -> MatmulView:
    """The batch-free view of row-major a [M, K] and c [M, N] (a packed b's strides: its columns')."""
    return replace(view, a=tuple(contiguous_strides((view.rows, view.depth))),
                   c=tuple(contiguous_strides((view.rows, view.columns))))


def runtime_batch(node: Node) -> bool:
    """Whether the batch count is an argument of the node function (size_arguments): a batched matmul of
    b in the output's float type whose batch dims walk every operand as one dim (attention's heads x
    windows: swin_t's four stages of scores differ only in it)."""
    view, out = matmul_view(node), node.outputs[0]
    return (math.prod(view.batch) > 1 and out.dtype in (DType.f32, DType.f64) and node.inputs[1].dtype is out.dtype
            and len(_batch_dims(view.batch, [view.a, view.b, view.c])) == 1)


def size_arguments(node: Node) -> list[int]:
    """The sizes the node function takes as trailing i64 arguments: M, K, N (runtime_sizes) or the batch
    count (runtime_batch)."""
    view = matmul_view(node)
    return [view.rows, view.depth, view.columns] if runtime_sizes(node) else [
        math.prod(view.batch)] if runtime_batch(node) else []


def runtime_shapes(node: Node, target: object) -> tuple[dict[int, tuple], tuple, dict[str, object]] | None:
    """For kernel_key: (value id -> shape with the argument sizes as None, the choices emit_matmul makes
    from the sizes at compile time for `target`, attr -> its key where it holds a size), or None when every
    size is a constant. An epilogue's loads keep their row strides (a residual's is N)."""
    if not runtime_sizes(node) and not runtime_batch(node):
        return None
    view = matmul_view(node)
    epilogue_ = node.attrs.get("epilogue")
    inner = [v for n in (epilogue_.nodes if epilogue_ else ()) for v in (*n.inputs, *n.outputs)]
    shapes = {v.id: ("sized",) for v in (*node.inputs, *node.outputs, *inner)}  # any rank: the code reads the view
    if not runtime_sizes(node):  # the batch count: all else as the view says
        (_, *strides), = _batch_dims(view.batch, [view.a, view.b, view.c])
        walk = (view.rows, view.depth, view.columns, tuple(strides), view.a[-2:], view.b[-2:], view.c[-2:])
        return shapes, ("batch", walk, tile(node, target)), {"view": "batch"}
    tile_rows, vectors = tile(node, target)
    width = lanes(target, node.outputs[0].dtype)
    # a b streamed from memory prefetches in its k loop: one more uop per k step where b is in cache (3136 x 96
    # x 288: 2% slower)
    choices = ("sizes", tile_rows, view.rows % tile_rows, tile_plan(view.columns, width, vectors),
               node.inputs[1].nbytes >= STREAMED_B_BYTES)
    ends = _rows_times_columns(node)  # its epilogue (an Epilogue: described as the node's own would be)
    return shapes, (*choices, ends is not node), {"view": "contiguous", **({"epilogue": ends.attrs["epilogue"]}
                                                                           if ends is not node else {})}


def matmul_units(node: Node, target: object, parts: int) -> int:
    return grid_units(*_unit_counts(node, target), parts, _rows_first(node))  # the choice for_rectangles makes


@emitter("matmul", units=matmul_units)
def emit_matmul(ctx: EmitContext, node: Node, fn: ir.Function) -> None:
    out = node.outputs[0]
    if out.dtype not in _MATMUL_TYPES:
        raise unsupported(node, f"matmul on {out.dtype.name}")
    view = matmul_view(node)
    width = lanes(ctx.target, out.dtype)
    _, vectors = tile(node, ctx.target)
    packed = node.attrs.get("packed_b")
    if packed is not None and (packed != width * vectors or len(view.batch) > 0):
        raise unsupported(node, f"b packed in blocks of {packed} for a {width * vectors}-column tile")
    if view.b[-1] != 1 and view.columns > 1 or view.c[-1] != 1 and view.columns > 1:
        raise unsupported(node, "a matmul b or result with non-unit column stride")
    builder = ir.IRBuilder(fn.append_basic_block("entry"))
    sizes, count = None, math.prod(view.batch)
    if len(fn.args) > len(node.inputs) + len(node.outputs) + 2 and runtime_sizes(node):  # module.py passes them
        rows, depth, columns = fn.args[-3:]
        sizes = replace(view, rows=rows, depth=depth, columns=columns, a=(depth, 1), c=(columns, 1))
    elif len(fn.args) > len(node.inputs) + len(node.outputs) + 2:
        count = fn.args[-1]  # runtime_batch
    copy = None
    if aligned_copy(node, ctx.target):  # in the entry block: one stack slot, not one per loop trip
        copy = stack_array(builder, element_type(out.dtype), view.depth * width * vectors, "aligned_b",
                           width * out.dtype.itemsize)  # one vector
    part, parts = parts_of(builder, node, fn)
    units = _unit_counts(node, ctx.target) if sizes is None else _runtime_units(builder, node, ctx.target, sizes)
    if not isinstance(count, int):
        units = (builder.mul(count, i64(units[0] // math.prod(view.batch))), units[1])
    rows_first = _rows_first(node) if sizes is None else builder.icmp_unsigned("<=", sizes.columns, sizes.rows)
    with for_rectangles(builder, part, parts, *units, rows_first) as (row_lo, row_hi, column_lo, column_hi):
        _emit_rectangle(ctx, node, fn, builder, row_lo, row_hi, column_lo, column_hi, copy, sizes, count)
    builder.ret_void()


def _rows_times_columns(node: Node) -> Node:
    """node, or where each epilogue load's row stride is 0 or N (a bias, a residual) and some are N, node
    with those N strides 1, to be given the row times N: a residual's load then walks a run-time N."""
    ends, columns = node.attrs.get("epilogue"), matmul_view(node).columns
    if ends is None or columns in (0, 1) or any(load[2] not in (0, columns) for load in ends.loads) or all(
            load[2] == 0 for load in ends.loads):
        return node
    loads = tuple((vid, arg, 1 if row_stride else 0, col_stride) for vid, arg, row_stride, col_stride in ends.loads)
    return replace(node, attrs={**node.attrs, "epilogue": replace(ends, loads=loads)})


def _runtime_units(builder: ir.IRBuilder, node: Node, target: object, sizes: MatmulView
                   ) -> tuple[ir.Value, ir.Value]:
    """_unit_counts from the size arguments (runtime_sizes: no batch)."""
    tile_rows, vectors = tile(node, target)
    view = matmul_view(node)
    phases = runtime_tile_phases(builder, view.columns, sizes.columns, lanes(target, DType.f32), vectors)
    rows = builder.add(builder.udiv(sizes.rows, i64(tile_rows)), i64(int(view.rows % tile_rows > 0)))
    return rows, _sum(builder, [count for _, count, _ in phases])


def _sum(builder: ir.IRBuilder, counts: list[int | ir.Value]) -> int | ir.Value:
    total: int | ir.Value = 0
    for count in counts:
        total = total + count if isinstance(total, int) and isinstance(count, int) else builder.add(
            i64(total) if isinstance(total, int) else total, i64(count) if isinstance(count, int) else count)
    return total


def _emit_rectangle(ctx: EmitContext, node: Node, fn: ir.Function, builder: ir.IRBuilder, row_lo: ir.Value,
                    row_hi: ir.Value, column_lo: ir.Value, column_hi: ir.Value, copy: ir.Value | None,
                    sizes: MatmulView | None, count: int | ir.Value) -> None:
    """The tiles of (batch x row blocks) row_lo..row_hi-1 and column blocks column_lo..column_hi-1; with
    `copy` (aligned_copy), each full column block's b panel is read from there; with `sizes` (the size
    arguments, runtime_sizes), M, K, N and the strides they give are those values; `count`: the batch's."""
    out = node.outputs[0]
    constants = matmul_view(node)
    view = sizes or constants
    batch, rows, depth, columns = view.batch, view.rows, view.depth, view.columns
    elem = element_type(out.dtype)
    width = lanes(ctx.target, out.dtype)
    tile_rows, vectors = tile(node, ctx.target)
    packed = node.attrs.get("packed_b")
    pa, pb, pc = fn.args[0], fn.args[1], fn.args[len(node.inputs)]
    phases = runtime_tile_phases(builder, constants.columns, columns, width, vectors)
    full_blocks = phases[0][1] if phases and _full_blocks(phases[0][0], phases[0][2], width, vectors) else 0
    tail_rows = constants.rows % tile_rows  # a constant of the key (runtime_shapes)
    full_rows = builder.udiv(rows, i64(tile_rows)) if sizes else rows // tile_rows
    row_counts, column_counts = [full_rows, int(tail_rows > 0)], [count for _, count, _ in phases]
    with _outer(builder, sizes, count, _sum(builder, row_counts), row_lo, row_hi) as (bi, first, end):
        a_base, b_base, c_base = batch_offsets(builder, bi, batch, [view.a, view.b, view.c])
        operands = _Operands(pa, pb, pc, a_base, b_base, c_base, depth, columns, elem, packed is not None,
                             view.a[-2], view.a[-1], view.b[-2], view.c[-2], node.inputs[1].dtype,
                             widens_f16(ctx.target), sizes is not None, constants.rows > tile_rows)
        # one row block reads each b element once: K panels would only cut the stream into pieces
        whole = max(depth, 1) if sizes is None else depth  # runtime_sizes: depth > 0
        step = depth_block(ctx.target, out.dtype, vectors) if constants.rows > tile_rows else whole
        streams = packed is not None and node.inputs[1].nbytes >= STREAMED_B_BYTES  # a choice of the key

        ends = node if sizes is None else _rows_times_columns(node)

        def panel(k0: ir.Value, panel_depth: int | ir.Value, accumulate: bool | ir.Value, last: bool | ir.Value
                  ) -> None:
            def tile(op: _Operands, tile_rows: int, widths: list[int], i0: ir.Value, j0: ir.Value,
                     stream: tuple[ir.Value, ir.Value, ir.Value] | None) -> None:
                _tile(builder, op, tile_rows, widths, i0, j0, k0, panel_depth, accumulate, stream)
                if last is False or "epilogue" not in node.attrs:
                    return
                with _when(builder, last), for_range(builder, tile_rows, "er") as r:  # one copy of the chain
                    at = index(builder, 0, (c_base, 1), _term(builder, i0, operands.c_row),
                               _term(builder, r, operands.c_row), (j0, 1))
                    row = index(builder, 0, _term(builder, bi, rows), (i0, 1), (r, 1))
                    if ends is not node:  # its loads' row strides N are 1: the row times N
                        row = _times(builder, row, columns)
                    epilogue.apply_row(builder, ends, fn, row, at, j0, sum(widths))

            def column_block(phase: int, jb: ir.Value) -> None:
                widths, _, first_column = phases[phase]
                j0 = index(builder, first_column, (jb, sum(widths))) if isinstance(first_column, int) else \
                    index(builder, 0, (first_column, 1), (jb, sum(widths)))
                op = operands
                if copy is not None and widths == [width] * vectors:
                    op = _copied_panel(builder, operands, copy, k0, panel_depth, j0, widths)
                if streams:  # which panel its tiles walk, and whether a tile walked its own
                    unit = builder.add(jb, size_value(_sum(builder, column_counts[:phase])))
                    first_block, turn = _panel_walks(builder, operands, column_counts, full_blocks, width * vectors,
                                                     (column_lo, column_hi), unit, (k0, step), accumulate, last)

                def row_block(row_phase: int, ib: ir.Value) -> None:
                    stream = None
                    if streams:  # (this row block's index, the row blocks) in the part's rectangle
                        unit = builder.add(ib, size_value(_sum(builder, row_counts[:row_phase])))
                        start = smax(builder, first, i64(0))
                        stream = (builder.sub(unit, start),
                                  builder.sub(smin(builder, end, size_value(_sum(builder, row_counts))), start),
                                  first_block, turn)
                    if row_phase == 0:
                        tile(op, tile_rows, widths, index(builder, 0, (ib, tile_rows)), j0, stream)
                    else:
                        tile(op, tail_rows, widths, i64(rows - tail_rows) if sizes is None else
                             builder.sub(rows, i64(tail_rows)), j0, stream)

                for_phases(builder, first, end, row_counts, row_block, "ib")

            for_phases(builder, column_lo, column_hi, column_counts, column_block, "jb")

        if sizes is not None or depth > step and operands.b_dtype is not DType.i8:  # one copy of the tiles
            if sizes is None:
                panels, last_index = -(-depth // step), i64(-(-depth // step) - 1)
                last_depth = i64(depth - (panels - 1) * step)
            else:
                panels = builder.udiv(builder.add(depth, i64(step - 1)), i64(step))
                last_index = builder.sub(panels, i64(1))
                last_depth = builder.sub(depth, builder.mul(last_index, i64(step)))
            with for_range(builder, panels, "kb") as kb:
                first_panel, last_panel = (builder.icmp_signed("==", kb, n) for n in (i64(0), last_index))
                panel_depth = builder.select(last_panel, last_depth, i64(step))
                panel(index(builder, 0, (kb, step)), panel_depth, builder.not_(first_panel), last_panel)
            return
        for k0, panel_depth, accumulate, last, count in k_panels(depth, step, "epilogue" in node.attrs):
            if count is None:
                panel(i64(k0), panel_depth, accumulate, last)
            else:
                with for_range(builder, count, "kb", start=1) as kb:
                    panel(index(builder, 0, (kb, step)), step, True, last)


def _panel_walks(builder: ir.IRBuilder, op: _Operands, counts: list[int | ir.Value], full: int | ir.Value,
                 block: int, part: tuple[ir.Value, ir.Value], unit: ir.Value, panel: tuple[ir.Value, int],
                 accumulate: bool | ir.Value, last: bool | ir.Value) -> tuple[ir.Value, tuple | None]:
    """For column block `unit` of the part's range `part` of blocks of a streamed b (`full` of them full
    ones, of `block` columns) in K panel (k0, step): (whether no tile walked its panel: the part's first
    block in the first K panel, or in a later one where the part has a block that is not full; (whether its
    tiles walk the part's first block's next K panel instead of the next column block: the part's last
    block, all of its blocks full, where that panel starts) or None in the last K panel). The parts go K
    panel by K panel over their blocks: without the turn back, the last block of a panel walked a block of
    the next part's (or past the end) and the first block of the next panel came from memory under its own
    tiles (bert's 128 x 3072 x 768 on 2 CPUs, b flushed: 2.49 -> 2.29 ms)."""
    k0, step = panel
    true = ir.Constant(ir.IntType(1), 1)
    lo = smax(builder, part[0], i64(0))
    hi = builder.sub(smin(builder, part[1], size_value(_sum(builder, counts))), i64(1))
    turns = builder.icmp_signed("<", hi, size_value(full))  # every block of the part a full one
    first = builder.icmp_signed("==", unit, lo)
    if accumulate is not False:  # a later K panel's: the part's last block of the panel before walked it
        first = builder.and_(first, builder.not_(builder.and_(true if accumulate is True else accumulate, turns)))
    if last is True:
        return first, None
    turn = builder.and_(builder.and_(builder.icmp_signed("==", unit, hi), turns),
                        true if last is False else builder.not_(last))
    return first, (turn, index(builder, step * block, (op.b_base, 1), _term(builder, builder.mul(lo, i64(block)),
                                                                             op.depth), (k0, block)))


def _copied_panel(builder: ir.IRBuilder, op: _Operands, copy: ir.Value, k0: ir.Value, depth: int | ir.Value,
                  j0: ir.Value, widths: list[int]) -> _Operands:
    """Copy b[k0:k0+depth, j0:+sum(widths)] to `copy` (rows of sum(widths), vector-aligned) and return the
    operands that read it there: the same elements, so the same results."""
    block = sum(widths)
    with for_range(builder, depth, "copy") as k:
        source = index(builder, 0, (op.b_base, 1), (k0, op.b_k), (k, op.b_k), (j0, 1))
        for offset in range(0, block, widths[0]):
            value = load(builder, op.pb, index(builder, offset, (source, 1)), op.elem, widths[0])
            at = builder.gep(copy, [index(builder, offset, (k, block))], inbounds=True, source_etype=op.elem)
            builder.store(value, builder.bitcast(at, value.type.as_pointer()), align=widths[0] * byte_size(op.elem))
    # _tile reads b at b_base + k0*b_k + j0 + k*b_k: the copy's row k at k*block
    return replace(op, pb=copy, b_base=builder.neg(index(builder, 0, (k0, block), (j0, 1))), b_k=block)


def batch_offsets(builder: ir.IRBuilder, flat: ir.Value, batch: tuple[int, ...],
                  operands: list[tuple[int, ...]]) -> list[ir.Value]:
    """Element offset of batch entry `flat` (batch dims flattened row-major) in each operand, given its
    strides (batch strides first). Dims every operand walks contiguously are merged first, so the
    usual row-major case is one multiply per operand."""
    dims = _batch_dims(batch, operands)
    offsets: list[list[tuple[ir.Value, int]]] = [[] for _ in operands]
    inner = 1
    for size, *strides in reversed(dims):
        position = flat if inner == 1 else builder.udiv(flat, i64(inner))
        if inner * size < math.prod(batch):
            position = builder.urem(position, i64(size))
        for terms, stride in zip(offsets, strides):
            terms.append((position, stride))
        inner *= size
    return [index(builder, 0, *terms) for terms in offsets]


def _batch_dims(batch: tuple[int, ...], operands: list[tuple[int, ...]]) -> list[list[int]]:
    """The batch dims as batch_offsets walks them: [size, stride per operand], merged where every operand
    walks two dims contiguously, size-1 dims left out."""
    dims: list[list[int]] = []
    for axis, size in enumerate(batch):
        strides = [s[axis] for s in operands]
        if size == 1:
            continue
        if dims and all(prev == size * st for prev, st in zip(dims[-1][1:], strides)):
            dims[-1] = [dims[-1][0] * size, *strides]
        else:
            dims.append([size, *strides])
    return dims


def k_panels(depth: int, step: int, separate_last: bool) -> list[tuple[int, int, bool, bool, int | None]]:
    """(first k, depth, accumulate, is last, loop end or None) per K panel: the first panel, a loop
    over the full middle ones, the remainder. With separate_last the final panel is emitted on its
    own (the epilogue runs only there)."""
    full, rest = divmod(depth, step)
    if full == 0 or (full == 1 and rest == 0):
        return [(0, depth, False, True, None)]
    panels: list[tuple[int, int, bool, bool, int | None]] = [(0, step, False, False, None)]
    loop_end = full - 1 if separate_last and rest == 0 else full
    if loop_end > 1:
        panels.append((step, step, True, not separate_last and rest == 0, loop_end))
    if loop_end < full:
        panels.append(((full - 1) * step, step, True, True, None))
    if rest:
        panels.append((full * step, rest, True, True, None))
    return panels


def depth_block(target: object, dtype: DType, vectors: int) -> int:
    """K rows per pass: the b panel of one column block (depth x NV*W elements) within 32 KiB (L1), but at
    least MIN_DEPTH_BLOCK rows. Each pass loads and stores every C tile once more; AVX-512's 64-column block
    would get 128 rows from L1, and 512 (a 128 KiB panel, read from L2) ran 2-9% faster on Zen 4."""
    return max(MIN_DEPTH_BLOCK, 32768 // (vectors * lanes(target, dtype) * dtype.itemsize))


@dataclass
class _Operands:
    """Base pointers and element offsets of one batch entry of a matmul."""

    pa: ir.Value
    pb: ir.Value
    pc: ir.Value
    a_base: ir.Value
    b_base: ir.Value
    c_base: ir.Value
    depth: int | ir.Value  # an argument where runtime_sizes, as are a_row and c_row
    columns: int | ir.Value
    elem: ir.Type
    packed: bool  # b stored in column blocks (passes/prepack.py): (k, j0 + c) at j0*depth + k*block_width + c
    a_row: int | ir.Value  # element strides: a's rows and k, b's k (rows), c's rows (b and c columns: 1)
    a_k: int
    b_k: int | ir.Value
    c_row: int | ir.Value
    b_dtype: DType  # the output's, or bf16/f16/i8 (widened as loaded)
    f16_in_hardware: bool  # the target converts f16 itself (targets.widens_f16)
    branches: bool = False  # a tile loads C only where it accumulates (a branch, not loads and a select)
    blocks_of_a: bool = True  # a has more than one row block: a tile prefetches the next one's rows

    def load_b(self, builder: ir.IRBuilder, at: ir.Value, width: int) -> ir.Value:
        if self.b_dtype is DType.i8:  # int8 weights of an f32 layer: exact widening
            return builder.sitofp(load(builder, self.pb, at, element_type(DType.i8), width),
                                  vector_type(self.elem, width))
        if not self.b_dtype.is_half:
            return load(builder, self.pb, at, self.elem, width)
        bits = load(builder, self.pb, at, element_type(self.b_dtype), width)
        if self.b_dtype is DType.f16 and self.f16_in_hardware:
            return halfconv.f16_to_f32_in_hardware(builder, bits)
        return halfconv.WIDEN[self.b_dtype](builder, bits)


def _tile(builder: ir.IRBuilder, op: _Operands, rows: int, widths: list[int], i0: ir.Value, j0: ir.Value,
          k0: ir.Value, depth: int | ir.Value, accumulate: bool | ir.Value,
          stream: tuple[ir.Value, ir.Value, ir.Value, tuple | None] | None = None) -> None:
    """C[i0:i0+rows, j0:j0+sum(widths)] (+)= A[i0:+rows, k0:k0+depth] @ B[k0:k0+depth, same columns].

    The accumulators live in registers; with accumulate (an i1: chosen at run time) they start from C (a
    later K panel), else from zeros. stream (packed b only): (this row block's index, the row blocks) of the
    part's on this column block and whether it is the part's first, for stream_fetches, and _panel_walks'
    turn (whether to walk the part's first block's next K panel instead of the next block, and where)."""
    offsets = [sum(widths[:c]) for c in range(len(widths))]
    c_rows = [index(builder, r * op.c_row, (op.c_base, 1), (i0, op.c_row), (j0, 1)) if isinstance(op.c_row, int)
              else index(builder, 0, (op.c_base, 1), (_times(builder, builder.add(i0, i64(r)), op.c_row), 1), (j0, 1))
              for r in range(rows)]
    inits = [constant(op.elem, 0, w) for _ in range(rows) for w in widths]
    if accumulate is not False and not op.branches:
        loaded = [load(builder, op.pc, index(builder, off, (c_rows[r], 1)), op.elem, w)
                  for r in range(rows) for w, off in zip(widths, offsets)]
        inits = loaded if accumulate is True else [builder.select(accumulate, c, zero)
                                                   for c, zero in zip(loaded, inits)]
    elif accumulate is not False:  # a later K panel's (run-time sizes: one panel or more)
        inits = _loaded_if(builder, accumulate, lambda: [
            load(builder, op.pc, index(builder, off, (c_rows[r], 1)), op.elem, w)
            for r in range(rows) for w, off in zip(widths, offsets)], inits)
    a_row = index(builder, 0, (op.a_base, 1), _term(builder, i0, op.a_row), (k0, op.a_k))
    # a run-time row stride: a pointer to each row's start made before the k loop, so the loop only indexes
    # it by k (base + index addressing; LLVM's loop strength reduction, seeing the rows r*K apart, rebuilt
    # them from one pointer in 5 more integer ops per k step)
    a_starts = [r * op.a_row if isinstance(op.a_row, int) else opaque(builder, builder.gep(
        op.pa, [builder.add(a_row, _times(builder, r, op.a_row))], inbounds=True, source_etype=op.elem))
        for r in range(rows)]
    next_block = None
    if stream is None and op.a_k == 1 and op.blocks_of_a:  # a's next row block (module doc), from its row at k0
        ahead = _times(builder, rows, op.a_row)
        next_block = index(builder, ahead, (a_row, 1)) if isinstance(ahead, int) else builder.add(a_row, ahead)
    pitch = sum(widths) if op.packed else op.b_k
    if op.packed:
        b_row0 = index(builder, 0, (op.b_base, 1), _term(builder, j0, op.depth), (k0, pitch))
    else:
        b_row0 = index(builder, 0, (op.b_base, 1), _term(builder, k0, op.b_k), (j0, 1))
    if stream is not None and op.packed:
        next_row0 = builder.add(b_row0, size_value(_times(builder, op.depth, pitch)))  # the next column block's
        if stream[3] is not None:  # _panel_walks: the part's first block's next K panel
            turn, turned_row0 = stream[3]
            next_row0 = builder.select(turn, turned_row0, next_row0)
        fetches = stream_fetches(builder, stream[:3], b_row0, next_row0, depth, i64(0), pitch, op.elem)

    def step(k: ir.Value, accumulators: list[ir.Value]) -> list[ir.Value]:
        b_row = index(builder, 0, (b_row0, 1), _term(builder, k, pitch))
        if stream is not None and op.packed:
            prefetch_walk(builder, op.pb, fetches, k, op.elem)
        b_vals = [op.load_b(builder, index(builder, off, (b_row, 1)), w) for w, off in zip(widths, offsets)]
        a_at = index(builder, 0, (a_row, 1), (k, op.a_k))
        if next_block is not None:  # rows elements a k step: the whole block (contiguous a) by the tile's end
            prefetch(builder, op.pa, index(builder, 0, (next_block, 1), (k, rows)), op.elem, A_LOCALITY)
        updated = []
        for r in range(rows):
            a_scalar = load(builder, op.pa, index(builder, a_starts[r], (a_at, 1)), op.elem) if isinstance(
                a_starts[r], int) else load(builder, a_starts[r], index(builder, 0, (k, op.a_k)), op.elem)
            broadcast = {w: splat(builder, a_scalar, w) for w in set(widths)}
            for c, w in enumerate(widths):
                updated.append(multiply_add(builder, broadcast[w], b_vals[c], accumulators[r * len(widths) + c]))
        return updated

    # int8 weights at one row: K_CHAINS independent sums of every K_CHAINS-th k, so the FMAs of one k step
    # do not wait for the last one's (the widening leaves time for them); added up after the loop
    chains = K_CHAINS if op.b_dtype is DType.i8 and rows == 1 and depth >= 2 * K_CHAINS else 1
    count = len(inits)
    main = depth if chains == 1 else depth - depth % chains  # a run-time depth has chains 1
    zeros = [constant(op.elem, 0, w) for w in widths] * (chains - 1)
    with fold_range(builder, main if chains == 1 else main // chains, [*inits, *zeros], "k") as (k, carry):
        carry.values = [value for s in range(chains) for value in
                        step(index(builder, s, (k, chains)), carry.values[s * count:(s + 1) * count])]
    values = carry.values[:count]
    for s in range(1, chains):
        values = [builder.fadd(x, y) for x, y in zip(values, carry.values[s * count:(s + 1) * count])]
    if chains > 1 and main < depth:
        with fold_range(builder, depth, values, "kt", start=main) as (k, carry):
            carry.values = step(k, carry.values)
        values = carry.values
    for r in range(rows):
        for c, off in enumerate(offsets):
            store(builder, values[r * len(widths) + c], op.pc, index(builder, off, (c_rows[r], 1)), op.elem)


def stream_fetches(builder: ir.IRBuilder, ordinal: tuple[ir.Value, ir.Value, ir.Value], row0: ir.Value,
                   next_row0: ir.Value, steps: int | ir.Value, done: ir.Value, pitch: int, elem: ir.Type
                   ) -> tuple[ir.Value, ir.Value, list[ir.Value]]:
    """(where a k loop's prefetches of a streamed panel start, their step per k, each one's offset) for tile
    `index` of the `tiles` that read one panel, `steps` k steps each, `done` of them before this loop, given
    as ordinal (index, tiles, first: the part's first panel, which no tile fetched). There, or where it is
    the only tile (a packed b's panels lie end to end, so its rows ahead run on into the next panel, as a
    batch-1 classifier's did before the walk), tile 0 fetches every cache line of the row PREFETCH_K rows
    past row0; every other tile walks its share of the next panel (from next_row0), pitch / tiles elements
    a step (tiles - 1 in the first panel), rounded up, so memory delivers it under their FMAs. A walk step
    shorter than a row needs fewer lines; the others fetch its first again (prefetch_walk skips them all
    where the step is under one line)."""
    index, tiles, first = ordinal
    alone = builder.icmp_signed("==", tiles, i64(1))
    shift = builder.zext(first, index.type)
    ahead = builder.and_(builder.or_(first, alone), builder.icmp_signed("==", index, i64(0)))
    walkers = smax(builder, builder.sub(tiles, shift), i64(1))
    walk = builder.udiv(builder.add(i64(pitch - 1), walkers), walkers)
    before = builder.add(builder.mul(builder.sub(index, shift), size_value(steps)), done)
    start = builder.select(ahead, builder.add(row0, i64(PREFETCH_K * pitch)),
                           builder.add(next_row0, builder.mul(before, walk)))
    step = builder.select(ahead, i64(pitch), walk)
    lines = range(0, pitch, max(1, CACHE_LINE // byte_size(elem)))  # each line of a row (AVX-512: 4)
    return start, step, [builder.select(builder.icmp_unsigned(">", step, i64(line)), i64(line), i64(0))
                         for line in lines]


def prefetch_walk(builder: ir.IRBuilder, base: ir.Value, fetches: tuple[ir.Value, ir.Value, list[ir.Value]],
                  k: ir.Value, elem: ir.Type) -> None:
    """Step k's prefetches of a walk that stream_fetches laid out: (start, step per k, line offsets). A step
    under one line (many tiles share a panel: bert b8's 128-row tiles) prefetches its line alone, behind a
    branch the step decides for the whole loop: four prefetches of one line a step cost bert b8 1.6%."""
    start, step, lines = fetches
    at = index(builder, 0, (start, 1), (builder.mul(k, step), 1))
    prefetch(builder, base, at, elem)
    if len(lines) > 1:  # a step under one line needs its first only
        line_elements = i64(max(1, CACHE_LINE // byte_size(elem)))
        with builder.if_then(builder.icmp_unsigned(">", step, line_elements), likely=True):
            for line in lines[1:]:
                prefetch(builder, base, index(builder, 0, (at, 1), (line, 1)), elem)


def _loaded_if(builder: ir.IRBuilder, condition: ir.Value, loads: Callable[[], list[ir.Value]],
               otherwise: list[ir.Value]) -> list[ir.Value]:
    """loads() where the i1 condition holds, else `otherwise`: a branch around the loads."""
    before = builder.block
    with builder.if_then(condition):
        loaded, inside = loads(), builder.block
    merged = []
    for value, default in zip(loaded, otherwise):
        phi = builder.phi(value.type)
        phi.add_incoming(value, inside)
        phi.add_incoming(default, before)
        merged.append(phi)
    return merged


@contextmanager
def _outer(builder: ir.IRBuilder, sizes: MatmulView | None, count: int | ir.Value, units: int | ir.Value,
           lo: ir.Value, hi: ir.Value) -> Iterator[tuple[ir.Value, ir.Value, ir.Value]]:
    """for_outer over the batch; with size arguments (no batch) the one entry, without its divisions by a
    run-time unit count (each a branch around a slow divide: LLVM time)."""
    if sizes is None:
        with for_outer(builder, count, units, lo, hi, "batch") as outer:
            yield outer
        return
    yield i64(0), lo, hi


@contextmanager
def _when(builder: ir.IRBuilder, condition: bool | ir.Value) -> Iterator[None]:
    """The body always (condition True) or where the i1 condition holds."""
    if condition is True:
        yield
        return
    with builder.if_then(condition):
        yield


def prefetch(builder: ir.IRBuilder, base: ir.Value, at: ir.Value, elem: ir.Type, locality: int = 3) -> None:
    """Hint that base[at] will be read soon (llvm.prefetch: read, data; locality 3 keeps it in all levels:
    prefetcht0, 2 from L2 out: prefetcht1); never faults, so `at` may run past the buffer's end."""
    pointer = builder.gep(base, [at], source_etype=elem)  # not inbounds: may point past the end
    i32 = ir.IntType(32)
    declared = builder.module.globals.get("llvm.prefetch.p0") or ir.Function(
        builder.module, ir.FunctionType(ir.VoidType(), [pointer.type, i32, i32, i32]), "llvm.prefetch.p0")
    builder.call(declared, [pointer, ir.Constant(i32, 0), ir.Constant(i32, locality), ir.Constant(i32, 1)])


sizes_as_arguments(SizeRules(size_arguments, runtime_shapes), "matmul")
