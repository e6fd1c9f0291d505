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
each row's (a[k], a[k+1]) - a_zero, widened to i16 per row block (and K pass), is one broadcast i32, each vector
of W columns 2W weight bytes widened to i16, and their product summed in pairs (vpmaddwd on x86) adds
into the tile's accumulator. No horizontal sums, so on AVX2 a 128x128 @ 128x512 product runs at ~94% of
vpmaddwd's peak (the dot form: ~70%, its per-output reductions).

The kernel also runs in cerebro.ko on a 16 KiB kernel stack, so its stack arrays stay within
llvm_types.STACK_ARRAY_BYTES whatever the shapes: an epilogue's i32 sums wait in C itself when its elements
are 4 bytes (f32 dequantize: rewritten in place), else in a stack band of BAND_BYTES, the columns computed
in spans that fit it; a's widened rows (pairs_b) cover K in passes of what is left (MiniLM's K = 384 in 2,
1536 in 6), each adding into the sums. (The whole-row band and whole-K rows were 14-55 KiB frames.)
"""

from __future__ import annotations

import math

from llvmlite import ir

from cerebro.compiler.codegen.epilogue import apply_row
from cerebro.compiler.codegen.int_dot import DotForm, Side, band_rows, dot_block, dot_form, row_sums, widen
from cerebro.compiler.codegen.llvm_types import (
    STACK_ARRAY_BYTES,
    constant,
    element_type,
    index,
    load,
    splat,
    stack_array,
    store,
    vector_type,
)
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
BAND_BYTES = STACK_ARRAY_BYTES // 2  # a stack band's i32 sums at most; the rest holds a's widened rows (pairs)


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
    chunk = _band_columns(node, band, lanes(ctx.target, DType.i32) * vectors if pairs else COLUMNS)
    scratch = None if chunk is None else stack_array(builder, I32, band * chunk, "band", 32)
    widened, depth = None, 0
    if pairs:
        spare = STACK_ARRAY_BYTES - (0 if chunk is None else band * chunk * 4)
        depth = _pass_depth(a.shape[-1], spare // (2 * tile_rows))
        widened = stack_array(builder, I16, tile_rows * depth, "a16", 32)
    band_in = _Band(node, fn, scratch, chunk or columns)
    part, parts = parts_of(builder, node, fn)
    lo, hi = share(builder, batch * sum(row_counts), part, parts)
    with for_outer(builder, batch, sum(row_counts), lo, hi, "batch") as (bi, first, end):
        bases = [builder.mul(bi, i64(math.prod(v.shape[-2:]))) for v in (a, node.inputs[1], node.outputs[0])]

        def row_block(phase: int, ib: ir.Value) -> None:
            count = tile_rows if phase == 0 else rows % tile_rows
            i0 = index(builder, 0, (ib, tile_rows)) if phase == 0 else i64(rows - count)
            if pairs:
                for spans, width, first_column in _spans(columns, band_in.chunk):
                    with for_range(builder, spans, "span") as span:
                        c0 = index(builder, first_column, (span, width))
                        pair_tiles = _PairTiles(builder, node, fn, bases, i0, count, widened, depth)
                        pair_tiles.emit(band_in, c0, width, tile_phases(width, lanes(ctx.target, DType.i32),
                                                                        vectors))
                        band_in.epilogue(builder, bases[2], i0, count, c0, width)
                return
            if node.attrs.get("transpose_b"):
                _dot_rows(ctx, builder, node, fn, bases, i0, count, band_in)
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




def _band_columns(node: Node, band: int, step: int) -> int | None:
    """Columns per pass of a stack band (i32 sums of band rows waiting for a narrower epilogue output), a
    multiple of step within BAND_BYTES; None: the sums wait in the output itself (no epilogue, or 4-byte
    elements the epilogue rewrites in place: a node's inputs never share its output's storage)."""
    if "epilogue" not in node.attrs or node.outputs[0].dtype.itemsize == 4:
        return None
    columns = node.inputs[1].shape[-2 if node.attrs.get("transpose_b") else -1]
    return min(columns, max(step, BAND_BYTES // (4 * band) // step * step))


def _pass_depth(k: int, most: int) -> int:
    """a's K per widened pass (pairs_b): an even count of at most `most` that divides K if a few more passes
    make it (a constant trip count LLVM unrolls), else as even passes as can be."""
    if k <= most:
        return k
    fewest = -(-k // (most // 2 * 2))
    exact = [k // passes for passes in range(fewest, 2 * fewest + 1) if k % (2 * passes) == 0]
    return exact[0] if exact else -(-k // (2 * fewest)) * 2


def _spans(columns: int, chunk: int) -> list[tuple[int, int, int]]:
    """(count, width, first column) of the column spans a band is computed in: full ones, then the rest."""
    full, rest = divmod(columns, chunk)
    return [span for span in ((full, chunk, 0), (int(rest > 0), rest, full * chunk)) if span[0] and span[1]]


class _Band:
    """Where a band's i32 sums wait for the epilogue: C itself, or a stack array of chunk columns per row."""

    def __init__(self, node: Node, fn: ir.Function, scratch: ir.Value | None, chunk: int) -> None:
        self.node, self.fn, self.scratch, self.chunk = node, fn, scratch, chunk
        self.columns = node.inputs[1].shape[-2 if node.attrs.get("transpose_b") else -1]

    def at(self, builder: ir.IRBuilder, c_base: ir.Value, r0: ir.Value, r: int, c0: ir.Value,
           j: ir.Value) -> tuple[ir.Value, ir.Value]:
        """(buffer, element index) of the sum of row r0 + r, column j of the span at column c0: in C (one batch
        entry at c_base), or in the stack band's row r."""
        if self.scratch is None:
            return self.fn.args[len(self.node.inputs)], index(builder, r * self.columns, (c_base, 1),
                                                              (r0, self.columns), (c0, 1), (j, 1))
        return self.scratch, index(builder, r * self.chunk, (j, 1))

    def load(self, builder: ir.IRBuilder, width: int, *where: ir.Value | int) -> ir.Value:
        """width sums from at(*where) on: one vector unless width is 1."""
        buffer, at = self.at(builder, *where)
        if self.scratch is None:
            return load(builder, buffer, at, I32, width)
        return builder.load(_cast_at(builder, buffer, at, vector_type(I32, width)), align=4)

    def store(self, builder: ir.IRBuilder, value: ir.Value, *where: ir.Value | int) -> None:
        buffer, at = self.at(builder, *where)
        if self.scratch is None:
            store(builder, value, buffer, at, I32)
        else:
            builder.store(value, _cast_at(builder, buffer, at, value.type), align=4)

    def epilogue(self, builder: ir.IRBuilder, c_base: ir.Value, r0: ir.Value, rows: int, c0: ir.Value,
                 width: int) -> None:
        """C's rows [r0, r0 + rows), columns [c0, c0 + width) of one batch entry = the epilogue of the sums."""
        if "epilogue" not in self.node.attrs:
            return
        first_row = builder.add(builder.udiv(c_base, i64(self.columns)), r0)
        for r in range(rows):
            row = builder.add(first_row, i64(r))
            source = None if self.scratch is None else (self.scratch, i64(r * self.chunk))
            apply_row(builder, self.node, self.fn, row, index(builder, 0, (row, self.columns), (c0, 1)), c0,
                      width, source=source)


def _cast_at(builder: ir.IRBuilder, base: ir.Value, at: ir.Value, ty: ir.Type) -> ir.Value:
    """A `ty` pointer to element `at` of a stack_array (its pointer is typed by the alloca)."""
    return builder.bitcast(builder.gep(base, [at], inbounds=True), ty.as_pointer())


def _check_pairs(node: Node) -> None:
    """The pairs form multiplies b's raw codes: its zero points must be constant zeros, K even."""
    b, b_zero = node.inputs[1], node.inputs[3]
    if not (node.attrs.get("transpose_b") and b_zero.is_const and not b_zero.data.any() and b.shape[-1] % 2 == 0):
        raise IRError(f"{node.where()}: pairs_b needs [N, K] weights, K even, with zero points all 0")


class _PairTiles:
    """A row block's tiles of one column span from b laid out as pairs ([K/2, N, 2]: pairs_b): per k pair, each
    vector of w columns is 2w weight bytes widened to i16, each row's (a[k], a[k+1]) one broadcast i32, and
    their pmaddwd product (pair sums in i32) adds into the accumulator; no horizontal sums. a's rows are
    widened to i16 (`widened`) depth values of K at a time: with K longer, each pass adds into the band."""

    def __init__(self, builder: ir.IRBuilder, node: Node, fn: ir.Function, bases: list[ir.Value], i0: ir.Value,
                 count: int, widened: ir.Value, depth: int) -> None:
        self.builder, self.node, self.fn, self.bases, self.i0, self.count = builder, node, fn, bases, i0, count
        self.widened, self.depth = widened, depth

    def emit(self, band: _Band, c0: ir.Value, width: int, phases: list[tuple[list[int], int, int]]) -> None:
        builder, k = self.builder, self.node.inputs[0].shape[-1]
        if self.depth >= k:
            self._widen(i64(0), i64(k))
            self._tiles(band, c0, phases, i64(0), k // 2, accumulate=False)
            return
        for r in range(self.count):  # the passes add into the band: it starts at zero
            with for_range(builder, width, "zero") as j:
                band.store(builder, constant(I32, 0), self.bases[2], self.i0, r, c0, j)
        with for_range(builder, -(-k // self.depth), "pass") as kpass:
            k0 = index(builder, 0, (kpass, self.depth))
            if k % self.depth:  # a shorter last pass
                length = builder.select(builder.icmp_unsigned("<", builder.sub(i64(k), k0), i64(self.depth)),
                                        builder.sub(i64(k), k0), i64(self.depth))
                self._widen(k0, length)
                self._tiles(band, c0, phases, builder.lshr(k0, i64(1)), builder.lshr(length, i64(1)), True)
            else:
                self._widen(k0, i64(self.depth))
                self._tiles(band, c0, phases, builder.lshr(k0, i64(1)), self.depth // 2, True)

    def _widen(self, k0: ir.Value, length: ir.Value) -> None:
        """widened[r, k] = a[i0 + r, k0 + k] - a_zero[i0 + r] in i16 for the tile's rows and k < length: each
        (k, k + 1) pair is then one i32 the tile broadcasts."""
        builder, a, fn = self.builder, self.node.inputs[0], self.fn
        elem = element_type(a.dtype)
        for r in range(self.count):
            zero = builder.trunc(widen(builder, load(builder, fn.args[2], index(builder, r, (self.i0, 1)), elem),
                                       a.dtype), I16)
            row = index(builder, r * a.shape[-1], (self.bases[0], 1), (self.i0, a.shape[-1]), (k0, 1))
            with for_range(builder, length, "kw") as k:
                raw = load(builder, fn.args[0], builder.add(row, k), elem)
                value = builder.sub(builder.trunc(widen(builder, raw, a.dtype), I16), zero)
                store(builder, value, self.widened, index(builder, r * self.depth, (k, 1)), I16)

    def _tiles(self, band: _Band, c0: ir.Value, phases: list[tuple[list[int], int, int]], kp0: ir.Value,
               pairs: int | ir.Value, accumulate: bool) -> None:
        for widths, tiles, first_column in phases:
            with for_range(self.builder, tiles, "jb") as jb:
                local = index(self.builder, first_column, (jb, sum(widths)))
                self._tile(band, c0, widths, local, kp0, pairs, accumulate)

    def _tile(self, band: _Band, c0: ir.Value, widths: list[int], local: ir.Value, kp0: ir.Value,
              pairs: int | ir.Value, accumulate: bool) -> None:
        """Columns local : local + sum(widths) of the span at c0, k pairs [kp0, kp0 + pairs), added to the band's
        sums (accumulate) or stored as them."""
        builder, b, count = self.builder, self.node.inputs[1], self.count
        columns = b.shape[-2]
        j0 = builder.add(c0, local)
        offsets = [sum(widths[:c]) for c in range(len(widths))]
        forms = {w: DotForm("pmaddwd", 2 * w, w, None, None, None) for w in set(widths)}
        places = [(self.bases[2], self.i0, r, c0, builder.add(local, i64(off)))
                  for r in range(count) for off in offsets]
        inits = [band.load(builder, w, *place) if accumulate else constant(I32, 0, w)
                 for place, w in zip(places, widths * count)]
        with fold_range(builder, pairs, inits, "kp") as (kp, carry):
            b_row = index(builder, 0, (self.bases[1], 1), (builder.add(kp0, kp), 2 * columns), (j0, 2))
            b_vals = [widen(builder, load(builder, self.fn.args[1], index(builder, 2 * off, (b_row, 1)), I8, 2 * w),
                            b.dtype, I16) for w, off in zip(widths, offsets)]
            updated = []
            for r in range(count):
                pair = builder.load(_cast_at(builder, self.widened, index(builder, r * self.depth, (kp, 2)), I32),
                                    align=4)
                broadcast = {w: builder.bitcast(splat(builder, pair, w), ir.VectorType(I16, 2 * w))
                             for w in set(widths)}
                for c, w in enumerate(widths):
                    updated.append(forms[w].step(builder, carry.values[r * len(widths) + c], broadcast[w], b_vals[c]))
            carry.values = updated
        for value, place in zip(carry.values, places):
            band.store(builder, value, *place)


def _dot_rows(ctx: EmitContext, builder: ir.IRBuilder, node: Node, fn: ir.Function, bases: list[ir.Value],
              i0: ir.Value, count: int, band: _Band) -> None:
    """Rows [i0, i0 + count) of C (one batch entry) from a [M, K] and b given as [N, K], in bands of
    band_rows() rows: each band's row sums once, then COLUMNS outputs per dot block, span by span of the
    band's columns; with an epilogue each span's finished rows run it from the band into C."""
    form = dot_form(ctx.target, node.inputs[0].shape[-1])
    height = band_rows(ctx.target)
    full, rest = divmod(count, height)
    for bands, rows, first in ((full, height, 0), (int(rest > 0), rest, full * height)):
        if bands and rows:
            with for_range(builder, bands, "band") as band_index:
                r0 = builder.add(i0, index(builder, first, (band_index, height)))
                _dot_band(builder, form, node, fn, bases, r0, rows, band)


def _dot_band(builder: ir.IRBuilder, form: DotForm, node: Node, fn: ir.Function, bases: list[ir.Value],
              r0: ir.Value, rows: int, band: _Band) -> None:
    a, b = node.inputs[:2]
    pa, pb, pa_zero, pb_zero = fn.args[:4]
    depth = a.shape[-1]
    a_base, b_base, c_base = bases
    a_side = Side(pa, a.dtype, [index(builder, r * depth, (a_base, 1), (r0, depth)) for r in range(rows)],
                  [load(builder, pa_zero, index(builder, r, (r0, 1)), I8) for r in range(rows)])
    a_sums = row_sums(builder, form, a_side, depth // form.width)
    for spans, span_width, first_column in _spans(band.columns, band.chunk):
        with for_range(builder, spans, "span") as span:
            c0 = index(builder, first_column, (span, span_width))
            full, rest = divmod(span_width, COLUMNS)
            for tiles, width, first in ((full, COLUMNS, 0), (int(rest > 0), rest, full * COLUMNS)):
                if tiles and width:
                    with for_range(builder, tiles, "jt") as jt:
                        local = index(builder, first, (jt, COLUMNS))
                        j0 = builder.add(c0, local)
                        b_side = Side(pb, b.dtype, [index(builder, t * depth, (b_base, 1), (j0, depth))
                                                    for t in range(width)],
                                      [load(builder, pb_zero, index(builder, t, (j0, 1)), I8) for t in range(width)])
                        totals = dot_block(builder, form, a_side, b_side, depth, a_sums)
                        for at, total in enumerate(totals):
                            r, t = divmod(at, width)
                            band.store(builder, total, c_base, r0, r, c0, builder.add(local, i64(t)))
            band.epilogue(builder, c_base, r0, rows, c0, span_width)
