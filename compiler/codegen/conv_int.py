"""conv_integer: a 2-D u8/i8 conv with zero points into i32 (ONNX ConvInteger), on the dot-product core of
codegen/int_dot.py (the target's vpdpbusd, sdot or vpmaddwd), with no im2col buffer.

x is channels last and w output-channels first ([Cout, KH, KW, Cin/g]), so for an output pixel and a tap
(dy, dx) both operands are contiguous along the group's input channels: each output pixel runs, per block
of COLUMNS output channels of a group, one accumulate() per tap into the same vector sums, and the
zero-point correction and the horizontal sums happen once per pixel (finish()). A tap that falls in the
padding reads a clamped, in-bounds pixel and keeps the sums unchanged (a select), which is what a padded
cell holding x_zero adds: nothing. The parts share the output rows (image x output row).
"""

from __future__ import annotations

from llvmlite import ir

from cerebro.compiler.codegen.int_dot import Side, Sums, accumulate, dot_form, finish
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


@emitter("conv_integer", units=conv_integer_units)
def emit_conv_integer(ctx: EmitContext, node: Node, fn: ir.Function) -> None:
    x, w, x_zero, w_zero = node.inputs
    _, height, width, cin = x.shape
    cout, kh, kw, cin_g = w.shape
    _, out_h, out_w, _ = node.outputs[0].shape
    groups = node.attrs.get("groups", 1)
    cout_g = cout // groups
    (sy, sx), ((py, _), (px, _)) = node.attrs["strides"], node.attrs["padding"]
    dy_step, dx_step = node.attrs.get("rhs_dilation") or (1, 1)
    form = dot_form(ctx.target, w.shape[-1])
    p_x, p_w, p_xz, p_wz, p_out = fn.args[:5]
    builder = ir.IRBuilder(fn.append_basic_block("entry"))
    part, parts = parts_of(builder, node, fn)
    lo, hi = share(builder, conv_integer_units(node, ctx.target, 1), part, parts)
    zero_x = load(builder, p_xz, i64(0), I8)
    full, rest = divmod(cout_g, COLUMNS)
    with for_range(builder, hi, "row", start=lo) as row:
        image, oy = builder.udiv(row, i64(out_h)), builder.urem(row, i64(out_h))
        rows = []
        for dy in range(kh):
            iy = index(builder, dy * dy_step - py, (oy, sy))
            rows.append(_clamped(builder, iy, height))
        with for_range(builder, out_w, "ox") as ox:
            out_pixel = index(builder, 0, (row, out_w * cout), (ox, cout))
            taps = []
            for dy, (iy, inside_y) in enumerate(rows):
                for dx in range(kw):
                    ix, inside_x = _clamped(builder, index(builder, dx * dx_step - px, (ox, sx)), width)
                    pixel = index(builder, 0, (image, height * width * cin), (iy, width * cin), (ix, cin))
                    taps.append((pixel, (dy * kw + dx) * cin_g, builder.and_(inside_y, inside_x)))
            with for_range(builder, groups, "g") as g:
                for blocks, columns, first in ((full, COLUMNS, 0), (int(rest > 0), rest, full * COLUMNS)):
                    if not (blocks and columns):
                        continue
                    with for_range(builder, blocks, "cb") as cb:
                        c0 = index(builder, first, (g, cout_g), (cb, COLUMNS))
                        wz = [load(builder, p_wz, builder.add(c0, i64(t)), I8) for t in range(columns)]
                        sums = Sums.zero(form, 1, columns, True)
                        for pixel, offset, inside in taps:
                            a = Side(p_x, x.dtype, [index(builder, 0, (pixel, 1), (g, cin_g))], [zero_x])
                            b = Side(p_w, w.dtype, [index(builder, offset + t * kh * kw * cin_g, (c0, kh * kw * cin_g))
                                                    for t in range(columns)], wz)
                            sums = accumulate(builder, form, a, b, cin_g, sums, inside)
                        for t, total in enumerate(finish(builder, form, sums, a, b)):
                            store(builder, total, p_out, index(builder, t, (out_pixel, 1), (c0, 1)), I32)
    builder.ret_void()
