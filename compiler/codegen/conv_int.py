"""conv_integer: a 2-D u8/i8 conv with zero points into i32 (ONNX ConvInteger), on the dot-product core of
codegen/int_dot.py (the target's vpdpbusd, sdot or vpmaddwd), with no im2col buffer.

x is channels last and w output-channels first ([Cout, KH, KW, Cin/g]), so for an output pixel and a tap
(dy, dx) both operands are contiguous along the group's input channels: each output pixel runs, per block
of COLUMNS output channels of a group, one accumulate() per tap into the same vector sums, and the
zero-point correction and the horizontal sums happen once per pixel (finish()). A tap that falls in the
padding reads a clamped, in-bounds pixel and keeps the sums unchanged (a select), which is what a padded
cell holding x_zero adds: nothing. The parts share the output rows (image x output row).

Constant weights packed by passes/prepack.py (attrs["packed_b"]) run codegen/conv_int_packed.py's kernel
instead, with output channels along the vector lanes (AVX2 without VNNI).
"""

from __future__ import annotations

from dataclasses import dataclass

from llvmlite import ir

from cerebro.compiler.codegen.conv_int_packed import PackedConv, emit_rows
from cerebro.compiler.codegen.int_dot import Side, Sums, accumulate, band_rows, dot_form, finish
from cerebro.compiler.codegen.llvm_types import index, load, store
from cerebro.compiler.codegen.loops import for_range, i64
from cerebro.compiler.codegen.partition import parts_of, share
from cerebro.compiler.codegen.registry import EmitContext, emitter
from cerebro.compiler.ir import Node

I8, I32 = ir.IntType(8), ir.IntType(32)
COLUMNS = 4  # output channels per block: each loaded pixel feeds this many products


def conv_integer_units(node: Node, target: object, parts: int) -> int:
    return node.outputs[0].shape[0] * node.outputs[0].shape[1]


def _clamped(builder: ir.IRBuilder, at: ir.Value, size: int) -> tuple[ir.Value, ir.Value]:
    """(at clamped into [0, size), whether at was inside)."""
    inside = builder.and_(builder.icmp_signed(">=", at, i64(0)), builder.icmp_signed("<", at, i64(size)))
    return builder.select(inside, at, i64(0)), inside


def _interior(size: int, out: int, kernel: int, stride: int, dilation: int, pad: int) -> tuple[int, int]:
    """[first, end) of the output positions whose every tap lies inside the input along one axis."""
    first = min(out, -(-pad // stride))
    end = max(first, min(out, (size - 1 - (kernel - 1) * dilation + pad) // stride + 1))
    return first, end


@dataclass(frozen=True)
class _Conv:
    node: Node
    target: object
    args: list[ir.Value]
    band: int

    def pixels(self, builder: ir.IRBuilder, row: ir.Value, image: ir.Value, rows: list[tuple[ir.Value, ir.Value]],
               ox0: ir.Value, count: int, masked: bool) -> None:
        """Output pixels ox0 .. ox0 + count - 1 of one output row (rows: each dy's clamped input row and
        whether it is inside), every output channel. masked: check each tap along x (one pixel only);
        otherwise the pixels are interior along x and only the input row can fall in the padding, and
        with one group and no dilation along x a kernel row's taps are one contiguous dot of KW*Cin bytes
        in x and in w (a 3-channel first layer: 9 bytes, a vector step, not 3 scalar tails of 3)."""
        x, w = self.node.inputs[:2]
        _, height, width, cin = x.shape
        cout, kh, kw, cin_g = w.shape
        out_w = self.node.outputs[0].shape[2]
        sx, dx_step, px = self.node.attrs["strides"][1], (self.node.attrs.get("rhs_dilation") or (1, 1))[1], \
            self.node.attrs["padding"][1][0]
        groups = self.node.attrs.get("groups", 1)
        merged = not masked and dx_step == 1 and groups == 1
        depth, dxs = (kw * cin_g, [0]) if merged else (cin_g, list(range(kw)))
        form = dot_form(self.target, depth)
        p_x, p_w, p_xz, p_wz, p_out = self.args
        zero_x = load(builder, p_xz, i64(0), I8)
        taps = []
        for dy, (iy, inside_y) in enumerate(rows):
            for dx in dxs:
                starts, valid = [], inside_y
                for r in range(count):
                    ix = index(builder, dx * dx_step - px + r * sx, (ox0, sx))
                    if masked:
                        ix, inside_x = _clamped(builder, ix, width)
                        valid = builder.and_(valid, inside_x)
                    starts.append(index(builder, 0, (image, height * width * cin), (iy, width * cin), (ix, cin)))
                taps.append((starts, (dy * kw + dx) * cin_g, valid))
        cout_g = cout // groups
        full, rest = divmod(cout_g, COLUMNS)
        with for_range(builder, groups, "g") as g:
            for blocks, columns, first in ((full, COLUMNS, 0), (int(rest > 0), rest, full * COLUMNS)):
                if not (blocks and columns):
                    continue
                with for_range(builder, blocks, "cb") as cb:
                    c0 = index(builder, first, (g, cout_g), (cb, COLUMNS))
                    b = Side(p_w, w.dtype, [index(builder, t * kh * kw * cin_g, (c0, kh * kw * cin_g))
                                            for t in range(columns)],
                             [load(builder, p_wz, builder.add(c0, i64(t)), I8) for t in range(columns)])
                    sums = Sums.zero(form, count, columns, True)
                    for starts, offset, valid in taps:
                        a = Side(p_x, x.dtype, [index(builder, 0, (start, 1), (g, cin_g)) for start in starts],
                                 [zero_x] * count)
                        tap_b = Side(b.pointer, b.dtype, [builder.add(start, i64(offset)) for start in b.starts],
                                     b.zeros)
                        sums = accumulate(builder, form, a, tap_b, depth, sums, valid)
                    out_pixel = index(builder, 0, (row, out_w * cout), (ox0, cout))
                    for at, total in enumerate(finish(builder, form, sums, a, b)):
                        r, t = divmod(at, columns)
                        store(builder, total, p_out, index(builder, r * cout + t, (out_pixel, 1), (c0, 1)), I32)


@emitter("conv_integer", units=conv_integer_units)
def emit_conv_integer(ctx: EmitContext, node: Node, fn: ir.Function) -> None:
    x, w = node.inputs[:2]
    _, height, width, _ = x.shape
    _, kh, kw, _ = w.shape
    _, out_h, out_w, _ = node.outputs[0].shape
    (sy, sx), ((py, _), (px, _)) = node.attrs["strides"], node.attrs["padding"]
    dy_step, dx_step = node.attrs.get("rhs_dilation") or (1, 1)
    builder = ir.IRBuilder(fn.append_basic_block("entry"))
    part, parts = parts_of(builder, node, fn)
    lo, hi = share(builder, conv_integer_units(node, ctx.target, 1), part, parts)
    first, end = _interior(width, out_w, kw, sx, dx_step, px)
    if "packed_b" in node.attrs:
        emit_rows(PackedConv(builder, node, ctx.target, list(fn.args[:5])), lo, hi, _clamped, (first, end))
        builder.ret_void()
        return
    conv = _Conv(node, ctx.target, list(fn.args[:5]), band_rows(ctx.target))
    bands = (end - first) // conv.band
    with for_range(builder, hi, "row", start=lo) as row:
        image, oy = builder.udiv(row, i64(out_h)), builder.urem(row, i64(out_h))
        rows = [_clamped(builder, index(builder, dy * dy_step - py, (oy, sy)), height) for dy in range(kh)]
        with for_range(builder, first, "left") as ox:
            conv.pixels(builder, row, image, rows, ox, 1, True)
        with for_range(builder, bands, "band") as band:
            conv.pixels(builder, row, image, rows, index(builder, first, (band, conv.band)), conv.band, False)
        with for_range(builder, out_w, "right", start=first + bands * conv.band) as ox:
            conv.pixels(builder, row, image, rows, ox, 1, True)
    builder.ret_void()

