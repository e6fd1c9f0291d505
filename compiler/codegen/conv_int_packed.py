"""conv_integer with constant weights on AVX2 without VNNI: output channels along the vector lanes.

The dot-product form of codegen/conv_int.py sums along input channels inside a vector, so every output costs
a horizontal sum and a zero-point correction. Here a vpmaddwd multiplies i16 pairs of input channels by the
same pairs of four output channels' weights, and its eight i32 lanes are the partial sums of those four
channels (lanes 0-3 over one half of a 16-channel step, lanes 4-7 over the other), so the accumulators are
the outputs: one add of the two halves per pixel and four channels at the end.

- Activations: 16 input channels of a pixel are loaded, widened to i16 and their zero point subtracted
  once; vpshufd j broadcasts the channel pair 2j (and 8 + 2j in the upper 128 bits) to every lane of its
  half, and feeds VECTORS weight vectors.
- Weights: ir/int8_layouts.pack_conv_weights() lays them out at compile time (passes/prepack.py) as, per
  group of four output channels, tap and 16-channel step, four 16-byte vectors (one per j): the bytes of
  channel pair 2j of the four channels, then pair 8 + 2j.
  A vector is widened to i16 as it is loaded and feeds PIXELS pixels.
  Packing also moves a nonzero weight zero point into the weights where w - zw fits i8, so the kernel
  subtracts none; u8 weights where it does not stay u8 and the kernel subtracts their zero points from
  each widened vector. (x - zx) and (w - zw) are in [-255, 255], each pair sum fits i32, and the sums
  wrap as the reference's, bit for bit.
- A tap in the padding is skipped (a branch per kernel row for pixels inside along x; per tap at the left
  and right borders, one pixel at a time), which is what a padded cell holding x's zero point adds: nothing.

The packed form applies to one dense step per 16 input channels and whole groups of four output channels
per conv group (ir/int8_layouts.conv_packable, on vpmaddwd targets); anything else keeps conv_int.py's
dot-product kernel.
"""

from __future__ import annotations

from llvmlite import ir

from cerebro.compiler.codegen.int_dot import dot_form, widen
from cerebro.compiler.codegen.llvm_types import index, load, splat, store
from cerebro.compiler.codegen.loops import fold_range, for_range, i64
from cerebro.compiler.ir import Node
from cerebro.compiler.ir.dtypes import DType
from cerebro.compiler.ir.int8_layouts import CHANNELS, PAIRS, STEP

I8, I16, I32 = ir.IntType(8), ir.IntType(16), ir.IntType(32)
PIXELS = 2  # output pixels sharing each weight vector
VECTORS = 4  # weight vectors (of CHANNELS output channels) sharing each activation


def _pair_mask(j: int) -> ir.Constant:
    """vpshufd j of 16 i16 lanes: channel pair j of each 128-bit half in every dword of that half."""
    return ir.Constant(ir.VectorType(I32, STEP), [h * 8 + 2 * j + e for h in (0, 1) for _ in range(PAIRS)
                                                  for e in (0, 1)])


def _pick(builder: ir.IRBuilder, at: ir.Value, values: list[ir.Value]) -> ir.Value:
    """values[at] (at an i64 below len(values)) as a chain of selects."""
    chosen = values[-1]
    for k in range(len(values) - 2, -1, -1):
        chosen = builder.select(builder.icmp_unsigned("==", at, i64(k)), values[k], chosen)
    return chosen


def _when(builder: ir.IRBuilder, condition: ir.Value, values: list[ir.Value], body) -> list[ir.Value]:
    """body(values) where condition holds, else values unchanged (phis at the join)."""
    before = builder.block
    with builder.if_then(condition):
        new = body(values)
        inner = builder.block
    phis = []
    for old, value in zip(values, new):
        phi = builder.phi(old.type)
        phi.add_incoming(value, inner)
        phi.add_incoming(old, before)
        phis.append(phi)
    return phis


class PackedConv:
    """The emitter's state for one node: its shapes, the arguments and the target's pmaddwd form."""

    def __init__(self, builder: ir.IRBuilder, node: Node, target: object, args: list[ir.Value]) -> None:
        if node.attrs.get("packed_b") != CHANNELS:
            raise ValueError(f"{node.where()}: conv_integer weights packed for {node.attrs.get('packed_b')} "
                             f"channels, this kernel reads {CHANNELS}")
        self.node, self.builder, self.form = node, builder, dot_form(target, STEP)
        self.x, self.w, self.w_zero, self.p_out = args[0], args[1], args[3], args[4]
        self.w_dtype = node.inputs[1].dtype
        x = node.inputs[0]
        self.x_dtype = x.dtype
        self.zero_x = splat(builder, widen(builder, load(builder, args[2], i64(0), I8), x.dtype, I16), STEP)
        _, self.height, self.width, self.cin = x.shape
        cout, kh, kw, self.cin_g = node.inputs[1].shape
        self.cout, self.kh, self.kw = cout, kh, kw
        self.out_w = node.outputs[0].shape[2]
        self.sx = node.attrs["strides"][1]
        self.dx_step = (node.attrs.get("rhs_dilation") or (1, 1))[1]
        self.px = node.attrs["padding"][1][0]
        self.steps = self.cin_g // STEP

    def block(self, row: ir.Value, image: ir.Value, rows: list[tuple[ir.Value, ir.Value]], ox0: ir.Value,
              count: int, group: ir.Value, q0: ir.Value, vectors: int, masked: bool) -> None:
        """Outputs of pixels ox0 .. ox0 + count - 1 of one output row, channels 4*q0 .. 4*(q0 + vectors) - 1
        (all of conv group `group`). rows: each kernel row's input row (clamped) and whether it is inside.
        masked: the taps are a loop (one copy of its body) checking each along x too (count is 1 there)."""
        b = self.builder
        zero = ir.Constant(ir.VectorType(I32, self.form.sums), None)
        sums = [zero] * (count * vectors)
        if masked:
            with fold_range(b, self.kh * self.kw, sums, "tap") as (tap, carry):
                dy, dx = b.udiv(tap, i64(self.kw)), b.urem(tap, i64(self.kw))
                iy = rows[0][0] if len(rows) == 1 else _pick(b, dy, [iy for iy, _ in rows])
                inside_y = rows[0][1] if len(rows) == 1 else _pick(b, dy, [inside for _, inside in rows])
                ix = index(b, -self.px, (ox0, self.sx), (dx, self.dx_step))
                inside = b.and_(inside_y, b.and_(b.icmp_signed(">=", ix, i64(0)),
                                                 b.icmp_signed("<", ix, i64(self.width))))
                carry.values = _when(b, inside, carry.values, lambda s: self._tap(
                    s, image, iy, ox0, count, tap, dx, group, q0, vectors))
            sums = carry.values
        for dy, (iy, inside_y) in enumerate(rows if not masked else []):
            def kernel_row(s, dy=dy, iy=iy):
                for dx in range(self.kw):
                    s = self._tap(s, image, iy, ox0, count, i64(dy * self.kw + dx), i64(dx), group, q0, vectors)
                return s

            sums = _when(b, inside_y, sums, kernel_row)
        for at, total in enumerate(sums):
            p, v = divmod(at, vectors)
            self._store(self._halves(total), row, ox0, p, q0, v)

    def _halves(self, total: ir.Value) -> ir.Value:
        """The four channels' sums: lanes 0-3 plus lanes 4-7."""
        b = self.builder
        return b.add(*(b.shuffle_vector(total, total, ir.Constant(ir.VectorType(I32, CHANNELS),
                                                                   list(range(h, h + CHANNELS))))
                       for h in (0, CHANNELS)))

    def _store(self, value: ir.Value, row: ir.Value, ox0: ir.Value, pixel: int, q0: ir.Value, vector: int) -> None:
        b = self.builder
        channel = index(b, vector * CHANNELS, (q0, CHANNELS))
        store(b, value, self.p_out, index(b, pixel * self.cout, (row, self.out_w * self.cout), (ox0, self.cout),
                                          (channel, 1)), I32)

    def _pixel_start(self, image: ir.Value, iy: ir.Value, ox0: ir.Value, column: int, dx: ir.Value,
                     group: ir.Value) -> ir.Value:
        """x's index of input column ox0 * sx + dx * dilation + column of row iy, at the group's first channel."""
        return index(self.builder, column * self.cin, (image, self.height * self.width * self.cin),
                     (iy, self.width * self.cin), (ox0, self.sx * self.cin), (dx, self.dx_step * self.cin),
                     (group, self.cin_g))

    def _weight_start(self, q0: ir.Value, vector: int, tap: ir.Value) -> ir.Value:
        vector_size = self.kh * self.kw * self.steps * PAIRS * STEP
        return index(self.builder, vector * vector_size, (q0, vector_size), (tap, self.steps * PAIRS * STEP))

    def _activation(self, start: ir.Value, s: ir.Value) -> ir.Value:
        """16 input channels (step s) from start, widened to i16, x's zero point subtracted."""
        b = self.builder
        raw = load(b, self.x, index(b, 0, (start, 1), (s, STEP)), I8, STEP)
        return b.sub(widen(b, raw, self.x_dtype, I16), self.zero_x)

    def _weights(self, start: ir.Value, s: ir.Value, j: int, zero: ir.Value | None) -> ir.Value:
        """A weight vector as i16, its zero points (zero_vector()) subtracted for u8 weights."""
        b = self.builder
        raw = widen(b, load(b, self.w, index(b, j * STEP, (start, 1), (s, PAIRS * STEP)), I8, STEP), self.w_dtype,
                    I16)
        return raw if zero is None else b.sub(raw, zero)

    def zero_vector(self, q: ir.Value) -> ir.Value | None:
        """u8 weights: the zero points of weight vector q's four channels as its lanes pair them (i16), else
        None (packing left i8 weights with zero points 0)."""
        if self.w_dtype is not DType.u8:
            return None
        b = self.builder
        zeros = widen(b, load(b, self.w_zero, index(b, 0, (q, CHANNELS)), I8, CHANNELS), DType.u8, I16)
        return b.shuffle_vector(zeros, zeros, ir.Constant(ir.VectorType(I32, STEP), [c for _ in (0, 1)
                                                                                       for c in range(CHANNELS)
                                                                                       for _ in (0, 1)]))

    def _tap(self, sums: list[ir.Value], image: ir.Value, iy: ir.Value, ox0: ir.Value, count: int, tap: ir.Value,
             dx: ir.Value, group: ir.Value, q0: ir.Value, vectors: int) -> list[ir.Value]:
        """sums plus kernel tap `tap` (dy * KW + dx) over every input channel of the group."""
        b = self.builder
        pixel_starts = [self._pixel_start(image, iy, ox0, p * self.sx - self.px, dx, group) for p in range(count)]
        weight_starts = [self._weight_start(q0, v, tap) for v in range(vectors)]
        zeros = [self.zero_vector(b.add(q0, i64(v))) for v in range(vectors)]
        with fold_range(b, self.steps, sums, "ci") as (s, carry):
            pixels = [self._activation(start, s) for start in pixel_starts]
            new = list(carry.values)
            for j in range(PAIRS):
                shuffled = [b.shuffle_vector(a, a, _pair_mask(j)) for a in pixels]
                for v, start in enumerate(weight_starts):
                    weights = self._weights(start, s, j, zeros[v])
                    for p, a in enumerate(shuffled):
                        new[p * vectors + v] = self.form.step(b, new[p * vectors + v], a, weights)
            carry.values = new
        return carry.values


def emit_rows(conv: PackedConv, lo: ir.Value, hi: ir.Value, clamped, interior: tuple[int, int]) -> None:
    """Output rows [lo, hi) (image x output row): per conv group and block of VECTORS weight vectors, the
    left border pixels one at a time, the interior in blocks of PIXELS (and a shorter tail), the right border.
    clamped(builder, at, size) -> (at clamped, whether inside); interior: [first, end) along x."""
    b, node = conv.builder, conv.node
    out_h = node.outputs[0].shape[1]
    sy = node.attrs["strides"][0]
    dy_step = (node.attrs.get("rhs_dilation") or (1, 1))[0]
    py = node.attrs["padding"][0][0]
    groups = node.attrs.get("groups", 1)
    first, end = interior
    blocks, tail = divmod(end - first, PIXELS)
    per_group = conv.cout // groups // CHANNELS
    full, rest = divmod(per_group, VECTORS)
    with for_range(b, hi, "row", start=lo) as row:
        image, oy = b.udiv(row, i64(out_h)), b.urem(row, i64(out_h))
        rows = [clamped(b, index(b, dy * dy_step - py, (oy, sy)), conv.height) for dy in range(conv.kh)]
        with for_range(b, groups, "g") as group:
            for count_blocks, vectors, offset in ((full, VECTORS, 0), (int(rest > 0), rest, full * VECTORS)):
                if not (count_blocks and vectors):
                    continue
                with for_range(b, count_blocks, "cb") as cb:
                    q0 = index(b, offset, (group, per_group), (cb, VECTORS))

                    def pixels(ox: ir.Value, count: int, masked: bool, vectors: int = vectors, q0: ir.Value = q0,
                               row: ir.Value = row, image: ir.Value = image, rows: list = rows,
                               group: ir.Value = group) -> None:
                        conv.block(row, image, rows, ox, count, group, q0, vectors, masked)

                    with for_range(b, first, "left") as ox:
                        pixels(ox, 1, True)
                    with for_range(b, blocks, "band") as band:
                        pixels(index(b, first, (band, PIXELS)), PIXELS, False)
                    if tail:
                        pixels(i64(first + blocks * PIXELS), tail, False)
                    with for_range(b, conv.out_w, "right", start=end) as ox:
                        pixels(ox, 1, True)

