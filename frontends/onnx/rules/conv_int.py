"""ConvInteger's product (and QLinearConv's accumulator) as the conv_integer op (codegen/conv_int.py), where
it applies: a 1-D or 2-D conv with CONV_INTEGER_MIN_CHANNELS (ir/ops.py) or more input channels per group,
the input's zero point scalar and the weights' scalar or per output channel. The weights are laid out
[Cout, KH, KW, Cin/g] (folded at import when constant). quant.py lowers anything else as an i32 conv of the
zero-point-shifted operands."""

from __future__ import annotations

import numpy as np

from cerebro.compiler.ir import Value
from cerebro.compiler.ir.ops import CONV_INTEGER_MIN_CHANNELS
from cerebro.frontends.onnx import build as b
from cerebro.frontends.onnx.rules import nn
from cerebro.frontends.onnx.table import Ctx


def integer_conv(ctx: Ctx, x: Value, w: Value, x_zero: Value | None, w_zero: Value | None,
                 bias: Value | None = None) -> Value | None:
    """The i32 conv of (x - x_zero) and (w - w_zero) (plus bias) in ONNX's layout, or None where conv_integer
    does not apply."""
    cout = w.shape[0]
    if w.shape[1] < CONV_INTEGER_MIN_CHANNELS or x.rank not in (3, 4) or (x_zero is not None and x_zero.size != 1) or (
            w_zero is not None and w_zero.size not in (1, cout)):
        return None
    flat = x.rank == 3  # 1-D: as 2-D with a height of 1
    spatial = x.rank - 2
    strides = ctx.attr("strides") or [1] * spatial
    dilations = ctx.attr("dilations") or [1] * spatial
    padding = nn.conv_padding(ctx, x.shape[2:], w.shape[2:], strides, dilations)
    if flat:
        x = b.reshape(ctx, x, x.shape[:2] + (1,) + x.shape[2:])
        w = b.reshape(ctx, w, w.shape[:2] + (1,) + w.shape[2:])
        strides, dilations, padding = [1, *strides], [1, *dilations], [(0, 0), *padding]
    x_zero = ctx.const(np.zeros((), x.dtype.numpy), x.dtype) if x_zero is None else b.reshape(ctx, x_zero, ())
    w_zero = (ctx.const(np.zeros(cout, w.dtype.numpy), w.dtype) if w_zero is None
              else b.expand(ctx, b.reshape(ctx, w_zero, (w_zero.size,)), (cout,)))
    y = ctx.add("conv_integer", nn.channels_last(ctx, x), b.transpose(ctx, w, (0, 2, 3, 1)), x_zero, w_zero,
                strides=tuple(strides), padding=tuple(padding), rhs_dilation=tuple(dilations),
                groups=ctx.attr("group", 1))
    y = nn.channels_first(ctx, nn._bias(ctx, y, bias))
    return b.reshape(ctx, y, y.shape[:2] + y.shape[3:]) if flat else y
